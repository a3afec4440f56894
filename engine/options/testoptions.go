package options

import (
	"encoding/json"
	"slices"
)

// k6OptionKeys are the top-level keys of k6's options object as scripts
// see it in exec.test.options; an unset one is null there.
var k6OptionKeys = []string{
	"paused", "executionSegment", "executionSegmentSequence", "noSetup", "setupTimeout", "noTeardown",
	"teardownTimeout", "rps", "dns", "maxRedirects", "userAgent", "batch", "batchPerHost", "httpDebug",
	"insecureSkipTLSVerify", "tlsCipherSuites", "tlsVersion", "tlsAuth", "throw", "thresholds",
	"blacklistIPs", "blockHostnames", "hosts", "noConnectionReuse", "noVUConnectionReuse",
	"minIterationDuration", "ext", "summaryTrendStats", "summaryTimeUnit", "systemTags", "tags",
	"metricSamplesBufferSize", "noCookiesReset", "discardResponseBodies", "consoleOutput", "scenarios",
	"localIPs",
}

// scenariosWithNulls returns the scenarios as exec.test.options shows
// them: a field the user did not set is null (k6 keeps its defaults out of
// the options), except "options", which is left out. Nil when sc is empty
// or does not encode.
func scenariosWithNulls(sc Scenarios) json.RawMessage {
	if len(sc) == 0 {
		return nil
	}
	out := make(map[string]map[string]json.RawMessage, len(sc))
	for name, s := range sc {
		var m map[string]json.RawMessage
		b, err := json.Marshal(s)
		if err != nil || json.Unmarshal(b, &m) != nil {
			return nil
		}
		for _, f := range append(slices.Clone(commonFields), executorFields[s.Executor]...) {
			switch {
			case f == "executor" || s.Set[f]:
			case f == "options":
				delete(m, f)
			default:
				m[f] = json.RawMessage("null")
			}
		}
		out[name] = m
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil
	}
	return b
}

// shortcutKeys are folded into the scenarios by consolidation: k6 shows
// them as null next to the scenario they became.
var shortcutKeys = []string{"vus", "duration", "iterations", "stages"}

// TestOptionsJSON is the options object of exec.test.options in k6's
// shape: every k6 option key present (null when unset), the execution
// shortcuts null because they live in the scenarios, and summaryTrendStats
// and systemTags with their effective values.
func (o *Options) TestOptionsJSON() json.RawMessage {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(o.JSON(), &m); err != nil || m == nil {
		m = map[string]json.RawMessage{}
	}
	null := json.RawMessage("null")
	for _, k := range k6OptionKeys {
		if _, ok := m[k]; !ok {
			m[k] = null
		}
	}
	if len(o.Scenarios) > 0 {
		for _, k := range shortcutKeys {
			m[k] = null
		}
	}
	if sc := scenariosWithNulls(o.Scenarios); sc != nil {
		m["scenarios"] = sc
	}
	if o.SummaryTrendStats == nil {
		m["summaryTrendStats"], _ = json.Marshal(DefaultSummaryTrendStats)
	}
	if o.SystemTags == nil {
		tags := slices.Clone(DefaultSystemTags)
		slices.Sort(tags)
		m["systemTags"], _ = json.Marshal(tags)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return o.JSON()
	}
	return b
}
