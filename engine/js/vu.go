package js

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/grafana/sobek"

	"github.com/cdeload/cdeload/engine/lib"
	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/engine/modules"
)

// errCtxInterrupt is the value a runtime is interrupted with when its
// context ends.
var errCtxInterrupt = errors.New("context done")

// vu is one virtual user: a sobek runtime with its event loop, timers and
// module instances. It implements modules.VU and lib.InitializedVU.
type vu struct {
	script *Script
	runner *Runner // nil for VU 0
	rt     *sobek.Runtime
	loop   *eventLoop
	timers *timers

	id, idGlobal uint64
	ctx          context.Context
	inInit       bool
	state        *modules.State
	samples      chan<- metrics.Samples
	lifeCtx      context.Context // outlives init; for built-in samples

	goInst map[*goModule]map[string]sobek.Value
	// closers release what module instances hold between activations
	// (idle connections).
	closers []func()
	fns     map[string]sobek.Callable
	env     *sobek.Object

	// tags and metadata
	baseTags  *metrics.TagSet
	vuTags    map[string]string
	groupPath string
	curTags   *metrics.TagSet
	userMeta  map[string]string
	curMeta   map[string]string
	iteration int64

	// interruption
	intMu   sync.Mutex
	running bool

	// activation
	busy        chan struct{}
	act         *activeVU
	setupRaw    []byte
	setupVal    sobek.Value
	argsBuf     []sobek.Value
	envOverlaid bool
}

func newVUObject(s *Script, r *Runner, id, idGlobal uint64, samples chan<- metrics.Samples) *vu {
	rt := sobek.New()
	rt.SetFieldNameMapper(fieldNameMapper{})
	v := &vu{
		script:    s,
		runner:    r,
		rt:        rt,
		id:        id,
		idGlobal:  idGlobal,
		samples:   samples,
		ctx:       context.Background(),
		lifeCtx:   context.Background(),
		goInst:    map[*goModule]map[string]sobek.Value{},
		fns:       map[string]sobek.Callable{},
		iteration: -1,
		busy:      make(chan struct{}, 1),
		baseTags:  s.cfg.RunTags,
	}
	v.loop = newEventLoop(rt)
	v.timers = newTimers(v)
	v.state = &modules.State{
		VUID:       id,
		VUIDGlobal: idGlobal,
		Iteration:  -1,
		Builtin:    s.cfg.Builtin,
		Registry:   s.cfg.Registry,
		Logger:     s.logger,
		Tags:       v.tags,
		Samples:    samples,
	}
	if r != nil {
		v.state.Options = r.moduleOptions
	}
	v.setGlobals()
	return v
}

// Context implements modules.VU.
func (v *vu) Context() context.Context { return v.ctx }

// Runtime implements modules.VU.
func (v *vu) Runtime() *sobek.Runtime { return v.rt }

// InitEnv implements modules.VU.
func (v *vu) InitEnv() *modules.InitEnvironment {
	if v.inInit {
		return v.script.initEnv
	}
	return nil
}

// State implements modules.VU.
func (v *vu) State() *modules.State {
	if v.inInit || v.runner == nil {
		return nil
	}
	return v.state
}

// RegisterCallback implements modules.VU.
func (v *vu) RegisterCallback() func(func() error) { return v.loop.RegisterCallback() }

// ID implements lib.InitializedVU.
func (v *vu) ID() uint64 { return v.id }

// IDGlobal implements lib.InitializedVU.
func (v *vu) IDGlobal() uint64 { return v.idGlobal }

func (v *vu) setGlobals() {
	rt := v.rt
	g := rt.GlobalObject()
	must(g.Set("global", g))
	must(g.Set("__VU", v.id))
	must(g.Set("__ITER", 0))
	v.env = rt.NewObject()
	for k, val := range v.script.cfg.Env {
		must(v.env.Set(k, val))
	}
	must(g.Set("__ENV", v.env))
	must(g.Set("open", v.open))
	must(g.Set("require", v.requireFrom(nil)))
	must(g.Set("console", newConsole(v)))
	v.timers.install(g)
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// tags returns the current tags and metadata; it is State.Tags.
func (v *vu) tags() (*metrics.TagSet, map[string]string) {
	if v.curTags == nil {
		t := v.baseTags
		for k, val := range v.vuTags {
			t = t.With(k, val)
		}
		v.curTags = t.With("group", v.groupPath)
	}
	if v.curMeta == nil {
		m := make(map[string]string, len(v.userMeta)+2)
		for k, val := range v.userMeta {
			m[k] = val
		}
		m["vu"] = strconv.FormatUint(v.id, 10)
		it := v.iteration
		if it < 0 {
			it = 0
		}
		m["iter"] = strconv.FormatInt(it, 10)
		v.curMeta = m
	}
	return v.curTags, v.curMeta
}

// emit pushes samples on the VU's channel unless its context is done.
func (v *vu) emit(samples ...metrics.Sample) {
	metrics.PushIfNotDone(v.ctx, v.samples, samples...)
}

// goInstance returns this VU's instance of a Go module, making it once.
func (v *vu) goInstance(gm *goModule) (map[string]sobek.Value, error) {
	if vals, ok := v.goInst[gm]; ok {
		return vals, nil
	}
	ex, err := gm.factory(v)
	if err != nil {
		return nil, fmt.Errorf("instantiating module %s: %w", gm.name, err)
	}
	vals := exportValues(v.rt, ex)
	v.goInst[gm] = vals
	return vals, nil
}

// throw panics with a JS Error carrying msg; for use in functions called
// from JS.
func (v *vu) throw(format string, args ...any) {
	panic(v.rt.NewGoError(fmt.Errorf(format, args...)))
}

func (v *vu) throwTypeError(format string, args ...any) {
	panic(v.rt.NewTypeError("%s", fmt.Sprintf(format, args...)))
}

// open implements the global open(path, mode): init only.
func (v *vu) open(path string, mode ...string) sobek.Value {
	if !v.inInit {
		v.throw(`the "open" function is only available in the init stage`)
	}
	binary := false
	if len(mode) > 0 && mode[0] != "" {
		if mode[0] != "b" {
			v.throw(`open(%q, %q): unknown mode %q, use "b" for an ArrayBuffer or nothing for a string`, path, mode[0], mode[0])
		}
		binary = true
	}
	if path == "" {
		v.throw("open(): the path is empty")
	}
	p := strings.TrimPrefix(path, "file://")
	if !filepath.IsAbs(p) {
		p = filepath.Join(v.script.dir, p)
	}
	p = filepath.Clean(p)
	b, err := v.script.files.read(p)
	if errors.Is(err, errNotSeenAtInit) {
		v.throw("open() can't be used with files that weren't previously opened during initialization (__VU==0), path: %q", path)
	}
	if err != nil {
		v.throw("open(%q): %w", path, err)
	}
	if binary {
		cp := make([]byte, len(b))
		copy(cp, b)
		return v.rt.ToValue(v.rt.NewArrayBuffer(cp))
	}
	return v.rt.ToValue(string(b))
}

// init runs the script's init code in this VU.
func (v *vu) init(ctx context.Context) error {
	v.inInit = true
	v.script.vus.Store(v.rt, v)
	defer func() {
		v.script.vus.Delete(v.rt)
		v.inInit = false
	}()
	res, err := v.call(ctx, func() (sobek.Value, error) {
		p := v.rt.CyclicModuleRecordEvaluate(v.script.main, v.script.loader.resolve)
		return v.rt.ToValue(p), nil
	})
	if err != nil {
		return err
	}
	if res != nil {
		if p, ok := res.Export().(*sobek.Promise); ok && p.State() == sobek.PromiseStatePending {
			return errors.New("the top-level await of the script never settled")
		}
	}
	return nil
}

// call runs fn as the first task of the event loop under a context derived
// from parent, drives the loop, and settles a returned promise. The context
// is cancelled, timers stopped and outstanding callbacks waited for before
// it returns.
func (v *vu) call(parent context.Context, fn func() (sobek.Value, error)) (sobek.Value, error) {
	ctx, cancel := context.WithCancel(parent)
	prevCtx := v.ctx
	v.ctx = ctx
	v.intMu.Lock()
	v.running = true
	v.intMu.Unlock()
	stop := context.AfterFunc(ctx, v.interrupt)

	var result sobek.Value
	var promise *sobek.Promise
	err := v.loop.run(ctx, func() error {
		val, err := fn()
		if err != nil {
			return err
		}
		result = val
		if val != nil {
			if p, ok := val.Export().(*sobek.Promise); ok {
				promise = p
				v.loop.watch(p)
			}
		}
		return nil
	})

	stop()
	v.intMu.Lock()
	v.running = false
	v.intMu.Unlock()
	v.rt.ClearInterrupt()
	cancel()
	if err != nil {
		v.timers.stopAll()
		v.loop.drain()
	}
	v.ctx = prevCtx
	if err != nil {
		return nil, wrapJSError(err)
	}
	if promise != nil {
		switch promise.State() {
		case sobek.PromiseStateRejected:
			return nil, valueError(promise.Result())
		case sobek.PromiseStateFulfilled:
			return promise.Result(), nil
		}
		return result, nil
	}
	return result, nil
}

// interrupt stops running JS when the call's context ends.
func (v *vu) interrupt() {
	v.intMu.Lock()
	if v.running {
		v.rt.Interrupt(errCtxInterrupt)
	}
	v.intMu.Unlock()
}

// exported returns an exported value of the entry module in this VU.
func (v *vu) exported(name string) sobek.Value {
	b, ambiguous := v.script.main.ResolveExport(name)
	if b == nil || ambiguous {
		return nil
	}
	inst := v.rt.GetModuleInstance(b.Module)
	if inst == nil {
		return nil
	}
	if b.BindingName == "*namespace*" {
		return v.rt.NamespaceObjectFor(b.Module)
	}
	return inst.GetBindingValue(b.BindingName)
}

// fn returns the exported function name, cached.
func (v *vu) fn(name string) (sobek.Callable, bool) {
	if f, ok := v.fns[name]; ok {
		return f, true
	}
	val := v.exported(name)
	if val == nil {
		return nil, false
	}
	f, ok := sobek.AssertFunction(val)
	if ok {
		v.fns[name] = f
	}
	return f, ok
}

// scriptException is a JS exception with its stack.
type scriptException struct{ ex *sobek.Exception }

func (e *scriptException) Error() string { return strings.TrimRight(e.ex.String(), "\n") }
func (e *scriptException) Unwrap() error { return e.ex }

// scriptValueError is a non-Error value thrown or rejected by JS.
type scriptValueError struct{ msg string }

func (e *scriptValueError) Error() string { return e.msg }

func wrapJSError(err error) error {
	var ex *sobek.Exception
	if errors.As(err, &ex) {
		if inner := ex.Unwrap(); inner != nil {
			var ae *lib.AbortError
			if errors.As(inner, &ae) {
				return ae
			}
		}
		return &scriptException{ex: ex}
	}
	return err
}

// valueError turns a rejection reason into an error.
func valueError(v sobek.Value) error {
	if obj, ok := v.(*sobek.Object); ok {
		if err, ok := obj.Export().(error); ok {
			return wrapJSError(err)
		}
	}
	return &scriptValueError{msg: describeValue(v)}
}

// isInterrupt reports whether err means the runtime was stopped because
// its context ended.
func isInterrupt(err error) bool {
	return errors.Is(err, errCtxInterrupt) || errors.Is(err, errLoopInterrupted)
}

// newRand returns a seeded random source for randomSeed.
func newRand(seed int64) sobek.RandSource {
	r := rand.New(rand.NewSource(seed)) //nolint:gosec // k6's randomSeed is for reproducible test data
	return r.Float64
}

// closeIdle releases what the VU's module instances keep between
// iterations, such as idle HTTP connections.
func (v *vu) closeIdle() {
	for _, c := range v.closers {
		c()
	}
}
