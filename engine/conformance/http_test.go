package conformance

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// httpServers starts the loopback servers the k6/http scripts use and
// returns their -e flags.
func httpServers(t *testing.T) []string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/redirect/{n}", func(w http.ResponseWriter, r *http.Request) {
		n := r.PathValue("n")
		if n == "1" {
			http.Redirect(w, r, "/final", http.StatusFound)
			return
		}
		var i int
		fmt.Sscan(n, &i)
		http.Redirect(w, r, fmt.Sprintf("/redirect/%d", i-1), http.StatusFound)
	})
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	mux.HandleFunc("/final", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "final") })
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		var c int
		fmt.Sscan(r.PathValue("code"), &c)
		w.WriteHeader(c)
	})
	mux.HandleFunc("/items/{id}", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.PathValue("id")) })
	mux.HandleFunc("/set-cookie", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "session", Value: "s1", Path: "/"})
	})
	mux.HandleFunc("/echo-cookie", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.Header.Get("Cookie")) })
	big := bytes.Repeat([]byte("0123456789abcdef"), (10<<20)/16)
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { w.Write(big) })
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			body = zr
		}
		w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
		io.Copy(w, body)
	})
	h1 := httptest.NewServer(mux)
	t.Cleanup(h1.Close)

	tlsSrv := httptest.NewUnstartedServer(mux)
	tlsSrv.EnableHTTP2 = true
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)

	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); hang.Close() })

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + l.Addr().String() + "/"
	l.Close()
	return []string{"-e", "H1=" + h1.URL, "-e", "TLS=" + tlsSrv.URL, "-e", "HANG=" + hang.URL, "-e", "REFUSED=" + refused}
}

// point is one "Point" line of --out json.
type point struct {
	Type   string `json:"type"`
	Metric string `json:"metric"`
	Data   struct {
		Value float64           `json:"value"`
		Tags  map[string]string `json:"tags"`
	} `json:"data"`
}

func readPoints(t *testing.T, path string) []point {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []point
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var p point
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatalf("json output line %s: %v", sc.Text(), err)
		}
		if p.Type == "Point" {
			out = append(out, p)
		}
	}
	return out
}

// failedChecks lists the checks of an export that failed at least once.
func failedChecks(g *exportGroup) []string {
	var out []string
	for name, c := range g.Checks {
		if c.Fails > 0 || c.Passes == 0 {
			out = append(out, name)
		}
	}
	for _, sub := range g.Groups {
		out = append(out, failedChecks(sub)...)
	}
	return out
}

func TestHTTPModule(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	exp, js := filepath.Join(dir, "export.json"), filepath.Join(dir, "out.json")
	args := append([]string{"run", "-q", "--summary-export", exp, "--out", "json=" + js}, httpServers(t)...)
	r := cdeload(t, nil, append(args, "http.js")...)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r)
	}
	e := readExport(t, exp)
	if failed := failedChecks(e.RootGroup); len(failed) > 0 {
		t.Fatalf("failed checks: %v\n%s", failed, r)
	}
	if n := len(e.RootGroup.Checks); n < 25 {
		t.Fatalf("only %d checks ran", n)
	}
	// 4+2 hops of redirects (every hop counts), 1 timeout, 1 refused,
	// 2×404, 2 cookie, 1 own jar, 3 big, 1 TLS, 4 posts, 5 batch, 1 url,
	// 1 async, 1 grouped.
	if got := e.num(t, "http_reqs", "count"); got != 29 {
		t.Errorf("http_reqs count = %v, want 29", got)
	}
	if got := e.num(t, "data_received", "count"); got < 3*(10<<20) {
		t.Errorf("data_received = %v bytes, want at least the three 10 MB bodies", got)
	}
	if got := e.num(t, "data_sent", "count"); got <= 0 {
		t.Errorf("data_sent = %v", got)
	}
	// Failed: timeout, refused, the 404 without callback; the 302 at the
	// redirect limit and the 404 with expectedStatuses(404) are expected.
	if got := e.num(t, "http_req_failed", "passes"); got != 3 {
		t.Errorf("http_req_failed passes = %v, want 3", got)
	}
	if _, ok := e.Metrics["http_req_duration{expected_response:true}"]; !ok {
		t.Errorf("no http_req_duration{expected_response:true} in the export: %v", keysOf(e.Metrics))
	}
	for _, m := range []string{"http_req_blocked", "http_req_connecting", "http_req_tls_handshaking", "http_req_sending", "http_req_waiting", "http_req_receiving"} {
		if e.num(t, m, "max") < 0 {
			t.Errorf("%s max < 0", m)
		}
	}

	pts := readPoints(t, js)
	want := map[string]func(map[string]string) bool{
		"an h2 TLS request": func(tg map[string]string) bool {
			return tg["proto"] == "HTTP/2.0" && tg["tls_version"] == "tls1.3" && tg["status"] == "200" && tg["expected_response"] == "true"
		},
		"the timeout": func(tg map[string]string) bool {
			return tg["error_code"] == "1050" && tg["status"] == "0" && tg["expected_response"] == "false" && tg["error"] == "request timeout"
		},
		"the refused request": func(tg map[string]string) bool { return tg["error_code"] == "1202" },
		"the url template": func(tg map[string]string) bool {
			return strings.HasSuffix(tg["name"], "/items/${}") && strings.HasSuffix(tg["url"], "/items/7")
		},
		"the name tag": func(tg map[string]string) bool {
			return tg["name"] == "expected404" && tg["expected_response"] == "true"
		},
		"the grouped request": func(tg map[string]string) bool {
			return tg["group"] == "::grouped" && tg["method"] == "GET" && tg["scenario"] == "default"
		},
	}
	for what, ok := range want {
		found := false
		for _, p := range pts {
			if p.Metric == "http_reqs" && ok(p.Data.Tags) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("no http_reqs sample with the tags of %s", what)
		}
	}
}

func TestHTTPModuleRejectsAnUntrustedCertificate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	exp := filepath.Join(dir, "export.json")
	args := append([]string{"run", "-q", "--summary-export", exp}, httpServers(t)...)
	r := cdeload(t, nil, append(args, "http_untrusted.js")...)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r)
	}
	if failed := failedChecks(readExport(t, exp).RootGroup); len(failed) > 0 {
		t.Fatalf("failed checks: %v\n%s", failed, r)
	}
}
