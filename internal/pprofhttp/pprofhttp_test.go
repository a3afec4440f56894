package pprofhttp

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestServeFromEnv(t *testing.T) {
	t.Setenv(EnvVar, "")
	addr, stop, err := ServeFromEnv()
	if err != nil || addr != "" {
		t.Fatalf("unset: %q, %v; want nothing served", addr, err)
	}
	stop()

	for _, bad := range []string{"0.0.0.0:6060", "10.0.0.1:6060", "localhost:6060", "6060"} {
		t.Setenv(EnvVar, bad)
		if _, _, err := ServeFromEnv(); err == nil || !strings.Contains(err.Error(), EnvVar) {
			t.Errorf("%s=%q: error %v, want one naming the variable", EnvVar, bad, err)
		}
	}

	t.Setenv(EnvVar, "127.0.0.1:0")
	addr, stop, err = ServeFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine profile:") {
		t.Fatalf("GET goroutine profile: %s %.80q", resp.Status, body)
	}
	stop()
	if _, err := http.Get("http://" + addr + "/debug/pprof/"); err == nil {
		t.Fatal("still serving after stop")
	}
}
