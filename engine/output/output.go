// Package output defines the interface of result outputs (-o TYPE=ARG) and
// the registry that maps an output type to its constructor.
package output

import (
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"

	"github.com/cdeload/cdeload/engine/metrics"
)

// Output receives every sample of a run. AddMetricSamples must not block
// VUs: an output buffers and flushes on its own goroutine.
type Output interface {
	// Description is shown in the run banner ("output: ...").
	Description() string
	// Start is called once before the first sample.
	Start() error
	// AddMetricSamples hands over a batch of samples; it must return fast.
	AddMetricSamples(batches []metrics.Samples)
	// Stop flushes what is buffered and releases resources.
	Stop() error
}

// Params is what an output constructor gets.
type Params struct {
	// Arg is what followed "TYPE=" on the command line (may be empty).
	Arg string
	// Env is the environment (system env plus -e), for K6_* settings.
	Env map[string]string
	// ConfigJSON is the output's section of the config file, if any.
	ConfigJSON []byte
	Logger     *slog.Logger
	Stdout     io.Writer
	Stderr     io.Writer
	// RunTags are the run-wide tags (--tag), e.g. testid.
	RunTags *metrics.TagSet
}

// Constructor builds an output from its parameters.
type Constructor func(Params) (Output, error)

var (
	mu           sync.RWMutex
	constructors = map[string]Constructor{}
)

// Register adds an output type; it panics on a duplicate name.
func Register(name string, c Constructor) {
	mu.Lock()
	defer mu.Unlock()
	if _, ok := constructors[name]; ok {
		panic(fmt.Sprintf("output: %q is already registered", name))
	}
	constructors[name] = c
}

// New builds the output of the given type.
func New(name string, p Params) (Output, error) {
	mu.RLock()
	c, ok := constructors[name]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("invalid output type %q, available types are: %v", name, Types())
	}
	return c(p)
}

// Types returns the registered output types, sorted.
func Types() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(constructors))
	for n := range constructors {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
