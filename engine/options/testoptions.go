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
