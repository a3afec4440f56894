package prometheusrw

import (
	"bytes"
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
	"sync"
	"testing"
	"time"
)

// prometheusBinary finds the Prometheus server: $PROMETHEUS_BIN,
// /usr/bin/prometheus, or prometheus on PATH.
func prometheusBinary() string {
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

// lockedBuffer is a bytes.Buffer safe for a subprocess's output and a test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// promServer is a Prometheus server started by a test.
type promServer struct {
	base string // http://127.0.0.1:port
	log  *lockedBuffer
}

// startPrometheus starts a real Prometheus with the remote-write receiver on
// a free loopback port and an empty scrape configuration. It skips the test
// when the binary is absent, unless CI is set, where it fails.
func startPrometheus(t *testing.T) *promServer {
	t.Helper()
	bin := prometheusBinary()
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("prometheus binary not found and CI is set: run scripts/prometheus-install.sh")
		}
		t.Skip("prometheus binary not found (install it with scripts/prometheus-install.sh); skipping the real-Prometheus test")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte("global:\n  scrape_interval: 1m\nscrape_configs: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port := freePort(t)
		addr := "127.0.0.1:" + strconv.Itoa(port)
		logs := &lockedBuffer{}
		cmd := exec.Command(bin,
			"--web.enable-remote-write-receiver",
			"--web.listen-address="+addr,
			"--storage.tsdb.path="+filepath.Join(dir, fmt.Sprintf("data%d", attempt)),
			"--config.file="+cfg,
			"--log.level=warn",
		)
		cmd.Stdout = logs
		cmd.Stderr = logs
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
			return &promServer{base: base, log: logs}
		}
		_ = proc.Kill()
		t.Logf("prometheus attempt %d failed: %v\n%s", attempt, lastErr, logs.String())
	}
	t.Fatalf("prometheus did not become ready: %v", lastErr)
	return nil
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

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

// promResult is one series of an instant query result.
type promResult struct {
	Labels map[string]string
	Value  float64
}

// query runs an instant PromQL query at time at.
func (p *promServer) query(t *testing.T, q string, at time.Time) []promResult {
	t.Helper()
	u := p.base + "/api/v1/query?" + url.Values{
		"query": {q},
		"time":  {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)},
	}.Encode()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("query %q: %v", q, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
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
	out := make([]promResult, 0, len(r.Data.Result))
	for _, s := range r.Data.Result {
		str, _ := s.Value[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			t.Fatalf("query %q: value %v: %v", q, s.Value, err)
		}
		out = append(out, promResult{Labels: s.Metric, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return fmt.Sprint(out[i].Labels) < fmt.Sprint(out[j].Labels) })
	return out
}
