package prometheusrw

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	c, err := ParseConfig(nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.URL != "http://localhost:9090/api/v1/write" || c.PushInterval != 5*time.Second ||
		strings.Join(c.TrendStats, ",") != "p(99)" || c.TLSMinVersion != tls.VersionTLS13 ||
		c.StaleMarkers || c.TrendAsNativeHistogram {
		t.Errorf("defaults = %+v", c)
	}
}

func TestConfigPrecedenceJSONEnvArg(t *testing.T) {
	js := []byte(`{"url":"http://127.0.0.1:1/json","pushInterval":"7s","trendStats":["avg","p(90)"],
		"headers":{"X-A":"json"},"staleMarkers":true,"username":"u1","password":"p1"}`)
	env := map[string]string{
		"K6_PROMETHEUS_RW_PUSH_INTERVAL":       "3s",
		"K6_PROMETHEUS_RW_HEADERS_X-B":         "env",
		"K6_PROMETHEUS_RW_HTTP_HEADERS":        "X-C: c1 ,X-D:d1",
		"K6_PROMETHEUS_RW_TREND_STATS":         "p(95),p(99.9),min,max,count,sum,med",
		"K6_PROMETHEUS_RW_TLS_MINIMUM_VERSION": "1.2",
		"K6_OTHER":                             "ignored",
	}
	c, err := ParseConfig(js, env, "url=http://127.0.0.1:2/arg,headers.X-A=arg,insecureSkipTLSVerify=true")
	if err != nil {
		t.Fatal(err)
	}
	if c.URL != "http://127.0.0.1:2/arg" {
		t.Errorf("url = %q (arg wins)", c.URL)
	}
	if c.PushInterval != 3*time.Second {
		t.Errorf("pushInterval = %v (env beats JSON)", c.PushInterval)
	}
	if got := strings.Join(c.TrendStats, ","); got != "p(95),p(99.9),min,max,count,sum,med" {
		t.Errorf("trendStats = %q", got)
	}
	if c.Headers["X-A"] != "arg" || c.Headers["X-B"] != "env" || c.Headers["X-C"] != "c1" || c.Headers["X-D"] != "d1" {
		t.Errorf("headers = %v", c.Headers)
	}
	if !c.StaleMarkers || !c.InsecureSkipTLSVerify || c.TLSMinVersion != tls.VersionTLS12 || c.Username != "u1" {
		t.Errorf("config = %+v", c)
	}
}

func TestConfigPushIntervalMillis(t *testing.T) {
	c, err := ParseConfig([]byte(`{"pushInterval":1500}`), nil, "")
	if err != nil || c.PushInterval != 1500*time.Millisecond {
		t.Fatalf("pushInterval = %v, %v", c.PushInterval, err)
	}
}

func TestConfigErrorsNameKeyAndValue(t *testing.T) {
	cases := []struct {
		name string
		json string
		env  map[string]string
		arg  string
		want []string
	}{
		{name: "unknown arg key", arg: "url=http://127.0.0.1:1,pushIntervall=1s", want: []string{`"pushIntervall"`, `"1s"`, "allowed keys"}},
		{name: "arg without =", arg: "http://127.0.0.1:1", want: []string{`"http://127.0.0.1:1"`, "key=value"}},
		{name: "bad interval", arg: "pushInterval=soon", want: []string{`"soon"`, "pushInterval", "duration"}},
		{name: "zero interval", env: map[string]string{"K6_PROMETHEUS_RW_PUSH_INTERVAL": "0s"}, want: []string{`"0s"`, "K6_PROMETHEUS_RW_PUSH_INTERVAL"}},
		{name: "bad bool", arg: "staleMarkers=yes please", want: []string{`"yes please"`, "staleMarkers", "true or false"}},
		{name: "bad tls", env: map[string]string{"K6_PROMETHEUS_RW_TLS_MINIMUM_VERSION": "1.4"}, want: []string{`"1.4"`, "K6_PROMETHEUS_RW_TLS_MINIMUM_VERSION", "1.3"}},
		{name: "bad stat", env: map[string]string{"K6_PROMETHEUS_RW_TREND_STATS": "p(95),p(101)"}, want: []string{`"p(101)"`, "K6_PROMETHEUS_RW_TREND_STATS", "0 to 100"}},
		{name: "unknown stat", env: map[string]string{"K6_PROMETHEUS_RW_TREND_STATS": "median"}, want: []string{`"median"`, "count, sum, min, max, avg, med, p(N)"}},
		{name: "unknown env", env: map[string]string{"K6_PROMETHEUS_RW_PUSHINTERVAL": "1s"}, want: []string{"K6_PROMETHEUS_RW_PUSHINTERVAL", "K6_PROMETHEUS_RW_PUSH_INTERVAL"}},
		{name: "unknown json key", json: `{"pushIntervall":"1s"}`, want: []string{"pushIntervall", "allowed keys"}},
		{name: "bad url", arg: "url=ftp://x", want: []string{`"ftp://x"`, "http"}},
		{name: "cert without key", arg: "clientCertificate=/tmp/c.pem", want: []string{"clientCertificateKey"}},
		{name: "bearer and basic", env: map[string]string{"K6_PROMETHEUS_RW_BEARER_TOKEN": "t", "K6_PROMETHEUS_RW_USERNAME": "u"}, want: []string{"bearer", "username"}},
		{name: "partial sigv4", env: map[string]string{"K6_PROMETHEUS_RW_SIGV4_REGION": "eu-west-1"}, want: []string{"sigV4AccessKey"}},
		{name: "bad header env", env: map[string]string{"K6_PROMETHEUS_RW_HTTP_HEADERS": "novalue"}, want: []string{`"novalue"`, "name:value"}},
		{name: "labels", env: map[string]string{"K6_PROMETHEUS_RW_LABELS": "a=b"}, want: []string{"K6_PROMETHEUS_RW_LABELS", "--tag"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.json), tc.env, tc.arg)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestConfigErrorsDoNotLeakURLPassword(t *testing.T) {
	_, err := ParseConfig(nil, nil, "url=ftp://bob:hunter2@127.0.0.1/x")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("err = %v", err)
	}
}
