package conformance

import (
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// jslibServer serves testdata/jslib_summary.js over HTTPS (self-signed) as
// /k6-summary/0.0.2/index.js; it returns the server, the module URL, the
// path of a CA file for SSL_CERT_FILE and the request count.
func jslibServer(t *testing.T) (*httptest.Server, string, string, *atomic.Int64) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", "jslib_summary.js"))
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/k6-summary/0.0.2/index.js" {
			http.NotFound(w, r)
			return
		}
		hits.Add(1)
		w.Header().Set("Content-Type", "application/javascript")
		w.Write(src)
	}))
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	return srv, srv.URL + "/k6-summary/0.0.2/index.js", ca, &hits
}

// appServer is the system under test of the example: POST /login greets
// the user, everything else is 404.
func appServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" && r.Method == http.MethodPost {
			b, _ := io.ReadAll(r.Body)
			name := strings.TrimSuffix(strings.TrimPrefix(string(b), `{"name":"`), `"}`)
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"greeting":"hello `+name+`"}`)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// exampleDir writes the example script, importing the jslib module from
// url, and its data file into a new directory.
func exampleDir(t *testing.T, url string) string {
	t.Helper()
	dir := copyScripts(t, "k6_example.js", "k6_example_users.json")
	p := filepath.Join(dir, "k6_example.js")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(strings.Replace(string(b), "__JSLIB__", "'"+url+"'", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestK6ExampleWithJslibSummary(t *testing.T) {
	t.Parallel()
	jslib, url, ca, hits := jslibServer(t)
	base := appServer(t)
	dir := exampleDir(t, url)
	env := []string{"SSL_CERT_FILE=" + ca}

	r := runIn(t, dir, env, "", "run", "-q", "-e", "BASE="+base, "k6_example.js")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("the remote module was fetched %d times in one run, want 1", n)
	}
	// The values k6 documents for this script: 6 iterations, 2 requests
	// each, the 404s failed, the threshold on successful requests passes.
	for _, want := range []string{
		" █ login", "   ✓ logged in", "   ✓ greets the user",
		" ✓ checks...: 100.00% 12 out of 12",
		" ✓ http_req_duration{expected_response:true}...: avg=",
		" http_req_failed...: 50.00% 6 out of 12",
		" http_reqs...: 12 ",
		" iterations...: 6 ",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	if t.Failed() {
		t.Fatalf("%s", r)
	}

	// A failing threshold: exit 99, and handleSummary still runs.
	r = runIn(t, dir, env, "", "run", "-q", "-e", "BASE="+base, "-e", "P95=p(95)<0", "k6_example.js")
	if r.code != 99 {
		t.Fatalf("exit %d, want 99\n%s", r.code, r)
	}
	if !strings.Contains(r.stdout, " ✗ http_req_duration{expected_response:true}...") {
		t.Fatalf("the failed threshold is not marked:\n%s", r)
	}

	// The archive keeps the remote module: it runs with the server gone.
	r = runIn(t, dir, env, "", "archive", "-O", "example.tar", "k6_example.js")
	if r.code != 0 {
		t.Fatalf("archive: exit %d\n%s", r.code, r)
	}
	jslib.Close()
	elsewhere := t.TempDir()
	if err := os.Rename(filepath.Join(dir, "example.tar"), filepath.Join(elsewhere, "example.tar")); err != nil {
		t.Fatal(err)
	}
	r = runIn(t, elsewhere, nil, "", "run", "-q", "-e", "BASE="+base, "example.tar")
	if r.code != 0 || !strings.Contains(r.stdout, " iterations...: 6 ") {
		t.Fatalf("running the archive offline: exit %d\n%s", r.code, r)
	}
}

func TestRemoteModuleFetchFailureNamesTheURL(t *testing.T) {
	t.Parallel()
	_, url, _, _ := jslibServer(t)
	dir := exampleDir(t, url)
	// Without the CA the self-signed server is refused; the error names
	// the module's URL and the run ends before it starts.
	r := runIn(t, dir, nil, "", "run", "-q", "-e", "BASE=http://127.0.0.1:1", "k6_example.js")
	if r.code != 107 || !strings.Contains(r.stderr, url) {
		t.Fatalf("exit %d, want 107 with the URL in the error\n%s", r.code, r)
	}
}
