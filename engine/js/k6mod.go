package js

import (
	"strings"
	"time"

	"github.com/grafana/sobek"

	"github.com/cdeload/cdeload/engine/js/k6crypto"
	"github.com/cdeload/cdeload/engine/js/k6data"
	"github.com/cdeload/cdeload/engine/js/k6encoding"
	"github.com/cdeload/cdeload/engine/js/k6http"
	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/engine/modules"
)

// builtinModules are the k6 modules implemented here.
var builtinModules = map[string]func(v *vu) (modules.Exports, error){
	"k6":           func(v *vu) (modules.Exports, error) { return v.k6Exports(), nil },
	"k6/metrics":   func(v *vu) (modules.Exports, error) { return v.metricsExports(), nil },
	"k6/execution": func(v *vu) (modules.Exports, error) { return v.executionExports(), nil },
	"k6/timers":    func(v *vu) (modules.Exports, error) { return v.timers.exports(), nil },
}

// rootModules are the k6 modules implemented in their own packages. Each
// script gets its own root instance (shared by its VUs), made on first
// import.
var rootModules = map[string]func() modules.Module{
	"k6/http":     func() modules.Module { return k6http.New() },
	"k6/data":     func() modules.Module { return k6data.New() },
	"k6/encoding": func() modules.Module { return k6encoding.New() },
	"k6/crypto":   func() modules.Module { return k6crypto.New() },
}

func builtinModule(name string) (func(v *vu) (modules.Exports, error), bool) {
	if f, ok := builtinModules[name]; ok {
		return f, true
	}
	if _, ok := rootModules[name]; !ok {
		return nil, false
	}
	return func(v *vu) (modules.Exports, error) {
		inst := v.script.root(name).NewModuleInstance(v)
		if c, ok := inst.(interface{ CloseIdle() }); ok {
			v.closers = append(v.closers, c.CloseIdle)
		}
		return inst.Exports(), nil
	}, true
}

// root returns the script's root instance of a module of rootModules.
func (s *Script) root(name string) modules.Module {
	s.rootsMu.Lock()
	defer s.rootsMu.Unlock()
	if s.roots == nil {
		s.roots = map[string]modules.Module{}
	}
	m, ok := s.roots[name]
	if !ok {
		m = rootModules[name]()
		s.roots[name] = m
	}
	return m
}

func builtinModuleNames() []string {
	out := make([]string, 0, len(builtinModules)+len(rootModules))
	for n := range builtinModules {
		out = append(out, n)
	}
	for n := range rootModules {
		out = append(out, n)
	}
	return out
}

func (v *vu) k6Exports() modules.Exports {
	return modules.Exports{Named: map[string]any{
		"check":      v.check,
		"fail":       v.fail,
		"group":      v.group,
		"sleep":      v.sleep,
		"randomSeed": v.randomSeed,
	}}
}

// isAsyncFunction reports whether val is an async function.
func isAsyncFunction(val sobek.Value) bool {
	obj, ok := val.(*sobek.Object)
	if !ok {
		return false
	}
	c, ok := obj.Get("constructor").(*sobek.Object)
	if !ok {
		return false
	}
	n := c.Get("name")
	return n != nil && n.String() == "AsyncFunction"
}

// tagArg reads an optional tags object argument into a map. Values must be
// strings, numbers or booleans.
func (v *vu) tagArg(what string, val sobek.Value) map[string]string {
	if val == nil || sobek.IsUndefined(val) || sobek.IsNull(val) {
		return nil
	}
	obj, ok := val.(*sobek.Object)
	if !ok {
		v.throwTypeError("%s: tags must be an object", what)
	}
	keys := obj.Keys()
	if len(keys) == 0 {
		return nil
	}
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		tv := obj.Get(k)
		if !isPrimitiveTagValue(tv) {
			v.throwTypeError("%s: the value of tag %q must be a string, a number or a boolean", what, k)
		}
		out[k] = tv.String()
	}
	return out
}

func isPrimitiveTagValue(val sobek.Value) bool {
	if val == nil {
		return false
	}
	switch val.Export().(type) {
	case string, int64, float64, bool:
		return true
	}
	return false
}

// check implements k6's check(value, sets, tags?).
func (v *vu) check(call sobek.FunctionCall) sobek.Value {
	if v.State() == nil {
		v.throw("using check() in the init context is not supported")
	}
	val := call.Argument(0)
	sets, ok := call.Argument(1).(*sobek.Object)
	if !ok {
		v.throwTypeError("check(): the second argument must be an object of named checks")
	}
	extra := v.tagArg("check()", call.Argument(2))
	tags, meta := v.tags()
	for k, tv := range extra {
		tags = tags.With(k, tv)
	}
	keys := sets.Keys()
	samples := make([]metrics.Sample, 0, len(keys))
	all := true
	var thrown error
	now := time.Now()
	for _, name := range keys {
		if strings.Contains(name, "::") {
			v.throw("check(): check name %q can't contain '::'", name)
		}
		cv := sets.Get(name)
		pass := false
		if fn, isFn := sobek.AssertFunction(cv); isFn {
			if isAsyncFunction(cv) {
				v.throw("check(): %q is an async function; checks must be synchronous, await the value first", name)
			}
			res, err := fn(sobek.Undefined(), val)
			if err != nil {
				thrown = err
			} else if _, isPromise := res.Export().(*sobek.Promise); isPromise {
				v.throw("check(): %q returned a Promise; checks must be synchronous, await the value first", name)
			} else {
				pass = res.ToBoolean()
			}
		} else {
			pass = cv.ToBoolean()
		}
		if !pass {
			all = false
		}
		samples = append(samples, metrics.Sample{
			Metric: v.script.cfg.Builtin.Checks, Tags: tags.With("check", name),
			Time: now, Value: metrics.B(pass), Metadata: meta,
		})
		if thrown != nil {
			break
		}
	}
	v.emit(samples...)
	if thrown != nil {
		panic(thrown)
	}
	return v.rt.ToValue(all)
}

// group implements k6's group(name, fn).
func (v *vu) group(name string, fnv sobek.Value) sobek.Value {
	if v.State() == nil {
		v.throw("using group() in the init context is not supported")
	}
	if strings.Contains(name, "::") {
		v.throw("group(): group name %q can't contain '::'", name)
	}
	fn, ok := sobek.AssertFunction(fnv)
	if !ok {
		v.throwTypeError("group(%q): the second argument must be a function", name)
	}
	if isAsyncFunction(fnv) {
		v.throw("group(%q): async functions are not supported in group()", name)
	}
	prev := v.groupPath
	v.groupPath = prev + "::" + name
	v.curTags = nil
	start := time.Now()
	res, err := fn(sobek.Undefined())
	end := time.Now()
	tags, meta := v.tags()
	v.emit(metrics.Sample{Metric: v.script.cfg.Builtin.GroupDuration, Tags: tags, Time: end, Value: metrics.D(end.Sub(start)), Metadata: meta})
	v.groupPath = prev
	v.curTags = nil
	if err != nil {
		panic(err)
	}
	return res
}

// sleep blocks the VU for secs seconds, or until its context ends.
func (v *vu) sleep(secs float64) {
	d := time.Duration(secs * float64(time.Second))
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	select {
	case <-t.C:
	case <-v.ctx.Done():
		t.Stop()
		v.interrupt() // stop the script now, not when the watcher runs
	}
}

// fail throws an error with msg.
func (v *vu) fail(msg string) {
	v.throw("%s", msg)
}

// randomSeed seeds this VU's Math.random.
func (v *vu) randomSeed(seed int64) {
	v.rt.SetRandSource(newRand(seed))
}

// metricsExports is k6/metrics: the Counter, Gauge, Rate and Trend classes.
func (v *vu) metricsExports() modules.Exports {
	mk := func(typ metrics.MetricType) func(sobek.ConstructorCall) *sobek.Object {
		return func(call sobek.ConstructorCall) *sobek.Object { return v.newMetric(call, typ) }
	}
	return modules.Exports{Named: map[string]any{
		"Counter": mk(metrics.Counter),
		"Gauge":   mk(metrics.Gauge),
		"Rate":    mk(metrics.Rate),
		"Trend":   mk(metrics.Trend),
	}}
}

func (v *vu) newMetric(call sobek.ConstructorCall, typ metrics.MetricType) *sobek.Object {
	env := v.InitEnv()
	if env == nil {
		v.throw("metrics must be declared in the init context")
	}
	name := call.Argument(0)
	if sobek.IsUndefined(name) {
		v.throwTypeError("new %s(name): the metric name is missing", className(typ))
	}
	vt := metrics.Default
	if call.Argument(1).ToBoolean() {
		vt = metrics.Time
	}
	m, err := env.Registry.NewMetric(name.String(), typ, vt)
	if err != nil {
		v.throw("new %s(%q): %w", className(typ), name.String(), err)
	}
	o := call.This
	must(o.DefineDataProperty("name", v.rt.ToValue(m.Name), sobek.FLAG_FALSE, sobek.FLAG_FALSE, sobek.FLAG_TRUE))
	must(o.Set("add", func(c sobek.FunctionCall) sobek.Value { return v.addMetric(m, c) }))
	return o
}

func className(t metrics.MetricType) string {
	switch t {
	case metrics.Counter:
		return "Counter"
	case metrics.Gauge:
		return "Gauge"
	case metrics.Rate:
		return "Rate"
	}
	return "Trend"
}

func (v *vu) addMetric(m *metrics.Metric, call sobek.FunctionCall) sobek.Value {
	if v.State() == nil {
		v.throw("adding to metrics in the init context is not supported")
	}
	arg := call.Argument(0)
	var f float64
	switch x := arg.Export().(type) {
	case bool:
		f = metrics.B(x)
	case nil:
		v.script.logger.Warn("metric add: the value is null or undefined; sample dropped", "metric", m.Name)
		return v.rt.ToValue(false)
	default:
		f = arg.ToFloat()
	}
	if f != f {
		v.script.logger.Warn("metric add: the value is NaN; sample dropped", "metric", m.Name, "value", arg.String())
		return v.rt.ToValue(false)
	}
	extra := v.tagArg(m.Name+".add()", call.Argument(1))
	tags, meta := v.tags()
	for k, tv := range extra {
		tags = tags.With(k, tv)
	}
	v.emit(metrics.Sample{Metric: m, Tags: tags, Time: time.Now(), Value: f, Metadata: meta})
	return v.rt.ToValue(true)
}
