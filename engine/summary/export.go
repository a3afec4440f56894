package summary

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"

	"github.com/cdeload/cdeload/engine/metrics"
)

// legacyValues maps a metric's values to the flat legacy export keys: a
// Rate's rate becomes "value".
func legacyValues(m *Metric) map[string]any {
	out := make(map[string]any, len(m.Values)+1)
	for k, v := range m.Values {
		if m.Type == metrics.Rate && k == "rate" {
			k = "value"
		}
		out[k] = finite(v)
	}
	return out
}

// finite returns v, or nil for NaN and ±Inf, which JSON cannot carry.
func finite(v float64) any {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return v
}

type legacyCheck struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	ID     string `json:"id"`
	Passes uint64 `json:"passes"`
	Fails  uint64 `json:"fails"`
}

type legacyGroup struct {
	Name   string                  `json:"name"`
	Path   string                  `json:"path"`
	ID     string                  `json:"id"`
	Groups map[string]*legacyGroup `json:"groups"`
	Checks map[string]legacyCheck  `json:"checks"`
}

func toLegacyGroup(g *Group) *legacyGroup {
	lg := &legacyGroup{Name: g.Name, Path: g.Path, ID: g.ID,
		Groups: map[string]*legacyGroup{}, Checks: map[string]legacyCheck{}}
	for _, c := range g.Groups {
		lg.Groups[c.Name] = toLegacyGroup(c)
	}
	for _, c := range g.Checks {
		lg.Checks[c.Name] = legacyCheck(*c)
	}
	return lg
}

func rootGroup(d *Data) *Group {
	if d.RootGroup != nil {
		return d.RootGroup
	}
	return NewGroup("")
}

// ExportJSON renders the legacy --summary-export document:
// {root_group, metrics, setup_data?}. Metric values are flat (Counter
// count, rate; Gauge value, min, max; Rate value, passes, fails; Trend one
// key per trend stat) plus "thresholds": {"<source>": failed}, where true
// means the threshold FAILED, as in k6.
func ExportJSON(d *Data) ([]byte, error) {
	ms := map[string]map[string]any{}
	for _, m := range d.Metrics {
		v := legacyValues(m)
		if len(m.Thresholds) > 0 {
			th := map[string]bool{}
			for _, r := range m.Thresholds {
				th[r.Threshold.Source] = !r.Ok
			}
			v["thresholds"] = th
		}
		ms[m.Name] = v
	}
	doc := map[string]any{"root_group": toLegacyGroup(rootGroup(d)), "metrics": ms}
	if len(d.SetupData) > 0 {
		doc["setup_data"] = d.SetupData
	}
	out, err := marshal(doc, "    ")
	if err != nil {
		return nil, fmt.Errorf("encoding the summary export: %w", err)
	}
	return out, nil
}

// WriteExport writes ExportJSON to path (--summary-export).
func WriteExport(path string, d *Data) error {
	b, err := ExportJSON(d)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("writing --summary-export file: %w", err)
	}
	return nil
}

type hsThreshold struct {
	Ok bool `json:"ok"`
}

type hsMetric struct {
	Type       string                 `json:"type"`
	Contains   string                 `json:"contains"`
	Values     map[string]any         `json:"values"`
	Thresholds map[string]hsThreshold `json:"thresholds,omitempty"`
}

type hsGroup struct {
	Name   string        `json:"name"`
	Path   string        `json:"path"`
	ID     string        `json:"id"`
	Groups []*hsGroup    `json:"groups"`
	Checks []legacyCheck `json:"checks"`
}

func toHSGroup(g *Group) *hsGroup {
	h := &hsGroup{Name: g.Name, Path: g.Path, ID: g.ID, Groups: []*hsGroup{}, Checks: []legacyCheck{}}
	for _, c := range g.Groups {
		h.Groups = append(h.Groups, toHSGroup(c))
	}
	for _, c := range g.Checks {
		h.Checks = append(h.Checks, legacyCheck(*c))
	}
	return h
}

type hsOptions struct {
	SummaryTrendStats []string `json:"summaryTrendStats"`
	SummaryTimeUnit   string   `json:"summaryTimeUnit"`
	NoColor           bool     `json:"noColor"`
}

type hsState struct {
	IsStdOutTTY       bool    `json:"isStdOutTTY"`
	IsStdErrTTY       bool    `json:"isStdErrTTY"`
	TestRunDurationMs float64 `json:"testRunDurationMs"`
}

type hsData struct {
	Metrics   map[string]hsMetric `json:"metrics"`
	RootGroup *hsGroup            `json:"root_group"`
	Options   hsOptions           `json:"options"`
	State     hsState             `json:"state"`
	SetupData json.RawMessage     `json:"setup_data,omitempty"`
}

// HandleSummaryData returns the argument of the script's
// handleSummary(data): {metrics: {<name>: {type, contains, values,
// thresholds?: {"<source>": {ok}}}}, root_group (groups and checks as
// arrays), options {summaryTrendStats, summaryTimeUnit, noColor}, state
// {isStdOutTTY, isStdErrTTY, testRunDurationMs}, setup_data?}.
func HandleSummaryData(d *Data) (json.RawMessage, error) {
	h := hsData{
		Metrics:   map[string]hsMetric{},
		RootGroup: toHSGroup(rootGroup(d)),
		Options: hsOptions{SummaryTrendStats: d.Options.trendStats(),
			SummaryTimeUnit: d.Options.TimeUnit, NoColor: d.Options.NoColor},
		State: hsState{IsStdOutTTY: d.Options.IsStdOutTTY, IsStdErrTTY: d.Options.IsStdErrTTY,
			TestRunDurationMs: float64(d.TestRunDuration) / 1e6},
		SetupData: d.SetupData,
	}
	for _, m := range d.Metrics {
		hm := hsMetric{Type: m.Type.String(), Contains: m.Contains.String(), Values: map[string]any{}}
		for k, v := range m.Values {
			hm.Values[k] = finite(v)
		}
		if len(m.Thresholds) > 0 {
			hm.Thresholds = map[string]hsThreshold{}
			for _, r := range m.Thresholds {
				hm.Thresholds[r.Threshold.Source] = hsThreshold{Ok: r.Ok}
			}
		}
		h.Metrics[m.Name] = hm
	}
	out, err := marshal(h, "")
	if err != nil {
		return nil, fmt.Errorf("encoding the handleSummary data: %w", err)
	}
	return bytes.TrimSuffix(out, []byte("\n")), nil
}

// WriteResults writes what handleSummary returned: the value of "stdout"
// goes to stdout, "stderr" to stderr, and every other key is a file path
// (relative to dir when not absolute) that receives its value. Values must
// be strings or byte slices. Every entry is attempted; the errors are
// joined and each names its key.
func WriteResults(result map[string]any, stdout, stderr io.Writer, dir string) error {
	keys := make([]string, 0, len(result))
	for k := range result {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		var data []byte
		switch v := result[k].(type) {
		case string:
			data = []byte(v)
		case []byte:
			data = v
		case json.RawMessage:
			data = v
		case nil:
			continue
		default:
			errs = append(errs, fmt.Errorf("handleSummary result %q: value is a %T; expected a string or an ArrayBuffer", k, v))
			continue
		}
		var err error
		switch k {
		case "stdout":
			_, err = io.Copy(stdout, bytes.NewReader(data))
		case "stderr":
			_, err = io.Copy(stderr, bytes.NewReader(data))
		default:
			p := k
			if !filepath.IsAbs(p) && dir != "" {
				p = filepath.Join(dir, p)
			}
			err = os.WriteFile(p, data, 0o644)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("handleSummary result %q: %w", k, err))
		}
	}
	return errors.Join(errs...)
}

// marshal encodes v without HTML escaping, so that "p(95)<200" stays
// readable, as JavaScript's JSON.stringify writes it.
func marshal(v any, indent string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if indent != "" {
		enc.SetIndent("", indent)
	}
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
