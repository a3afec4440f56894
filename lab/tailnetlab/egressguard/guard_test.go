package egressguard_test

import (
	"net/http"
	"net/url"
	"os"
	"testing"

	"github.com/cdeload/cdeload/lab/tailnetlab/egressguard"
)

// viaGuard sends one request for a host off the machine through the proxy
// that HTTP_PROXY names now (http.ProxyFromEnvironment caches the first
// value it reads, so it cannot be used across several guards).
func viaGuard(t *testing.T) int {
	t.Helper()
	proxy, err := url.Parse(os.Getenv("HTTP_PROXY"))
	if err != nil || proxy.Hostname() != "127.0.0.1" {
		t.Fatalf("HTTP_PROXY = %q, want a loopback proxy (%v)", os.Getenv("HTTP_PROXY"), err)
	}
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxy)}}
	res, err := c.Get("http://egress.invalid/x")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func TestRunFailsOnRecordedRequest(t *testing.T) {
	status := 0
	code := egressguard.Run(func() int {
		status = viaGuard(t)
		return 0
	})
	if status != http.StatusForbidden {
		t.Errorf("proxy answered %d, want %d", status, http.StatusForbidden)
	}
	if code != 1 {
		t.Errorf("Run = %d after a stray request, want 1", code)
	}
}

func TestRunPassesRunCodeThrough(t *testing.T) {
	for _, want := range []int{0, 3} {
		if got := egressguard.Run(func() int { return want }); got != want {
			t.Errorf("Run = %d, want %d", got, want)
		}
	}
}
