// Package promtest starts a real Prometheus server for tests, with its
// remote-write receiver on a loopback port, and runs instant PromQL
// queries against it.
//
// The server binary is $PROMETHEUS_BIN, /usr/bin/prometheus, or prometheus
// on PATH. Without one, Start skips the test, unless the environment has
// CI=true, where it fails (scripts/prometheus-install.sh installs it).
package promtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/cdeload/cdeload/internal/syncbuf"
)

// Server is a Prometheus process started by a test; the test's cleanup
// kills it (by its PID only).
type Server struct {
	// URL is the server's base URL, http://127.0.0.1:port; remote write
	// goes to URL + "/api/v1/write".
	URL string
	log *syncbuf.Buffer
}

// Log returns what the server has written to stdout and stderr so far.
func (s *Server) Log() string { return s.log.String() }

// binary finds the Prometheus server, or returns "".
func binary() string {
	if p := os.Getenv("PROMETHEUS_BIN"); p != "" {
		return p
	}
	if _, err := os.Stat("/usr/bin/prometheus"); err == nil {
		return "/usr/bin/prometheus"
	}
	if p, err := exec.LookPath("prometheus"); err == nil {
		return p
	}
	return ""
}

// Start starts Prometheus with --web.enable-remote-write-receiver on a free
// loopback port, fresh storage in t.TempDir() and no scrape targets, and
// waits until it is ready (up to three attempts, in case the port was
// taken in between). Without the binary it skips t, unless CI=true, where
// it fails t.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t)
}

// StartWith is Start with extra command-line flags for the server, e.g.
// "--enable-feature=native-histograms".
func StartWith(t testing.TB, extraArgs ...string) *Server {
	t.Helper()
	bin := binary()
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("the prometheus binary is missing and CI=true: install it (scripts/prometheus-install.sh)")
		}
		t.Skip("prometheus binary not found (install it with scripts/prometheus-install.sh); skipping the real-Prometheus test")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte("global:\n  scrape_interval: 1m\nscrape_configs: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for attempt := range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		logs := &syncbuf.Buffer{}
		args := append([]string{
			"--web.enable-remote-write-receiver",
			"--web.listen-address=" + addr,
			"--storage.tsdb.path=" + filepath.Join(dir, fmt.Sprintf("data%d", attempt)),
			"--config.file=" + cfg,
			"--log.level=warn",
		}, extraArgs...)
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting %s: %v", bin, err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		proc := cmd.Process
		t.Cleanup(func() {
			// Only the process this test started, by its PID.
			_ = proc.Kill()
			<-exited
		})
		base := "http://" + addr
		if lastErr = waitReady(base, exited); lastErr == nil {
			return &Server{URL: base, log: logs}
		}
		_ = proc.Kill()
		t.Logf("prometheus attempt %d failed: %v\n%s", attempt, lastErr, logs.String())
	}
	t.Fatalf("prometheus did not become ready: %v", lastErr)
	return nil
}

// waitReady polls base/-/ready for up to 60 s, or until the process exits.
func waitReady(base string, exited <-chan error) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("prometheus exited: %v", err)
		default:
		}
		resp, err := http.Get(base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s/-/ready not OK after 60s", base)
}

// Series is one series of an instant query's result.
type Series struct {
	Labels map[string]string
	Value  float64
}

// Query runs an instant PromQL query at the server's current time and
// returns its series sorted by labels; any error fails t.
func (s *Server) Query(t testing.TB, q string) []Series {
	t.Helper()
	return s.query(t, q, url.Values{"query": {q}})
}

// QueryAt is Query evaluated at time at (millisecond precision).
func (s *Server) QueryAt(t testing.TB, q string, at time.Time) []Series {
	t.Helper()
	return s.query(t, q, url.Values{
		"query": {q},
		"time":  {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)},
	})
}

// One runs Query and returns its only series; any other count fails t.
func (s *Server) One(t testing.TB, q string) Series {
	t.Helper()
	res := s.Query(t, q)
	if len(res) != 1 {
		t.Fatalf("%s: %d series %v, want 1", q, len(res), res)
	}
	return res[0]
}

func (s *Server) query(t testing.TB, q string, params url.Values) []Series {
	t.Helper()
	resp, err := http.Get(s.URL + "/api/v1/query?" + params.Encode())
	if err != nil {
		t.Fatalf("query %q: %v", q, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("query %q: decoding %s: %v", q, body, err)
	}
	if r.Status != "success" {
		t.Fatalf("query %q: %s %s", q, r.Status, r.Error)
	}
	out := make([]Series, 0, len(r.Data.Result))
	for _, sr := range r.Data.Result {
		str, _ := sr.Value[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			t.Fatalf("query %q: value %v: %v", q, sr.Value, err)
		}
		out = append(out, Series{Labels: sr.Metric, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return fmt.Sprint(out[i].Labels) < fmt.Sprint(out[j].Labels) })
	return out
}
