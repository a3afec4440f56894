package js

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"sync"

	"github.com/grafana/sobek"
)

// cjsModule is a CommonJS module (require, module.exports, exports): its
// source is compiled once, wrapped in a function, and run in every VU that
// imports or requires it. Any name can be imported from it; it is read
// from module.exports when used. "default" is module.exports.default when
// present, else module.exports itself.
type cjsModule struct {
	l    *loader
	key  string // absolute path or URL
	prg  *sobek.Program
	mu   sync.Mutex
	seen []string // export names seen when VU 0 ran it
}

var (
	_ sobek.CyclicModuleRecord   = (*cjsModule)(nil)
	_ sobek.CyclicModuleInstance = (*cjsInstance)(nil)
)

func newCJSModule(l *loader, key, name string, src []byte) (*cjsModule, error) {
	wrapped := "(function (exports, require, module, __filename, __dirname) {" + string(src) + "\n})"
	prg, err := sobek.Compile(name, wrapped, false)
	if err != nil {
		return nil, fmt.Errorf("parsing module %s: %w", key, err)
	}
	return &cjsModule{l: l, key: key, prg: prg}, nil
}

func (m *cjsModule) Link() error                  { return nil }
func (m *cjsModule) RequestedModules() []string   { return nil }
func (m *cjsModule) InitializeEnvironment() error { return nil }

func (m *cjsModule) Evaluate(rt *sobek.Runtime) *sobek.Promise {
	return rt.CyclicModuleRecordEvaluate(m, m.l.resolve)
}

func (m *cjsModule) GetExportedNames(cb func([]string), _ ...sobek.ModuleRecord) bool {
	m.mu.Lock()
	names := append([]string(nil), m.seen...)
	m.mu.Unlock()
	cb(names)
	return true
}

func (m *cjsModule) ResolveExport(name string, _ ...sobek.ResolveSetElement) (*sobek.ResolvedBinding, bool) {
	return &sobek.ResolvedBinding{Module: m, BindingName: name}, false
}

func (m *cjsModule) Instantiate(rt *sobek.Runtime) (sobek.CyclicModuleInstance, error) {
	v := m.l.script.vuFor(rt)
	if v == nil {
		return nil, fmt.Errorf("module %s: instantiated outside of a VU's init", m.key)
	}
	return &cjsInstance{m: m, v: v}, nil
}

// cjsInstance is one VU's run of a CommonJS module.
type cjsInstance struct {
	m      *cjsModule
	v      *vu
	module *sobek.Object
}

func (i *cjsInstance) HasTLA() bool { return false }

func (i *cjsInstance) ExecuteModule(rt *sobek.Runtime, _, _ func(any) error) (sobek.CyclicModuleInstance, error) {
	fnv, err := rt.RunProgram(i.m.prg)
	if err != nil {
		return nil, err
	}
	fn, ok := sobek.AssertFunction(fnv)
	if !ok {
		return nil, fmt.Errorf("module %s: the CommonJS wrapper is not a function", i.m.key)
	}
	i.module = rt.NewObject()
	exports := rt.NewObject()
	must(i.module.Set("exports", exports))
	dir := filepath.Dir(i.m.key)
	if isRemote(i.m.key) {
		dir = path.Dir(i.m.key)
	} else if i.m.key == StdinFilename {
		dir = i.v.script.dir
	}
	if _, err := fn(sobek.Undefined(), exports, rt.ToValue(i.v.requireFrom(i.m)), i.module, rt.ToValue(i.m.key), rt.ToValue(dir)); err != nil {
		return nil, err
	}
	if i.v == i.v.script.vu0 {
		var names []string
		if obj, ok := i.exports().(*sobek.Object); ok {
			names = obj.Keys()
		}
		if !contains(names, "default") {
			names = append(names, "default")
		}
		sort.Strings(names)
		i.m.mu.Lock()
		i.m.seen = names
		i.m.mu.Unlock()
	}
	return i, nil
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

func (i *cjsInstance) exports() sobek.Value {
	if i.module == nil {
		return sobek.Undefined()
	}
	return i.module.Get("exports")
}

func (i *cjsInstance) GetBindingValue(name string) sobek.Value {
	exp := i.exports()
	obj, ok := exp.(*sobek.Object)
	if !ok {
		if name == "default" {
			return exp
		}
		return sobek.Undefined()
	}
	if name == "default" {
		if d := obj.Get("default"); d != nil && !sobek.IsUndefined(d) {
			return d
		}
		return exp
	}
	if v := obj.Get(name); v != nil {
		return v
	}
	return sobek.Undefined()
}

// requireFrom returns require() for code of the module referrer (nil: the
// entry script's folder).
func (v *vu) requireFrom(referrer sobek.ModuleRecord) func(string) sobek.Value {
	return func(spec string) sobek.Value {
		if !v.inInit {
			v.throw(`the "require" function is only available in the init stage`)
		}
		var ref any
		if referrer != nil {
			ref = referrer
		}
		rec, err := v.script.loader.resolve(ref, spec)
		if err != nil {
			var ue *unknownModuleError
			if errors.As(err, &ue) {
				v.throw("unknown module %q; available modules: %v", ue.name, availableModules())
			}
			v.throw("require(%q): %w", spec, err)
		}
		switch r := rec.(type) {
		case *goModule:
			vals, err := v.goInstance(r)
			if err != nil {
				v.throw("require(%q): %w", spec, err)
			}
			if d, ok := vals["default"]; ok {
				return d
			}
			return sobek.Undefined()
		case sobek.CyclicModuleRecord:
			if err := v.script.loader.link(r); err != nil {
				v.throw("require(%q): %w", spec, err)
			}
			p := v.rt.CyclicModuleRecordEvaluate(r, v.script.loader.resolve)
			if p.State() == sobek.PromiseStateRejected {
				panic(p.Result())
			}
			if inst, ok := v.rt.GetModuleInstance(r).(*cjsInstance); ok {
				return inst.exports()
			}
			return v.rt.NamespaceObjectFor(r)
		}
		v.throw("require(%q): unsupported module type", spec)
		return nil
	}
}
