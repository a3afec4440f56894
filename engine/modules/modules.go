// Package modules is the host interface for k6/x/* JavaScript modules: what
// a module sees of the VU that imports it, and the registry modules add
// themselves to. It mirrors the shape of k6's extension API so that a k6
// extension author recognises it, without depending on k6.
package modules

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/grafana/sobek"

	"github.com/cdeload/cdeload/engine/metrics"
)

// Module is a registered JS module. NewModuleInstance is called once per VU
// runtime that imports it, including the throw-away VU 0 that parses the
// script and the transient VUs of setup and teardown.
type Module interface {
	NewModuleInstance(vu VU) Instance
}

// Instance is one VU's instance of a module.
type Instance interface {
	Exports() Exports
}

// Exports is what a module instance exposes to JS. With only Default set,
// its own properties become the named exports; with only Named set, a
// default object is made from them.
type Exports struct {
	Default any
	Named   map[string]any
}

// VU is what a module instance sees of its virtual user.
type VU interface {
	// Context is the context of the current iteration (or of init). It is
	// replaced for every iteration: read it at call time, never keep it.
	Context() context.Context
	// Runtime is the VU's JS runtime. Use it only on the VU's goroutine.
	Runtime() *sobek.Runtime
	// InitEnv is non-nil only while the VU runs its init code.
	InitEnv() *InitEnvironment
	// State is nil while the VU runs its init code, and set after.
	State() *State
	// RegisterCallback must be called on the VU goroutine. It keeps the
	// event loop alive until the returned function is called, exactly
	// once, from any goroutine, with work to run on the VU goroutine.
	RegisterCallback() func(func() error)
}

// InitEnvironment is what init code may use: the metric registry, the
// environment and the file system of the script.
type InitEnvironment struct {
	Registry *metrics.Registry
	Builtin  *metrics.Builtin
	Logger   *slog.Logger
	// Env is __ENV as it was at init: system env (for run) plus -e.
	Env map[string]string
	// FS reads the files the script may open; CWD is the script's folder.
	FS  fs.FS
	CWD string
}

// State is the per-VU state of a running VU.
type State struct {
	VUID       uint64 // local id, 1-based; 0 for setup/teardown
	VUIDGlobal uint64
	Iteration  int64
	Builtin    *metrics.Builtin
	Registry   *metrics.Registry
	Logger     *slog.Logger
	// Tags returns the VU's current indexed tags (run, scenario, group
	// tags) and metadata; read at emission time.
	Tags func() (*metrics.TagSet, map[string]string)
	// Samples receives every sample the VU emits.
	Samples chan<- metrics.Samples
	// Options are the run's consolidated options as a JSON object, with
	// the script's own options for the keys the consolidation does not
	// know (k6/http's insecureSkipTLSVerify, hosts, tlsAuth…).
	Options []byte
}

// Emit pushes one sample of m with the VU's current tags plus extra, and
// metadata plus meta, unless the VU's context is done.
func (s *State) Emit(ctx context.Context, m *metrics.Metric, value float64, extra map[string]string, meta map[string]string) {
	tags, md := s.Tags()
	for k, v := range extra {
		tags = tags.With(k, v)
	}
	if len(meta) > 0 {
		merged := make(map[string]string, len(md)+len(meta))
		for k, v := range md {
			merged[k] = v
		}
		for k, v := range meta {
			merged[k] = v
		}
		md = merged
	}
	metrics.PushIfNotDone(ctx, s.Samples, metrics.Sample{Metric: m, Tags: tags, Time: time.Now(), Value: value, Metadata: md})
}

var (
	registryMu sync.RWMutex
	registry   = map[string]Module{}
)

// Register adds a module under name, which must start with "k6/x/". It
// panics on a bad or duplicate name, like a programming error should.
func Register(name string, m Module) {
	if !strings.HasPrefix(name, "k6/x/") {
		panic(fmt.Sprintf("modules: %q must start with k6/x/", name))
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, ok := registry[name]; ok {
		panic(fmt.Sprintf("modules: %q is already registered", name))
	}
	registry[name] = m
}

// Lookup returns the module registered under name.
func Lookup(name string) (Module, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	m, ok := registry[name]
	return m, ok
}

// Names returns the registered module names, sorted.
func Names() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	return sortedNames()
}

// sortedNames lists the registry; the caller holds registryMu.
func sortedNames() []string {
	out := make([]string, 0, len(registry))
	for n := range registry {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// CloseAll closes every registered module that implements io.Closer (a
// module's shared resources, such as an embedded lab, live on its root
// module). The host calls it once after the run, after teardown and the
// summary. Errors are joined.
func CloseAll() error {
	registryMu.RLock()
	defer registryMu.RUnlock()
	var errs []error
	for _, name := range sortedNames() {
		if c, ok := registry[name].(io.Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("closing module %s: %w", name, err))
			}
		}
	}
	return errors.Join(errs...)
}
