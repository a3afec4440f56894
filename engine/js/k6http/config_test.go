package k6http

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

func TestParseConfigErrorsNameTheOption(t *testing.T) {
	for _, c := range []struct{ raw, want string }{
		{`{"tlsVersion": "tls9"}`, `option tlsVersion: "tls9" is not one of tls1.0, tls1.1, tls1.2, tls1.3`},
		{`{"tlsVersion": {"min": "tls1.2", "max": "ssl3"}}`, `option tlsVersion: "ssl3"`},
		{`{"tlsAuth": [{"cert": "x", "key": "y"}]}`, `option tlsAuth[0]`},
		{`{"maxRedirects": "ten"}`, `k6/http options`},
	} {
		_, err := parseConfig([]byte(c.raw))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parseConfig(%s) = %v, want an error containing %q", c.raw, err, c.want)
		}
	}
	cfg, err := parseConfig([]byte(`{"tlsVersion": {"min": "tls1.2"}, "systemTags": ["status"], "maxRedirects": 0}`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.tlsMin == 0 || cfg.tlsMax != 0 || !cfg.tagSet["status"] || cfg.tagSet["url"] || cfg.maxRedirects() != 0 {
		t.Fatalf("config %+v", cfg)
	}
}

func TestMapHost(t *testing.T) {
	c := &config{Hosts: map[string]string{"a.test": "127.0.0.1", "b.test:80": "127.0.0.2:8080", "c.test": "127.0.0.3:9"}}
	for in, want := range map[string]string{
		"a.test:443": "127.0.0.1:443", "b.test:80": "127.0.0.2:8080", "b.test:81": "b.test:81",
		"c.test:1": "127.0.0.3:9", "other:1": "other:1",
	} {
		if got := c.mapHost(in); got != want {
			t.Errorf("mapHost(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestClassifyDialErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = net.Dial("tcp", addr)
	if code, _ := classify(err); code != codeConnRefused {
		t.Errorf("connection refused: code %d, want %d (%v)", code, codeConnRefused, err)
	}
	if code, msg := classify(errTimeout); code != codeRequestTimeout || msg != "request timeout" {
		t.Errorf("timeout: %d %q", code, msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	if code, _ := classify(ctx.Err()); code != codeRequestTimeout {
		t.Errorf("deadline: %d", code)
	}
	if code, _ := classify(errors.New("something else")); code != codeGeneric {
		t.Errorf("generic: %d", code)
	}
}
