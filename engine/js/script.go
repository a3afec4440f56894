package js

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/grafana/sobek"

	"github.com/cdeload/cdeload/engine/lib"
	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/engine/modules"
)

// StdinFilename is the entry path of a script read from stdin: its module
// specifier and error locations say file:///-, as k6's do.
const StdinFilename = "/-"

// Config says what script to load and where its output goes.
type Config struct {
	// Filename is the path of the entry script; StdinFilename for a
	// script read from stdin.
	Filename string
	// Pwd is the directory that relative imports and open() paths of a
	// stdin script resolve against; the working directory when empty.
	Pwd string
	// Source is the entry script's text; if nil, Filename is read.
	Source []byte
	// Files, when non-nil, is the only source of modules and open()ed
	// files (an archive), keyed by absolute path; the disk is not read.
	Files map[string][]byte
	// Env is __ENV: system env and -e values, merged by the caller.
	Env map[string]string
	// Registry and Builtin are the run's metrics; made when nil.
	Registry *metrics.Registry
	Builtin  *metrics.Builtin
	// Logger is given to modules; when nil, logs go to Console in
	// logfmt.
	Logger *slog.Logger
	// Console receives console.* output and iteration errors, in k6's
	// logfmt; os.Stderr when nil.
	Console io.Writer
	// Debug shows console.debug output (k6's --verbose).
	Debug bool
	// RunTags are added to every sample (--tag).
	RunTags *metrics.TagSet
	// NoRemoteModules refuses https:// and http:// imports that are not
	// in Files; the error names the URL.
	NoRemoteModules bool
	// RemoteClient fetches remote modules; a client with a 60s timeout
	// and the system's roots when nil.
	RemoteClient *http.Client
}

// Script is a parsed script: its compiled modules, exports and options,
// ready to make runners.
type Script struct {
	cfg     Config
	entry   string
	dir     string
	files   *fileCache
	loader  *loader
	main    sobek.CyclicModuleRecord
	initEnv *modules.InitEnvironment
	logw    *logWriter
	logger  *slog.Logger
	vus     sync.Map // *sobek.Runtime → *vu, while the VU runs init
	vu0     *vu
	rootsMu sync.Mutex
	roots   map[string]modules.Module // per-script module roots (k6/http…)

	options json.RawMessage
	exports []string
	fnSet   map[string]bool
}

// Parse runs VU 0: it loads the entry module and its imports, runs the
// init code once, and returns the script. Script errors (syntax, unknown
// modules, exceptions) carry lib.ExitScriptException; an `options` export
// that cannot be turned into JSON carries lib.ExitInvalidConfig.
func Parse(ctx context.Context, cfg Config) (*Script, error) {
	if cfg.Filename == "" {
		return nil, lib.Errorf(lib.ExitInvalidConfig, "js: no script file name given")
	}
	entry, err := filepath.Abs(cfg.Filename)
	if err != nil {
		return nil, lib.Errorf(lib.ExitScriptException, "js: resolving script path %q: %w", cfg.Filename, err)
	}
	if cfg.Registry == nil {
		cfg.Registry = metrics.NewRegistry()
	}
	if cfg.Builtin == nil {
		cfg.Builtin = metrics.RegisterBuiltin(cfg.Registry)
	}
	if cfg.Console == nil {
		cfg.Console = os.Stderr
	}
	if cfg.RunTags == nil {
		cfg.RunTags = metrics.NewTagSet(nil)
	}
	dir := filepath.Dir(entry)
	if entry == StdinFilename {
		if dir = cfg.Pwd; dir == "" {
			if dir, err = os.Getwd(); err != nil {
				return nil, lib.Errorf(lib.ExitScriptException, "js: working directory of the stdin script: %w", err)
			}
		}
	}
	s := &Script{
		cfg:   cfg,
		entry: entry,
		dir:   dir,
		files: &fileCache{files: map[string][]byte{}, source: cfg.Files},
		logw:  &logWriter{w: cfg.Console, debug: cfg.Debug, now: time.Now},
	}
	s.logger = cfg.Logger
	if s.logger == nil {
		s.logger = slog.New(&logfmtHandler{w: s.logw})
	}
	if cfg.Source != nil {
		s.files.files[entry] = cfg.Source
	}
	if !cfg.NoRemoteModules {
		s.files.fetch = func(u string) ([]byte, error) { return fetchRemote(cfg.RemoteClient, u) }
	}
	env := make(map[string]string, len(cfg.Env))
	for k, v := range cfg.Env {
		env[k] = v
	}
	s.initEnv = &modules.InitEnvironment{
		Registry: cfg.Registry,
		Builtin:  cfg.Builtin,
		Logger:   s.logger,
		Env:      env,
		FS:       cacheFS{c: s.files},
		CWD:      s.dir,
	}
	s.loader = newLoader(s, s.files, s.dir)
	s.vu0 = newVUObject(s, nil, 0, 0, nil)
	s.vu0.inInit = true // resolution instantiates Go modules on VU 0

	main, err := s.loader.loadGraph(entry)
	if err != nil {
		return nil, lib.WithExitCode(lib.ExitScriptException, fmt.Errorf("js: loading %s: %w", cfg.Filename, err))
	}
	s.main = main
	if err := s.vu0.init(ctx); err != nil {
		return nil, initError(cfg.Filename, err)
	}
	s.loader.lock()
	s.files.lock()

	if err := s.collectExports(); err != nil {
		return nil, err
	}
	// VU 0 is done: nothing resolves or runs on it any more. Dropping its
	// runtime frees what init code built there (a SharedArray's source
	// array, say) for the rest of the run.
	s.vu0 = nil
	return s, nil
}

// initError gives an init failure its exit code.
func initError(name string, err error) error {
	var ae *lib.AbortError
	if errors.As(err, &ae) {
		return lib.WithExitCode(lib.ExitScriptAborted, ae)
	}
	return lib.WithExitCode(lib.ExitScriptException, fmt.Errorf("js: running the init code of %s: %w", name, err))
}

func (s *Script) collectExports() error {
	var names []string
	s.main.GetExportedNames(func(n []string) { names = append(names, n...) })
	sort.Strings(names)
	s.fnSet = map[string]bool{}
	for _, n := range names {
		v := s.vu0.exported(n)
		if v == nil {
			continue
		}
		if _, ok := sobek.AssertFunction(v); ok {
			s.fnSet[n] = true
			s.exports = append(s.exports, n)
		}
	}
	for _, n := range []string{"setup", "teardown", "handleSummary"} {
		if v := s.vu0.exported(n); v != nil && !sobek.IsUndefined(v) && !s.fnSet[n] {
			return lib.Errorf(lib.ExitScriptException, "js: exported %s must be a function", n)
		}
	}
	if len(s.exports) == 0 {
		return lib.Errorf(lib.ExitScriptException, "js: %s: no exported functions in script", s.cfg.Filename)
	}
	if v := s.vu0.exported("options"); v != nil && !sobek.IsUndefined(v) && !sobek.IsNull(v) {
		raw, err := s.vu0.stringify(v)
		if err != nil {
			return lib.Errorf(lib.ExitInvalidConfig, "js: the exported options can't be turned into JSON: %w", err)
		}
		if len(raw) == 0 || raw[0] != '{' {
			return lib.Errorf(lib.ExitInvalidConfig, "js: the exported options must be an object, got %s", raw)
		}
		s.options = raw
	}
	return nil
}

// Options returns the exported `options` as JSON, or nil.
func (s *Script) Options() json.RawMessage { return s.options }

// Exports returns the names of the exported functions, sorted.
func (s *Script) Exports() []string { return append([]string(nil), s.exports...) }

// Files returns every module and open()ed file read during VU 0, keyed by
// absolute path.
func (s *Script) Files() map[string][]byte { return s.files.snapshot() }

// Filename returns the absolute path of the entry script.
func (s *Script) Filename() string { return s.entry }

func (s *Script) vuFor(rt *sobek.Runtime) *vu {
	if v, ok := s.vus.Load(rt); ok {
		return v.(*vu)
	}
	if s.vu0 != nil && s.vu0.rt == rt {
		return s.vu0
	}
	return nil
}

// stringify is JSON.stringify in this VU's runtime; undefined gives nil.
func (v *vu) stringify(val sobek.Value) (json.RawMessage, error) {
	f, _ := sobek.AssertFunction(v.rt.Get("JSON").ToObject(v.rt).Get("stringify"))
	out, err := f(sobek.Undefined(), val)
	if err != nil {
		return nil, wrapJSError(err)
	}
	if out == nil || sobek.IsUndefined(out) {
		return nil, nil
	}
	return json.RawMessage(out.String()), nil
}

// parseJSON is JSON.parse in this VU's runtime.
func (v *vu) parseJSON(raw []byte) (sobek.Value, error) {
	f, _ := sobek.AssertFunction(v.rt.Get("JSON").ToObject(v.rt).Get("parse"))
	out, err := f(sobek.Undefined(), v.rt.ToValue(string(raw)))
	if err != nil {
		return nil, wrapJSError(err)
	}
	return out, nil
}
