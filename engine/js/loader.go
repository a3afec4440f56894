package js

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/grafana/sobek"
	"github.com/grafana/sobek/parser"

	"github.com/cdeload/cdeload/engine/modules"
)

// fileCache reads each file once. Until it is locked (end of VU 0) it reads
// from its source; after, only files already read are served.
type fileCache struct {
	mu     sync.Mutex
	files  map[string][]byte // absolute path or URL → content
	source map[string][]byte // when non-nil, the only source (an archive)
	locked bool
	// fetch reads a remote module; nil refuses remote modules.
	fetch func(url string) ([]byte, error)
}

// errNotSeenAtInit marks a file or module that VU 0 did not load.
var errNotSeenAtInit = errors.New("it was not loaded during initialization (__VU==0)")

func (c *fileCache) read(p string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b, ok := c.files[p]; ok {
		return b, nil
	}
	if c.locked {
		return nil, errNotSeenAtInit
	}
	var b []byte
	if c.source != nil {
		sb, ok := c.source[p]
		if !ok {
			if isRemote(p) {
				return nil, fmt.Errorf("remote module %s is not in the archive: %w", p, fs.ErrNotExist)
			}
			return nil, fmt.Errorf("open %s: %w", p, fs.ErrNotExist)
		}
		b = sb
	} else if isRemote(p) {
		if c.fetch == nil {
			return nil, fmt.Errorf("remote module %s: remote modules are not allowed in this run; download it and import it by path", p)
		}
		var err error
		if b, err = c.fetch(p); err != nil {
			return nil, err
		}
	} else {
		var err error
		if b, err = os.ReadFile(p); err != nil {
			return nil, err
		}
	}
	c.files[p] = b
	return b, nil
}

func (c *fileCache) lock() {
	c.mu.Lock()
	c.locked = true
	c.mu.Unlock()
}

func (c *fileCache) snapshot() map[string][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string][]byte, len(c.files))
	for k, v := range c.files {
		out[k] = v
	}
	return out
}

// cacheFS is the file cache as an fs.FS rooted at "/", for modules.
type cacheFS struct{ c *fileCache }

func (f cacheFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	b, err := f.c.read("/" + name)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &memFile{name: path.Base(name), r: strings.NewReader(string(b)), size: int64(len(b))}, nil
}

type memFile struct {
	name string
	r    *strings.Reader
	size int64
}

func (m *memFile) Stat() (fs.FileInfo, error) { return m, nil }
func (m *memFile) Read(p []byte) (int, error) { return m.r.Read(p) }
func (m *memFile) Close() error               { return nil }
func (m *memFile) Name() string               { return m.name }
func (m *memFile) Size() int64                { return m.size }
func (m *memFile) Mode() fs.FileMode          { return 0o444 }
func (m *memFile) ModTime() time.Time         { return time.Time{} }
func (m *memFile) IsDir() bool                { return false }
func (m *memFile) Sys() any                   { return nil }

// unknownModuleError is an import of a k6 module that does not exist.
type unknownModuleError struct{ name string }

func (e *unknownModuleError) Error() string { return fmt.Sprintf("unknown module %q", e.name) }

// loader resolves import specifiers to module records. Records are shared
// by every VU of a script: source modules are compiled once.
type loader struct {
	script  *Script
	files   *fileCache
	mu      sync.Mutex
	records map[string]sobek.ModuleRecord
	paths   map[sobek.ModuleRecord]string
	baseDir string
	locked  bool
	linkMu  sync.Mutex
	linked  map[sobek.ModuleRecord]bool
}

func newLoader(s *Script, files *fileCache, baseDir string) *loader {
	return &loader{
		script:  s,
		files:   files,
		records: map[string]sobek.ModuleRecord{},
		paths:   map[sobek.ModuleRecord]string{},
		baseDir: baseDir,
	}
}

func isK6Module(spec string) bool { return spec == "k6" || strings.HasPrefix(spec, "k6/") }

// isRemote reports whether a specifier or key is an http(s) URL.
func isRemote(s string) bool {
	return strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://")
}

// key returns the cache key of specifier imported from referrer: the module
// name for k6 modules, else the absolute path of the file.
func (l *loader) key(referrer any, spec string) (string, error) {
	if isK6Module(spec) {
		return spec, nil
	}
	var p string
	if rec, ok := referrer.(sobek.ModuleRecord); ok {
		l.mu.Lock()
		p = l.paths[rec]
		l.mu.Unlock()
	} else if s, ok := referrer.(string); ok {
		p = s
	}
	if isRemote(p) {
		return resolveRemote(p, spec)
	}
	base := l.baseDir
	if p != "" && p != StdinFilename { // a stdin script imports from baseDir
		base = filepath.Dir(p)
	}
	return resolvePath(base, spec)
}

// resolveRemote resolves spec imported from the remote module at base.
func resolveRemote(base, spec string) (string, error) {
	if isRemote(spec) {
		return spec, nil
	}
	if !strings.HasPrefix(spec, "./") && !strings.HasPrefix(spec, "../") && !strings.HasPrefix(spec, "/") {
		return "", fmt.Errorf("module specifier %q imported from %s is neither a k6 module nor a URL path (./, ../ or /)", spec, base)
	}
	b, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("remote module URL %q: %w", base, err)
	}
	r, err := url.Parse(spec)
	if err != nil {
		return "", fmt.Errorf("module specifier %q: %w", spec, err)
	}
	return b.ResolveReference(r).String(), nil
}

// resolvePath turns a file specifier into an absolute path.
func resolvePath(base, spec string) (string, error) {
	switch {
	case strings.HasPrefix(spec, "file://"):
		return filepath.Clean(strings.TrimPrefix(spec, "file://")), nil
	case isRemote(spec):
		u, err := url.Parse(spec)
		if err != nil || u.Host == "" {
			return "", fmt.Errorf("module %q: invalid URL", spec)
		}
		return u.String(), nil
	case filepath.IsAbs(spec):
		return filepath.Clean(spec), nil
	case strings.HasPrefix(spec, "./"), strings.HasPrefix(spec, "../"):
		return filepath.Join(base, spec), nil
	}
	return "", fmt.Errorf("module specifier %q is neither a k6 module nor a path: local modules must start with ./, ../ or /", spec)
}

// resolve is the sobek HostResolveImportedModuleFunc shared by every VU.
func (l *loader) resolve(referrer any, spec string) (sobek.ModuleRecord, error) {
	key, err := l.key(referrer, spec)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	if r, ok := l.records[key]; ok {
		l.mu.Unlock()
		return r, nil
	}
	locked := l.locked
	l.mu.Unlock()
	if locked {
		return nil, fmt.Errorf("module %q was not previously resolved during initialization (__VU==0)", spec)
	}
	var rec sobek.ModuleRecord
	if isK6Module(key) {
		rec, err = l.script.newGoModule(key)
	} else {
		rec, err = l.loadFile(key)
	}
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if r, ok := l.records[key]; ok {
		return r, nil
	}
	l.records[key] = rec
	if !isK6Module(key) {
		l.paths[rec] = key
	}
	return rec, nil
}

// loadFile loads a local or remote module: an ES module, or a CommonJS one
// when the source does not parse as an ES module or has no import, export
// or top-level await (as k6 decides).
func (l *loader) loadFile(p string) (sobek.ModuleRecord, error) {
	b, err := l.files.read(p)
	if err != nil {
		return nil, fmt.Errorf("reading module %s: %w", p, err)
	}
	name := p
	if !isRemote(p) {
		name = "file://" + filepath.ToSlash(p)
	}
	prg, err := sobek.Parse(name, string(b), parser.IsModule, parser.WithDisableSourceMaps)
	if err != nil || (len(prg.ImportEntries) == 0 && len(prg.ExportEntries) == 0 && !prg.HasTLA) {
		cjs, cerr := newCJSModule(l, p, name, b)
		if cerr != nil {
			if err != nil {
				return nil, fmt.Errorf("parsing module %s: %w", p, err)
			}
			return nil, cerr
		}
		return cjs, nil
	}
	rec, err := sobek.ModuleFromAST(prg, l.resolve)
	if err != nil {
		return nil, fmt.Errorf("loading module %s: %w", p, err)
	}
	return rec, nil
}

// loadGraph resolves the whole import graph from entry and reports every
// unknown k6 module at once.
func (l *loader) loadGraph(entry string) (sobek.CyclicModuleRecord, error) {
	rec, err := l.resolve(nil, entry)
	if err != nil {
		return nil, err
	}
	var unknown []string
	seen := map[sobek.ModuleRecord]bool{}
	var walk func(r sobek.ModuleRecord) error
	walk = func(r sobek.ModuleRecord) error {
		if seen[r] {
			return nil
		}
		seen[r] = true
		cr, ok := r.(sobek.CyclicModuleRecord)
		if !ok {
			return nil
		}
		for _, spec := range cr.RequestedModules() {
			dep, err := l.resolve(r, spec)
			var ue *unknownModuleError
			if errors.As(err, &ue) {
				unknown = append(unknown, ue.name)
				continue
			}
			if err != nil {
				return fmt.Errorf("importing %q from %s: %w", spec, l.pathOf(r), err)
			}
			if err := walk(dep); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(rec); err != nil {
		return nil, err
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		unknown = dedup(unknown)
		return nil, fmt.Errorf("unknown modules [%s] were tried to be loaded, but don't exist in this build; available modules: %s",
			strings.Join(unknown, ", "), strings.Join(availableModules(), ", "))
	}
	cr, ok := rec.(sobek.CyclicModuleRecord)
	if !ok {
		return nil, fmt.Errorf("entry %s is not a source module", entry)
	}
	if err := cr.Link(); err != nil {
		return nil, fmt.Errorf("linking %s: %w", entry, err)
	}
	return cr, nil
}

func (l *loader) pathOf(r sobek.ModuleRecord) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p, ok := l.paths[r]; ok {
		return p
	}
	return "a module"
}

// link links a record loaded by require(), once.
func (l *loader) link(r sobek.CyclicModuleRecord) error {
	l.linkMu.Lock() // not l.mu: linking resolves imports
	defer l.linkMu.Unlock()
	if l.linked == nil {
		l.linked = map[sobek.ModuleRecord]bool{}
	}
	if l.linked[r] {
		return nil
	}
	if err := r.Link(); err != nil {
		return err
	}
	l.linked[r] = true
	return nil
}

// fetchRemote downloads a remote module (once per run: the file cache
// keeps it, and the archive stores it).
func fetchRemote(client *http.Client, u string) ([]byte, error) {
	if client == nil {
		client = &http.Client{Timeout: 60 * time.Second}
	}
	resp, err := client.Get(u) //nolint:noctx // init code has no request context; bounded by the timeout
	if err != nil {
		return nil, fmt.Errorf("fetching remote module %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching remote module %s: %s", u, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("fetching remote module %s: %w", u, err)
	}
	return b, nil
}

func (l *loader) lock() {
	l.mu.Lock()
	l.locked = true
	l.mu.Unlock()
}

func dedup(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

func availableModules() []string {
	names := builtinModuleNames()
	names = append(names, modules.Names()...)
	sort.Strings(names)
	return names
}

// goModule is a module implemented in Go: a built-in k6 module or a
// registered k6/x module. Its record is shared; every VU runtime that
// imports it gets its own instance.
type goModule struct {
	script  *Script
	name    string
	factory func(v *vu) (modules.Exports, error)
	names   []string
	nameSet map[string]bool
}

var (
	_ sobek.CyclicModuleRecord   = (*goModule)(nil)
	_ sobek.CyclicModuleInstance = (*goModuleInstance)(nil)
)

// newGoModule makes the record of a k6 module. It runs on VU 0 (resolution
// happens only there), which instantiates it at once to learn its exports.
func (s *Script) newGoModule(name string) (*goModule, error) {
	var factory func(v *vu) (modules.Exports, error)
	if f, ok := builtinModule(name); ok {
		factory = f
	} else if m, ok := modules.Lookup(name); ok {
		factory = func(v *vu) (modules.Exports, error) {
			inst := m.NewModuleInstance(v)
			if inst == nil {
				return modules.Exports{}, fmt.Errorf("module %s returned no instance", name)
			}
			return inst.Exports(), nil
		}
	} else {
		return nil, &unknownModuleError{name: name}
	}
	gm := &goModule{script: s, name: name, factory: factory}
	vals, err := s.vu0.goInstance(gm)
	if err != nil {
		return nil, err
	}
	gm.nameSet = make(map[string]bool, len(vals))
	for k := range vals {
		gm.names = append(gm.names, k)
		gm.nameSet[k] = true
	}
	sort.Strings(gm.names)
	return gm, nil
}

func (gm *goModule) Link() error                  { return nil }
func (gm *goModule) RequestedModules() []string   { return nil }
func (gm *goModule) InitializeEnvironment() error { return nil }

func (gm *goModule) Evaluate(rt *sobek.Runtime) *sobek.Promise {
	return rt.CyclicModuleRecordEvaluate(gm, gm.script.loader.resolve)
}

func (gm *goModule) GetExportedNames(cb func([]string), _ ...sobek.ModuleRecord) bool {
	cb(gm.names)
	return true
}

func (gm *goModule) ResolveExport(name string, _ ...sobek.ResolveSetElement) (*sobek.ResolvedBinding, bool) {
	if !gm.nameSet[name] {
		return nil, false
	}
	return &sobek.ResolvedBinding{Module: gm, BindingName: name}, false
}

func (gm *goModule) Instantiate(rt *sobek.Runtime) (sobek.CyclicModuleInstance, error) {
	v := gm.script.vuFor(rt)
	if v == nil {
		return nil, fmt.Errorf("module %s: instantiated outside of a VU's init", gm.name)
	}
	vals, err := v.goInstance(gm)
	if err != nil {
		return nil, err
	}
	return &goModuleInstance{vals: vals}, nil
}

type goModuleInstance struct{ vals map[string]sobek.Value }

func (i *goModuleInstance) HasTLA() bool { return false }

func (i *goModuleInstance) ExecuteModule(*sobek.Runtime, func(any) error, func(any) error) (sobek.CyclicModuleInstance, error) {
	return i, nil
}

func (i *goModuleInstance) GetBindingValue(name string) sobek.Value {
	if v, ok := i.vals[name]; ok {
		return v
	}
	return sobek.Undefined()
}

// exportValues turns a module instance's Exports into JS values, following
// the contract of modules.Exports.
func exportValues(rt *sobek.Runtime, ex modules.Exports) map[string]sobek.Value {
	out := make(map[string]sobek.Value, len(ex.Named)+1)
	for k, v := range ex.Named {
		out[k] = rt.ToValue(v)
	}
	switch {
	case ex.Default != nil:
		d := rt.ToValue(ex.Default)
		if ex.Named == nil {
			if obj, ok := d.(*sobek.Object); ok {
				for _, k := range obj.Keys() {
					out[k] = obj.Get(k)
				}
			}
		}
		out["default"] = d
	case ex.Named != nil:
		obj := rt.NewObject()
		keys := make([]string, 0, len(out))
		for k := range out {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			_ = obj.Set(k, out[k])
		}
		out["default"] = obj
	}
	return out
}
