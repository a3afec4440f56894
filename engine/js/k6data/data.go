// Package k6data is k6's "k6/data" module: SharedArray, an array built once
// by the first VU that asks for it and read by every VU without copies.
package k6data

import (
	"fmt"
	"sync"

	"github.com/grafana/sobek"

	"github.com/cdeload/cdeload/engine/modules"
)

// Module is k6/data for one script: it holds the shared arrays by name.
type Module struct {
	mu     sync.Mutex
	arrays map[string]*shared
}

// New returns k6/data for one script.
func New() *Module { return &Module{arrays: map[string]*shared{}} }

// shared is one SharedArray: its elements as JSON texts, kept once.
type shared struct {
	once  sync.Once
	elems []string
	err   error
}

// NewModuleInstance implements modules.Module.
func (m *Module) NewModuleInstance(vu modules.VU) modules.Instance {
	return &instance{m: m, vu: vu, rt: vu.Runtime()}
}

type instance struct {
	m  *Module
	vu modules.VU
	rt *sobek.Runtime
}

// Exports implements modules.Instance.
func (in *instance) Exports() modules.Exports {
	return modules.Exports{Named: map[string]any{"SharedArray": in.newSharedArray}}
}

func (in *instance) newSharedArray(call sobek.ConstructorCall) *sobek.Object {
	if in.vu.InitEnv() == nil {
		panic(in.rt.NewGoError(fmt.Errorf("new SharedArray must be called in the init context")))
	}
	name := call.Argument(0)
	if sobek.IsUndefined(name) || name.String() == "" {
		panic(in.rt.NewTypeError("new SharedArray(name, fn): the name must be a non-empty string"))
	}
	fn, ok := sobek.AssertFunction(call.Argument(1))
	if !ok {
		panic(in.rt.NewTypeError("new SharedArray(%q, fn): the second argument must be a function returning an array", name.String()))
	}
	in.m.mu.Lock()
	s, ok := in.m.arrays[name.String()]
	if !ok {
		s = &shared{}
		in.m.arrays[name.String()] = s
	}
	in.m.mu.Unlock()
	s.once.Do(func() { s.elems, s.err = in.build(name.String(), fn) })
	if s.err != nil {
		panic(in.rt.NewGoError(s.err))
	}
	return in.rt.NewDynamicArray(&view{in: in, s: s})
}

// build calls fn and keeps the JSON text of each element.
func (in *instance) build(name string, fn sobek.Callable) (elems []string, err error) {
	defer func() {
		if x := recover(); x != nil {
			err = fmt.Errorf("new SharedArray(%q): %v", name, x)
		}
	}()
	res, err := fn(sobek.Undefined())
	if err != nil {
		return nil, fmt.Errorf("new SharedArray(%q): %w", name, err)
	}
	arr, ok := res.(*sobek.Object)
	if !ok || arr.ClassName() != "Array" {
		return nil, fmt.Errorf("new SharedArray(%q): the function must return an array", name)
	}
	stringify, _ := sobek.AssertFunction(in.rt.Get("JSON").ToObject(in.rt).Get("stringify"))
	n := int(arr.Get("length").ToInteger())
	elems = make([]string, n)
	for i := 0; i < n; i++ {
		s, err := stringify(sobek.Undefined(), arr.Get(fmt.Sprint(i)))
		if err != nil {
			return nil, fmt.Errorf("new SharedArray(%q): element %d: %w", name, i, err)
		}
		if sobek.IsUndefined(s) {
			elems[i] = "null"
			continue
		}
		elems[i] = s.String()
	}
	return elems, nil
}

// view is one VU's read-only view of a shared array: elements are parsed
// on access and frozen.
type view struct {
	in *instance
	s  *shared
}

func (v *view) Len() int { return len(v.s.elems) }

func (v *view) Get(idx int) sobek.Value {
	if idx < 0 || idx >= len(v.s.elems) {
		return sobek.Undefined()
	}
	rt := v.in.rt
	parse, _ := sobek.AssertFunction(rt.Get("JSON").ToObject(rt).Get("parse"))
	val, err := parse(sobek.Undefined(), rt.ToValue(v.s.elems[idx]))
	if err != nil {
		panic(err)
	}
	freeze(rt, val)
	return val
}

func (v *view) Set(int, sobek.Value) bool {
	panic(v.in.rt.NewTypeError("SharedArray is read-only"))
}

func (v *view) SetLen(int) bool {
	panic(v.in.rt.NewTypeError("SharedArray is read-only"))
}

// freeze deep-freezes objects so a VU can't believe it changed shared data.
func freeze(rt *sobek.Runtime, val sobek.Value) {
	obj, ok := val.(*sobek.Object)
	if !ok {
		return
	}
	for _, k := range obj.Keys() {
		freeze(rt, obj.Get(k))
	}
	f, _ := sobek.AssertFunction(rt.Get("Object").ToObject(rt).Get("freeze"))
	_, _ = f(sobek.Undefined(), obj)
}
