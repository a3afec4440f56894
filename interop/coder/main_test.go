// Package coder_test proves cdeload's Coder provider and web terminal
// against a real coderd (shared/coderpeer: coderd, PostgreSQL, the echo
// provisioner and one real `coder agent` per workspace), through the
// cdeload binary running JS scripts and through the workspace/coder
// package. Outside CI, without the peer, every test skips and says how to
// run it; under CI=true it fails instead.
//
// One peer serves the whole package; the tests run one after another
// because some of them check that nothing named scaletest- is left.
package coder_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cdeload/cdeload/internal/coderpeertest"
)

// fixture is the package's shared peer and cdeload binary, made on first use.
var fixture struct {
	once   sync.Once
	peer   *coderpeertest.Peer
	binary string
	dir    string
	err    error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixture.peer != nil {
		if err := fixture.peer.Down(code != 0); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
		if code != 0 {
			fmt.Fprintf(os.Stderr, "coderpeer logs kept in %s/logs\n", fixture.peer.Dir)
		}
	}
	if fixture.dir != "" {
		os.RemoveAll(fixture.dir)
	}
	os.Exit(code)
}

// setup returns the shared peer and the path of a freshly built cdeload
// binary; it skips (or fails under CI=true) when the peer is missing.
func setup(t *testing.T) (*coderpeertest.Peer, string) {
	t.Helper()
	if coderpeertest.Script() == "" {
		msg := "the real-Coder interop tests need shared/coderpeer: set CODERPEER=/path/to/shared/coderpeer/coderpeer " +
			"(or keep a shared/ folder beside the checkout) and run go test ./interop/coder/ again"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + "; CI=true requires it")
		}
		t.Skip(msg)
	}
	fixture.once.Do(func() {
		dir, err := os.MkdirTemp("", "cdeload-interop-")
		if err != nil {
			fixture.err = err
			return
		}
		fixture.dir = dir
		fixture.binary = filepath.Join(dir, "cdeload")
		build := exec.Command("go", "build", "-o", fixture.binary, "github.com/cdeload/cdeload/cmd/cdeload")
		if out, err := build.CombinedOutput(); err != nil {
			fixture.err = fmt.Errorf("go build cdeload: %w\n%s", err, out)
			return
		}
		fixture.peer, fixture.err = coderpeertest.Up(context.Background(), coderpeertest.Script(), coderpeertest.Options{})
	})
	if fixture.err != nil {
		t.Fatal(fixture.err)
	}
	return fixture.peer, fixture.binary
}
