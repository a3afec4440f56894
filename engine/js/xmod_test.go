package js

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/grafana/sobek"

	"github.com/cdeload/cdeload/engine/modules"
)

// testModule is a k6/x module used by the tests: it records how it was
// instantiated and offers an async operation settled through the event
// loop, the way real extensions do.
type testModule struct {
	instances atomic.Int64
	named     bool
}

var (
	jstestNamed   = &testModule{named: true}
	jstestDefault = &testModule{}
)

func init() {
	modules.Register("k6/x/jstest", jstestNamed)
	modules.Register("k6/x/jstestdefault", jstestDefault)
}

type testInstance struct {
	m        *testModule
	vu       modules.VU
	initSeen bool
}

func (m *testModule) NewModuleInstance(vu modules.VU) modules.Instance {
	m.instances.Add(1)
	return &testInstance{m: m, vu: vu, initSeen: vu.InitEnv() != nil && vu.State() == nil}
}

// Client is exposed as a constructor (XClient → Client).
type Client struct {
	Name     string
	HitCount int `js:"hits"`
}

// Greet is exposed as greet.
func (c *Client) Greet(who string) string { c.HitCount++; return c.Name + " greets " + who }

func (i *testInstance) Exports() modules.Exports {
	api := map[string]any{
		"initSeen": i.initSeen,
		"phase": func() string {
			if i.vu.State() != nil && i.vu.InitEnv() == nil {
				return "vu"
			}
			if i.vu.InitEnv() != nil && i.vu.State() == nil {
				return "init"
			}
			return "mixed"
		},
		"vuId": func() uint64 {
			if s := i.vu.State(); s != nil {
				return s.VUID
			}
			return 0
		},
		// delayed resolves after ms milliseconds, or rejects when the
		// VU's context ends first.
		"delayed": func(ms int64, value sobek.Value) *sobek.Promise {
			rt := i.vu.Runtime()
			p, resolve, reject := rt.NewPromise()
			enqueue := i.vu.RegisterCallback()
			ctx := i.vu.Context()
			go func() {
				t := time.NewTimer(time.Duration(ms) * time.Millisecond)
				defer t.Stop()
				select {
				case <-t.C:
					enqueue(func() error { return resolve(value) })
				case <-ctx.Done():
					enqueue(func() error { return reject(rt.NewGoError(ctx.Err())) })
				}
			}()
			return p
		},
		// resolved settles a promise through the event loop right away.
		"resolved": func() *sobek.Promise {
			p, resolve, _ := i.vu.Runtime().NewPromise()
			enqueue := i.vu.RegisterCallback()
			enqueue(func() error { return resolve(1) })
			return p
		},
		"enqueueTwice": func() {
			enqueue := i.vu.RegisterCallback()
			enqueue(func() error { return nil })
			enqueue(func() error { return nil })
		},
		"failTask": func() {
			enqueue := i.vu.RegisterCallback()
			enqueue(func() error { return errors.New("task failed on purpose") })
		},
		"Client": func(call sobek.ConstructorCall) *sobek.Object {
			rt := i.vu.Runtime()
			return rt.ToValue(&Client{Name: call.Argument(0).String()}).ToObject(rt)
		},
	}
	if i.m.named {
		return modules.Exports{Named: api}
	}
	return modules.Exports{Default: api}
}

// structModule exports a Go struct as its default: its methods and fields
// become the named exports.
type structModule struct{}

type structAPI struct {
	Version string
}

// Hello is exposed as hello.
func (structAPI) Hello(name string) string { return "hello " + name }

func (structModule) NewModuleInstance(modules.VU) modules.Instance { return structInstance{} }

type structInstance struct{}

func (structInstance) Exports() modules.Exports {
	return modules.Exports{Default: &structAPI{Version: "1.0"}}
}

func init() { modules.Register("k6/x/jsteststruct", structModule{}) }
