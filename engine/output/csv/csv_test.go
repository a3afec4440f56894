package csv

import (
	"compress/gzip"
	stdcsv "encoding/csv"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/engine/output"
)

func run(t *testing.T, p output.Params, samples ...metrics.Sample) {
	t.Helper()
	o, err := output.New("csv", p)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Start(); err != nil {
		t.Fatal(err)
	}
	for _, s := range samples {
		o.AddMetricSamples([]metrics.Samples{{s}})
	}
	if err := o.Stop(); err != nil {
		t.Fatal(err)
	}
}

func readCSV(t *testing.T, r io.Reader) [][]string {
	t.Helper()
	rows, err := stdcsv.NewReader(r).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestCSVColumnsAndValues(t *testing.T) {
	reg := metrics.NewRegistry()
	dur := reg.MustNewMetric("http_req_duration", metrics.Trend, metrics.Time)
	tags := metrics.NewTagSet(map[string]string{
		"method": "GET", "status": "200", "scenario": "default", "url": "http://127.0.0.1/a,b",
		"expected_response": "true", "testid": "t1", "transport": "ssh",
	})
	ts := time.Unix(1755770000, 123456789)
	file := filepath.Join(t.TempDir(), "out.csv")
	run(t, output.Params{Arg: file},
		metrics.Sample{Metric: dur, Tags: tags, Time: ts, Value: 12.5, Metadata: map[string]string{"vu": "2", "iter": "9"}},
		metrics.Sample{Metric: dur, Time: ts, Value: 1})
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows := readCSV(t, f)
	wantHeader := strings.Split("metric_name,timestamp,metric_value,check,error,error_code,expected_response,group,method,name,proto,scenario,service,status,subproto,tls_version,url,extra_tags,metadata", ",")
	if !reflect.DeepEqual(rows[0], wantHeader) {
		t.Fatalf("header = %v", rows[0])
	}
	if len(rows) != 3 {
		t.Fatalf("rows = %v", rows)
	}
	got := map[string]string{}
	for i, h := range rows[0] {
		got[h] = rows[1][i]
	}
	want := map[string]string{
		"metric_name": "http_req_duration", "timestamp": "1755770000", "metric_value": "12.500000",
		"check": "", "error": "", "error_code": "", "expected_response": "true", "group": "",
		"method": "GET", "name": "", "proto": "", "scenario": "default", "service": "", "status": "200",
		"subproto": "", "tls_version": "", "url": "http://127.0.0.1/a,b",
		"extra_tags": "testid=t1&transport=ssh", "metadata": "iter=9&vu=2",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("row =\n%v\nwant\n%v", got, want)
	}
	if rows[2][2] != "1.000000" || rows[2][17] != "" || rows[2][18] != "" {
		t.Errorf("untagged row = %v", rows[2])
	}
}

func TestCSVGzipAndTimeFormatFromEnvAndArg(t *testing.T) {
	reg := metrics.NewRegistry()
	c := reg.MustNewMetric("iterations", metrics.Counter)
	ts := time.Unix(1755770000, 123456789).UTC()
	dir := t.TempDir()
	file := filepath.Join(dir, "out.csv.gz")
	env := map[string]string{"K6_CSV_TIME_FORMAT": "unix_milli", "K6_CSV_FILENAME": filepath.Join(dir, "ignored.csv")}
	run(t, output.Params{Arg: "file=" + file + ",saveInterval=100ms,timeFormat=rfc3339_nano", Env: env},
		metrics.Sample{Metric: c, Time: ts, Value: 1})
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	rows := readCSV(t, zr)
	if len(rows) != 2 || rows[1][1] != "2025-08-21T09:53:20.123456789Z" {
		t.Errorf("rows = %v", rows)
	}
	// Env alone selects the time format.
	file2 := filepath.Join(dir, "env.csv")
	run(t, output.Params{Env: map[string]string{"K6_CSV_TIME_FORMAT": "unix_milli", "K6_CSV_FILENAME": file2}},
		metrics.Sample{Metric: c, Time: ts, Value: 1})
	b, err := os.ReadFile(file2)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "iterations,1755770000123,1.000000") {
		t.Errorf("file = %s", b)
	}
}

func TestCSVWritesEverySaveInterval(t *testing.T) {
	file := filepath.Join(t.TempDir(), "live.csv")
	cfg, err := ParseConfig(nil, nil, "fileName="+file+",saveInterval=50ms")
	if err != nil {
		t.Fatal(err)
	}
	o := New(cfg, nil)
	if err := o.Start(); err != nil {
		t.Fatal(err)
	}
	defer o.Stop()
	reg := metrics.NewRegistry()
	m := reg.MustNewMetric("vus", metrics.Gauge)
	o.AddMetricSamples([]metrics.Samples{{{Metric: m, Time: time.Now(), Value: 4}}})
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(file)
		if strings.Contains(string(b), "vus,") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("row not written before Stop; file = %q", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCSVConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`{"fileName":"a.csv","saveInterval":"3s","timeFormat":"unix_nano"}`),
		map[string]string{"K6_CSV_SAVE_INTERVAL": "2s"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.FileName != "a.csv" || c.SaveInterval != 2*time.Second || c.TimeFormat != TimeUnixNano {
		t.Errorf("config = %+v", c)
	}
	if c, err := ParseConfig(nil, nil, "plain.csv"); err != nil || c.FileName != "plain.csv" || c.SaveInterval != time.Second || c.TimeFormat != TimeUnix {
		t.Errorf("plain file = %+v, %v", c, err)
	}
	for _, tc := range []struct {
		json, arg string
		env       map[string]string
		want      []string
	}{
		{arg: "file=x.csv,interval=1s", want: []string{`"interval"`, `"1s"`, "saveInterval"}},
		{arg: "file=x.csv,saveInterval=often", want: []string{`"often"`, "saveInterval"}},
		{arg: "file=x.csv,timeFormat=iso", want: []string{`"iso"`, "timeFormat", "rfc3339_nano"}},
		{env: map[string]string{"K6_CSV_SAVE_INTERVAL": "-1s"}, want: []string{`"-1s"`, "K6_CSV_SAVE_INTERVAL"}},
		{json: `{"file":"x"}`, want: []string{`"file"`, "fileName"}},
		{arg: "file=x.csv,,", want: []string{"invalid argument"}},
	} {
		_, err := ParseConfig([]byte(tc.json), tc.env, tc.arg)
		if err == nil {
			t.Errorf("%+v: no error", tc)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not mention %q", err, w)
			}
		}
	}
}
