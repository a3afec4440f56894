package json

import (
	"bufio"
	"bytes"
	"compress/gzip"
	stdjson "encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/engine/output"
)

type line struct {
	Type   string                        `json:"type"`
	Metric string                        `json:"metric"`
	Data   map[string]stdjson.RawMessage `json:"data"`
}

func readLines(t *testing.T, r io.Reader) []line {
	t.Helper()
	var out []line
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var l line
		dec := stdjson.NewDecoder(bytes.NewReader(sc.Bytes()))
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

func field[T any](t *testing.T, l line, key string) T {
	t.Helper()
	var v T
	raw, ok := l.Data[key]
	if !ok {
		t.Fatalf("line %+v has no data.%s", l, key)
	}
	if err := stdjson.Unmarshal(raw, &v); err != nil {
		t.Fatalf("data.%s = %s: %v", key, raw, err)
	}
	return v
}

func writeRun(t *testing.T, file string) (metrics.Samples, *metrics.Metric) {
	t.Helper()
	o, err := output.New("json", output.Params{Arg: file})
	if err != nil {
		t.Fatal(err)
	}
	o.(output.WithThresholds).SetThresholds(map[string][]string{
		"http_req_duration":                         {"p(95)<200", "avg<100"},
		"http_req_duration{expected_response:true}": {"p(99)<300"},
	})
	if err := o.Start(); err != nil {
		t.Fatal(err)
	}
	reg := metrics.NewRegistry()
	dur := reg.MustNewMetric("http_req_duration", metrics.Trend, metrics.Time)
	vus := reg.MustNewMetric("vus", metrics.Gauge)
	tags := metrics.NewTagSet(map[string]string{"scenario": "default", "name": "quote\" back\\ nl\n é"})
	ts := time.Date(2026, 8, 21, 10, 11, 12, 123456789, time.FixedZone("X", 2*3600))
	samples := metrics.Samples{
		{Metric: dur, Tags: tags, Time: ts, Value: 12.5, Metadata: map[string]string{"vu": "1", "iter": "0"}},
		{Metric: vus, Tags: nil, Time: ts.Add(time.Second), Value: 3},
		{Metric: dur, Tags: tags, Time: ts.Add(2 * time.Second), Value: 1e-7},
		{Metric: dur, Tags: tags, Time: ts.Add(2 * time.Second), Value: math.NaN()},
	}
	o.AddMetricSamples([]metrics.Samples{samples[:2]})
	o.AddMetricSamples([]metrics.Samples{samples[2:]})
	if err := o.Stop(); err != nil {
		t.Fatal(err)
	}
	return samples, dur
}

func checkLines(t *testing.T, lines []line, samples metrics.Samples) {
	t.Helper()
	var types []string
	for _, l := range lines {
		types = append(types, l.Type+":"+l.Metric)
	}
	want := []string{"Metric:http_req_duration", "Point:http_req_duration", "Metric:vus", "Point:vus", "Point:http_req_duration"}
	if !reflect.DeepEqual(types, want) {
		t.Fatalf("lines = %v, want %v (the NaN sample is skipped)", types, want)
	}
	m := lines[0]
	if field[string](t, m, "name") != "http_req_duration" || field[string](t, m, "type") != "trend" ||
		field[string](t, m, "contains") != "time" {
		t.Errorf("metric line = %v", m.Data)
	}
	if th := field[[]string](t, m, "thresholds"); !reflect.DeepEqual(th, []string{"p(95)<200", "avg<100"}) {
		t.Errorf("thresholds = %v", th)
	}
	subs := field[[]map[string]any](t, m, "submetrics")
	if len(subs) != 1 || subs[0]["name"] != "http_req_duration{expected_response:true}" ||
		subs[0]["suffix"] != "expected_response:true" ||
		!reflect.DeepEqual(subs[0]["tags"], map[string]any{"expected_response": "true"}) {
		t.Errorf("submetrics = %v", subs)
	}
	if th := field[[]string](t, lines[2], "thresholds"); th == nil || len(th) != 0 {
		t.Errorf("vus thresholds = %#v, want []", th)
	}

	p := lines[1]
	tm, err := time.Parse(time.RFC3339Nano, field[string](t, p, "time"))
	if err != nil || !tm.Equal(samples[0].Time) {
		t.Errorf("time = %v (%v), want %v", tm, err, samples[0].Time)
	}
	if field[string](t, p, "time") != "2026-08-21T10:11:12.123456789+02:00" {
		t.Errorf("time text = %s", p.Data["time"])
	}
	if v := field[float64](t, p, "value"); v != 12.5 {
		t.Errorf("value = %v", v)
	}
	if tags := field[map[string]string](t, p, "tags"); !reflect.DeepEqual(tags, samples[0].Tags.Map()) {
		t.Errorf("tags = %v", tags)
	}
	if md := field[map[string]string](t, p, "metadata"); !reflect.DeepEqual(md, samples[0].Metadata) {
		t.Errorf("metadata = %v", md)
	}
	if tags := field[map[string]string](t, lines[3], "tags"); len(tags) != 0 {
		t.Errorf("vus tags = %v", tags)
	}
	if _, ok := lines[3].Data["metadata"]; ok {
		t.Errorf("metadata written for a sample without metadata")
	}
	if v := field[float64](t, lines[4], "value"); v != 1e-7 {
		t.Errorf("small value = %v", v)
	}
}

func TestJSONFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "out.json")
	samples, _ := writeRun(t, file)
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	checkLines(t, readLines(t, f), samples)
}

func TestJSONGzip(t *testing.T) {
	file := filepath.Join(t.TempDir(), "out.json.gz")
	samples, _ := writeRun(t, file)
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("not gzip: %v", err)
	}
	checkLines(t, readLines(t, zr), samples)
}

func TestJSONFlushesWhileRunning(t *testing.T) {
	file := filepath.Join(t.TempDir(), "live.json")
	o, err := New(output.Params{Arg: file})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Start(); err != nil {
		t.Fatal(err)
	}
	defer o.Stop()
	reg := metrics.NewRegistry()
	m := reg.MustNewMetric("iterations", metrics.Counter)
	o.AddMetricSamples([]metrics.Samples{{{Metric: m, Time: time.Now(), Value: 1}}})
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(file)
		if strings.Count(string(b), "\n") == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("samples not flushed before Stop; file = %q", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestJSONStdoutAndErrors(t *testing.T) {
	var buf bytes.Buffer
	o, err := New(output.Params{Arg: "-", Stdout: &buf})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Start(); err != nil {
		t.Fatal(err)
	}
	reg := metrics.NewRegistry()
	m := reg.MustNewMetric("checks", metrics.Rate)
	o.AddMetricSamples([]metrics.Samples{{{Metric: m, Time: time.Unix(0, 0).UTC(), Value: 1}}})
	if err := o.Stop(); err != nil {
		t.Fatal(err)
	}
	want := `{"type":"Metric","data":{"name":"checks","type":"rate","contains":"default","thresholds":[],"submetrics":null},"metric":"checks"}` + "\n" +
		`{"type":"Point","data":{"time":"1970-01-01T00:00:00Z","value":1,"tags":{}},"metric":"checks"}` + "\n"
	if buf.String() != want {
		t.Errorf("stdout =\n%s\nwant\n%s", buf.String(), want)
	}

	bad, err := New(output.Params{Arg: filepath.Join(t.TempDir(), "no", "such", "dir.json")})
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.Start(); err == nil || !strings.Contains(err.Error(), "dir.json") {
		t.Errorf("Start into a missing directory: %v", err)
	}
	if _, err := New(output.Params{Arg: "x.json", ConfigJSON: []byte(`{"file":"y"}`)}); err == nil {
		t.Error("config file section accepted")
	}
}
