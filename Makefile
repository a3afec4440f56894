# cdeload — common tasks. `make test` is what CI runs (through .ci/run).
GO       ?= go
BIN      ?= bin/cdeload
PKGS     ?= ./...
# Package tests run in parallel by default; two at a time keeps the 2-core
# machines responsive while tailnet tests run.
TESTFLAGS ?= -race -timeout 10m -p 2

.PHONY: build test lint demo bench clean

build:
	$(GO) build -o $(BIN) ./cmd/cdeload

test: lint
	$(GO) test $(TESTFLAGS) $(PKGS)

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)

demo: build
	$(BIN) run examples/scale.js

bench:
	bash bench/run.sh

clean:
	rm -rf bin
