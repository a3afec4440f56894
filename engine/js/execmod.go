package js

import (
	"bytes"
	"sort"
	"time"

	"github.com/grafana/sobek"

	"github.com/cdeload/cdeload/engine/lib"
	"github.com/cdeload/cdeload/engine/modules"
)

// executionExports is k6/execution: a default object with instance,
// scenario, test and vu, whose properties throw in the init context.
func (v *vu) executionExports() modules.Exports {
	rt := v.rt
	o := rt.NewObject()
	must(o.Set("instance", v.accessors("instance", map[string]func() any{
		"currentTestRunDuration": func() any { return float64(v.instance().CurrentTestRunDuration) / float64(time.Millisecond) },
		"iterationsCompleted":    func() any { return v.instance().IterationsCompleted },
		"iterationsInterrupted":  func() any { return v.instance().IterationsInterrupted },
		"vusActive":              func() any { return v.instance().VUsActive },
		"vusInitialized":         func() any { return v.instance().VUsInitialized },
	})))
	must(o.Set("scenario", v.accessors("scenario", map[string]func() any{
		"name":     func() any { return v.scenario().p.Scenario.Name },
		"executor": func() any { return v.scenario().p.Scenario.Executor },
		"startTime": func() any {
			return v.scenario().p.Scenario.StartTime.UnixMilli()
		},
		"progress": func() any {
			if f := v.scenario().p.Scenario.Progress; f != nil {
				return f()
			}
			return 0.0
		},
		"iterationInInstance": func() any { return v.scenario().inInstance },
		"iterationInTest":     func() any { return v.scenario().inTest },
	})))

	test := rt.NewObject()
	must(test.Set("abort", v.abort))
	must(test.Set("fail", v.markFailed))
	must(test.DefineAccessorProperty("options", rt.ToValue(func() sobek.Value {
		v.mustVUContext("test.options")
		return v.testOptions()
	}), nil, sobek.FLAG_FALSE, sobek.FLAG_TRUE))
	must(o.Set("test", test))

	vuo := v.accessors("vu", map[string]func() any{
		"idInInstance":        func() any { return v.id },
		"idInTest":            func() any { return v.idGlobal },
		"iterationInInstance": func() any { return max(v.iteration, 0) },
		"iterationInScenario": func() any {
			if v.act == nil {
				return int64(0)
			}
			return max(v.act.inScenario, 0)
		},
	})
	tags := rt.NewDynamicObject(&tagsObject{v: v})
	must(vuo.DefineAccessorProperty("tags", rt.ToValue(func() sobek.Value {
		v.mustVUContext("vu.tags")
		return tags
	}), nil, sobek.FLAG_FALSE, sobek.FLAG_TRUE))
	mo := rt.NewObject()
	must(mo.DefineAccessorProperty("tags", rt.ToValue(func() sobek.Value {
		v.mustVUContext("vu.metrics.tags")
		return tags
	}), nil, sobek.FLAG_FALSE, sobek.FLAG_TRUE))
	meta := rt.NewDynamicObject(&metadataObject{v: v})
	must(mo.DefineAccessorProperty("metadata", rt.ToValue(func() sobek.Value {
		v.mustVUContext("vu.metrics.metadata")
		return meta
	}), nil, sobek.FLAG_FALSE, sobek.FLAG_TRUE))
	must(vuo.DefineAccessorProperty("metrics", rt.ToValue(func() sobek.Value {
		v.mustVUContext("vu.metrics")
		return mo
	}), nil, sobek.FLAG_FALSE, sobek.FLAG_TRUE))
	must(o.Set("vu", vuo))
	return modules.Exports{Default: o}
}

// accessors makes an object whose properties are getters that throw in
// the init context.
func (v *vu) accessors(what string, getters map[string]func() any) *sobek.Object {
	o := v.rt.NewObject()
	names := make([]string, 0, len(getters))
	for n := range getters {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		get := getters[n]
		prop := what + "." + n
		must(o.DefineAccessorProperty(n, v.rt.ToValue(func() sobek.Value {
			v.mustVUContext(prop)
			return v.rt.ToValue(get())
		}), nil, sobek.FLAG_FALSE, sobek.FLAG_TRUE))
	}
	return o
}

func (v *vu) mustVUContext(what string) {
	if v.State() == nil {
		v.throw("getting %s in the init context is not supported", what)
	}
}

func (v *vu) instance() lib.InstanceStats {
	if v.runner == nil || v.runner.rc.Control == nil {
		return lib.InstanceStats{}
	}
	return v.runner.rc.Control.Instance()
}

func (v *vu) scenario() *activeVU {
	if v.act == nil || v.act.p.Scenario == nil {
		v.throw("getting scenario information outside of a scenario (in setup, teardown or handleSummary) is not supported")
	}
	return v.act
}

func (v *vu) testOptions() sobek.Value {
	if v.runner == nil || v.runner.rc.Control == nil {
		return v.rt.NewObject()
	}
	raw := v.runner.rc.Control.Options()
	if len(raw) == 0 {
		return v.rt.NewObject()
	}
	val, err := v.parseJSON(raw)
	if err != nil {
		v.throw("test.options: %w", err)
	}
	return val
}

// abort implements exec.test.abort(reason): the run stops with exit code
// 108. It works in the init context too.
func (v *vu) abort(call sobek.FunctionCall) sobek.Value {
	reason := ""
	if a := call.Argument(0); !sobek.IsUndefined(a) {
		reason = a.String()
	}
	loc := v.callerLocation()
	if v.runner != nil && v.runner.rc.Control != nil {
		if la, ok := v.runner.rc.Control.(lib.LocatedAborter); ok {
			la.AbortAt(reason, loc)
		} else {
			v.runner.rc.Control.Abort(reason)
		}
	}
	v.rt.Interrupt(&lib.AbortError{Reason: reason, Location: loc})
	return sobek.Undefined()
}

// callerLocation is the innermost script frame of the current call, as k6
// prints it: "default (file:///path/script.js:11:13(4))".
func (v *vu) callerLocation() string {
	for _, f := range v.rt.CaptureCallStack(0, nil) {
		if f.SrcName() == "<native>" {
			continue
		}
		var b bytes.Buffer
		f.Write(&b)
		return b.String()
	}
	return ""
}

// markFailed implements exec.test.fail(reason): the run goes on and exits
// with code 110.
func (v *vu) markFailed(call sobek.FunctionCall) sobek.Value {
	v.mustVUContext("test.fail")
	reason := ""
	if a := call.Argument(0); !sobek.IsUndefined(a) {
		reason = a.String()
	}
	if v.runner.rc.Control != nil {
		v.runner.rc.Control.Fail(reason)
	}
	v.script.logger.Warn("test marked as failed", "reason", reason)
	return sobek.Undefined()
}

// tagsObject is exec.vu.tags: the VU's current tags; setting a tag applies
// to the samples emitted after.
type tagsObject struct{ v *vu }

func (t *tagsObject) Get(key string) sobek.Value {
	tags, _ := t.v.tags()
	if val, ok := tags.Get(key); ok {
		return t.v.rt.ToValue(val)
	}
	return nil
}

func (t *tagsObject) Set(key string, val sobek.Value) bool {
	if !isPrimitiveTagValue(val) {
		t.v.throwTypeError("exec.vu.tags: the value of tag %q must be a string, a number or a boolean", key)
	}
	if t.v.vuTags == nil {
		t.v.vuTags = map[string]string{}
	}
	t.v.vuTags[key] = val.String()
	t.v.curTags = nil
	return true
}

func (t *tagsObject) Has(key string) bool {
	tags, _ := t.v.tags()
	_, ok := tags.Get(key)
	return ok
}

func (t *tagsObject) Delete(key string) bool {
	delete(t.v.vuTags, key)
	t.v.curTags = nil
	return true
}

func (t *tagsObject) Keys() []string {
	tags, _ := t.v.tags()
	var keys []string
	tags.Each(func(k, _ string) { keys = append(keys, k) })
	return keys
}

// metadataObject is exec.vu.metrics.metadata.
type metadataObject struct{ v *vu }

func (m *metadataObject) Get(key string) sobek.Value {
	if val, ok := m.v.userMeta[key]; ok {
		return m.v.rt.ToValue(val)
	}
	return nil
}

func (m *metadataObject) Set(key string, val sobek.Value) bool {
	if !isPrimitiveTagValue(val) {
		m.v.throwTypeError("exec.vu.metrics.metadata: the value of %q must be a string, a number or a boolean", key)
	}
	if m.v.userMeta == nil {
		m.v.userMeta = map[string]string{}
	}
	m.v.userMeta[key] = val.String()
	m.v.curMeta = nil
	return true
}

func (m *metadataObject) Has(key string) bool {
	_, ok := m.v.userMeta[key]
	return ok
}

func (m *metadataObject) Delete(key string) bool {
	delete(m.v.userMeta, key)
	m.v.curMeta = nil
	return true
}

func (m *metadataObject) Keys() []string {
	keys := make([]string, 0, len(m.v.userMeta))
	for k := range m.v.userMeta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
