package cdeload

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/grafana/sobek"

	"github.com/cdeload/cdeload/engine/modules"
)

// instance is one VU's instance of the module.
type instance struct {
	root    *RootModule
	vu      modules.VU
	env     map[string]string // __ENV at init; nil means the process env
	metrics *metricSet
	// metricsErr is why the metrics could not be registered; network
	// calls throw it.
	metricsErr error
	// handle is the private symbol under which JS objects made by this
	// instance keep their Go value.
	handle *sobek.Symbol
	// defaultNet is the Tailnet used by ssh.connect without a tailnet
	// option, made on first use.
	defaultNet *tailnetObj
}

func newInstance(root *RootModule, vu modules.VU) *instance {
	mi := &instance{root: root, vu: vu, handle: sobek.NewSymbol("cdeload.handle")}
	if ie := vu.InitEnv(); ie != nil {
		mi.env = ie.Env
		mi.metrics, mi.metricsErr = registerMetrics(ie.Registry, ie.Builtin)
	} else if st := vu.State(); st != nil {
		mi.metrics, mi.metricsErr = registerMetrics(st.Registry, st.Builtin)
	}
	return mi
}

// Exports implements modules.Instance: the named exports, which also form
// the default export object.
func (mi *instance) Exports() modules.Exports {
	return modules.Exports{Named: map[string]any{
		"Tailnet":    mi.newTailnet,
		"Coder":      mi.newCoder,
		"Kubernetes": mi.newKubernetes, // module_kube_provider.go
		"ssh":        map[string]any{"connect": mi.sshConnect},
		"lab":        mi.labExports(),
	}}
}

// getenv returns the script's __ENV value of key (which includes the
// system environment), or the process environment when the VU has no init
// environment.
func (mi *instance) getenv(key string) string {
	if mi.env != nil {
		return mi.env[key]
	}
	return os.Getenv(key)
}

// mustVU throws when called in the init context, where network calls are
// not allowed, or when the module's metrics could not be registered.
func (mi *instance) mustVU(op string) {
	if mi.vu.State() == nil {
		mi.throw(fmt.Errorf("%s: network calls are not allowed in the init context; "+
			"call it from the default function, setup(), teardown() or a scenario function", op))
	}
	if mi.metricsErr != nil {
		mi.throw(fmt.Errorf("%s: %w", op, mi.metricsErr))
	}
}

// throw raises err as a JS exception.
func (mi *instance) throw(err error) {
	panic(mi.vu.Runtime().NewGoError(err))
}

// toJS builds the JS value of a result; it runs on the VU's event loop.
type toJS func(rt *sobek.Runtime) sobek.Value

// undefinedJS resolves a promise with undefined.
var undefinedJS toJS = func(*sobek.Runtime) sobek.Value { return sobek.Undefined() }

// async runs work on its own goroutine with the VU context of this moment
// and returns a promise settled on the VU's event loop: resolved with the
// value toJS builds there, or rejected with an Error whose message starts
// with op. It must be called on the VU goroutine.
func (mi *instance) async(op string, work func(ctx context.Context) (toJS, error)) sobek.Value {
	rt := mi.vu.Runtime()
	p, resolve, reject := rt.NewPromise()
	ctx := mi.vu.Context()
	enqueue := mi.vu.RegisterCallback()
	go func() {
		conv, err := runWork(ctx, work)
		enqueue(func() error {
			if err != nil {
				return reject(jsError(rt, op, err))
			}
			return resolve(conv(rt))
		})
	}()
	return rt.ToValue(p)
}

// runWork calls work, turning a panic into an error so a bug cannot leave
// the VU's event loop waiting forever.
func runWork(ctx context.Context, work func(ctx context.Context) (toJS, error)) (conv toJS, err error) {
	defer func() {
		if r := recover(); r != nil {
			conv, err = nil, fmt.Errorf("internal error: %v", r)
		}
	}()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("the VU's iteration ended before the call started: %w", ctx.Err())
	}
	return work(ctx)
}

// jsError is the rejection value of a failed operation: an Error whose
// message names the operation, with the operation in `op`.
func jsError(rt *sobek.Runtime, op string, err error) sobek.Value {
	if errors.Is(err, context.Canceled) {
		err = fmt.Errorf("%w (the VU's iteration ended)", err)
	}
	e := rt.NewGoError(fmt.Errorf("%s: %w", op, err))
	_ = e.Set("op", op)
	return e
}

// wrap stores v under the instance's private symbol on o, so that objects
// passed back from JS (a Tailnet given to ssh.connect) can be recognised.
func (mi *instance) wrap(o *sobek.Object, v any) {
	rt := mi.vu.Runtime()
	if err := o.DefineDataPropertySymbol(mi.handle, rt.ToValue(v), sobek.FLAG_FALSE, sobek.FLAG_FALSE, sobek.FLAG_FALSE); err != nil {
		panic(err)
	}
}

// unwrap returns the Go value stored by wrap on v, or nil.
func (mi *instance) unwrap(v sobek.Value) any {
	o, ok := v.(*sobek.Object)
	if !ok {
		return nil
	}
	h := o.GetSymbol(mi.handle)
	if h == nil || sobek.IsUndefined(h) {
		return nil
	}
	return h.Export()
}

// set sets a property on a fresh object; it cannot fail for such objects.
func set(o *sobek.Object, key string, v any) {
	if err := o.Set(key, v); err != nil {
		panic(err)
	}
}

// method sets a JS method on o.
func method(o *sobek.Object, name string, fn func(sobek.FunctionCall) sobek.Value) {
	set(o, name, fn)
}

func quote(s string) string { return strconv.Quote(s) }
