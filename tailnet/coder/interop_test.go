package coder_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cdeload/cdeload/internal/coderpeertest"
	"github.com/cdeload/cdeload/internal/leakcheck"
	"github.com/cdeload/cdeload/internal/tlsfront"
	"github.com/cdeload/cdeload/sshtraffic"
	"github.com/cdeload/cdeload/tailnet"
	"github.com/cdeload/cdeload/tailnet/coder"
)

// childEnv marks the test binary re-run inside the coderpeer's network
// namespace: Coder's tailnet is joined only from there, so nothing the
// node sends can leave the machine (the namespace has only lo).
const childEnv = "CDELOAD_CODER_TAILNET_IN_NETNS"

// frontKeyEnv names the key file of the TLS front's certificate, passed to
// the namespace child with the certificate itself in SSL_CERT_FILE (read
// once per process, so the parent sets it).
const frontKeyEnv = "CDELOAD_CODER_TAILNET_FRONT_KEY"

// TestInteropCoderTailnet starts a real coderd with real agents and runs
// TestCoderTailnetInNamespace inside its network namespace.
func TestInteropCoderTailnet(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		t.Skip("this is the namespace child")
	}
	p := coderpeertest.Start(t, coderpeertest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	certPEM, keyPEM, err := tlsfront.NewCert("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "front.crt"), filepath.Join(dir, "front.key")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := p.Exec(ctx, os.Args[0], "-test.run=^TestCoderTailnetInNamespace$", "-test.v", "-test.count=1", "-test.timeout=4m")
	cmd.Env = append(cmd.Env, childEnv+"=1", "CODERPEER_TEMPLATE="+p.Template, "SSL_CERT_FILE="+certFile, frontKeyEnv+"="+keyFile)
	out, err := cmd.CombinedOutput()
	t.Logf("namespace child output:\n%s", out)
	if err != nil {
		t.Fatalf("the test run inside coderpeer's namespace failed: %v", err)
	}
	if !bytes.Contains(out, []byte("--- PASS: TestCoderTailnetInNamespace")) {
		t.Fatal("the namespace child did not report TestCoderTailnetInNamespace as passed")
	}
}

// TestCoderTailnetInNamespace is the client side, run by
// TestInteropCoderTailnet through `coderpeer exec` (CODER_URL and
// CODER_SESSION_TOKEN set by it).
func TestCoderTailnetInNamespace(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		t.Skip("run by TestInteropCoderTailnet inside coderpeer's network namespace")
	}
	api := &restClient{url: os.Getenv("CODER_URL"), token: os.Getenv("CODER_SESSION_TOKEN"), http: &http.Client{Timeout: 30 * time.Second}}
	defer api.http.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tmpl := os.Getenv("CODERPEER_TEMPLATE")
	var wss []*workspace
	for i := range 2 {
		ws, err := api.createWorkspace(ctx, tmpl, fmt.Sprintf("tn%d", i))
		if err != nil {
			t.Fatal(err)
		}
		wss = append(wss, ws)
	}

	c, err := coder.New(coder.Config{URL: api.url, Token: api.token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })

	t.Run("echo", func(t *testing.T) {
		up, err := c.Up(ctx, wss[0].agentID)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("tailnet up in %v, home DERP %d, address %v", up.Duration, up.HomeDERP, up.IPs)
		var wg sync.WaitGroup
		for _, ws := range wss {
			wg.Go(func() {
				res, path := echo(ctx, t, c, ws, 3*time.Second)
				// Missed ticks are logged, not asserted: they measure the
				// sender's scheduling (a starved CPU), not the path.
				if res.Errors != 0 || res.FramesSent == 0 || res.FramesReceived != res.FramesSent || res.RTT.Count != res.FramesSent {
					t.Errorf("workspace %s: echo result %+v: want every frame back with its RTT and no error", ws.name, res)
				}
				if path != tailnet.PathDERP {
					t.Errorf("workspace %s: path %q, want %q (coderpeer blocks direct connections)", ws.name, path, tailnet.PathDERP)
				}
			})
		}
		wg.Wait()
	})

	// Behind TLS (as production coderd is), the node reaches the relay
	// straight over TLS, with no loopback proxy in between.
	t.Run("https access URL", func(t *testing.T) {
		cert, err := tls.LoadX509KeyPair(os.Getenv("SSL_CERT_FILE"), os.Getenv(frontKeyEnv))
		if err != nil {
			t.Fatalf("the TLS front's certificate from the parent: %v", err)
		}
		u, err := url.Parse(api.url)
		if err != nil {
			t.Fatal(err)
		}
		front, err := tlsfront.Start("127.0.0.1:0", u.Host, cert)
		if err != nil {
			t.Fatal(err)
		}
		defer front.Close()
		tc, err := coder.New(coder.Config{URL: front.URL(), Token: api.token})
		if err != nil {
			t.Fatal(err)
		}
		defer tc.Close()
		res, path := echo(ctx, t, tc, wss[0], 2*time.Second)
		if res.Errors != 0 || res.FramesSent == 0 || res.FramesReceived != res.FramesSent {
			t.Errorf("echo through %s: %+v: want every frame back and no error", front.URL(), res)
		}
		if path != tailnet.PathDERP {
			t.Errorf("path %q, want %q", path, tailnet.PathDERP)
		}
		if n := coder.NumDERPProxies(tc); n != 0 {
			t.Errorf("%d loopback DERP proxies started for an https relay, want 0", n)
		}
		if lines := front.RequestLines(); !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "GET /derp ") }) {
			t.Errorf("no DERP connection reached the relay through %s; request lines: %q", front.URL(), lines)
		}
	})

	t.Run("agent stopped mid-stream", func(t *testing.T) {
		ws := wss[1]
		conn, _, err := c.Dial(ctx, ws.agentID, coder.SSHPort)
		if err != nil {
			t.Fatal(err)
		}
		sc, err := sshtraffic.Connect(ctx, conn, sshtraffic.ClientConfig{User: "coder", NoClientAuth: true, InsecureIgnoreHostKey: true})
		if err != nil {
			t.Fatal(err)
		}
		defer sc.Close()
		type result struct {
			res sshtraffic.EchoResult
			err error
		}
		done := make(chan result, 1)
		start := time.Now()
		go func() {
			res, err := sc.Echo(ctx, sshtraffic.EchoConfig{BytesPerTick: 128, TickInterval: 100 * time.Millisecond, Duration: 60 * time.Second}, nil)
			done <- result{res, err}
		}()
		time.Sleep(1500 * time.Millisecond)
		if err := api.stopWorkspace(ctx, ws); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-done:
			t.Logf("stream to %s ended after %v: %v (frames %d/%d)", ws.name, time.Since(start).Round(time.Millisecond), r.err, r.res.FramesReceived, r.res.FramesSent)
			if r.err == nil {
				t.Fatalf("workspace %s: the echo stream ended without an error after its agent stopped", ws.name)
			}
		case <-time.After(45 * time.Second):
			t.Fatalf("workspace %s: the echo stream did not end within 45 s of its agent stopping", ws.name)
		}
		dctx, dcancel := context.WithTimeout(ctx, 20*time.Second)
		defer dcancel()
		_, _, err = c.Dial(dctx, ws.agentID, coder.SSHPort)
		if err == nil || !strings.Contains(err.Error(), ws.agentID) {
			t.Fatalf("dial to the stopped agent: %v, want an error naming agent %s", err, ws.agentID)
		}
		t.Logf("dial after stop: %v", err)
	})

	t.Run("resources released", func(t *testing.T) {
		c.Close()
		time.Sleep(500 * time.Millisecond)
		base := leakcheck.Settled(0)
		c2, err := coder.New(coder.Config{URL: api.url, Token: api.token})
		if err != nil {
			t.Fatal(err)
		}
		conn, _, err := c2.Dial(ctx, wss[0].agentID, coder.SSHPort)
		if err != nil {
			t.Fatal(err)
		}
		sc, err := sshtraffic.Connect(ctx, conn, sshtraffic.ClientConfig{User: "coder", NoClientAuth: true, InsecureIgnoreHostKey: true})
		if err != nil {
			t.Fatal(err)
		}
		if r, err := sc.Run(ctx, "true"); err != nil || r.Err() != nil {
			t.Fatalf("run true: %v %v", err, r.Err())
		}
		during := runtime.NumGoroutine()
		if err := c2.Close(); err != nil {
			t.Fatal(err)
		}
		sc.Close()
		leakcheck.NoneLeft(t, base, during)
	})
}

// echo runs one SSH echo stream to ws over c and logs its figures.
func echo(ctx context.Context, t *testing.T, c *coder.Client, ws *workspace, d time.Duration) (sshtraffic.EchoResult, tailnet.Path) {
	conn, di, err := c.Dial(ctx, ws.agentID, coder.SSHPort)
	if err != nil {
		t.Errorf("workspace %s: %v", ws.name, err)
		return sshtraffic.EchoResult{Errors: 1}, ""
	}
	sc, err := sshtraffic.Connect(ctx, conn, sshtraffic.ClientConfig{User: "coder", NoClientAuth: true, InsecureIgnoreHostKey: true})
	if err != nil {
		t.Errorf("workspace %s: ssh: %v", ws.name, err)
		return sshtraffic.EchoResult{Errors: 1}, ""
	}
	defer sc.Close()
	res, err := sc.Echo(ctx, sshtraffic.EchoConfig{BytesPerTick: 128, TickInterval: 100 * time.Millisecond, Duration: d}, nil)
	if err != nil {
		t.Errorf("workspace %s: echo: %v", ws.name, err)
	}
	path, err := c.Path(ctx, ws.agentID)
	if err != nil {
		t.Errorf("workspace %s: path: %v", ws.name, err)
	}
	t.Logf("workspace %s: dial %v (path %s at dial), ssh connect %v, warm-up %v, frames %d/%d, ticks missed %d, RTT p50 %v p95 %v max %v, path %s",
		ws.name, di.Duration.Round(time.Millisecond), di.Path, sc.Info().Duration.Round(time.Millisecond), res.Warmup.Round(time.Millisecond),
		res.FramesReceived, res.FramesSent, res.TicksMissed, res.RTT.P50, res.RTT.P95, res.RTT.Max, path)
	return res, path
}

// restClient is the few Coder REST calls the test needs.
type restClient struct {
	url, token string
	http       *http.Client
}

type workspace struct {
	id, name, agentID string
}

func (r *restClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.url+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Coder-Session-Token", r.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := r.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, res.Status, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

type apiWorkspace struct {
	ID          string `json:"id"`
	LatestBuild struct {
		Resources []struct {
			Agents []struct {
				ID     string `json:"id"`
				Status string `json:"status"`
			} `json:"agents"`
		} `json:"resources"`
	} `json:"latest_build"`
}

// createWorkspace builds a workspace and waits for its agent to connect.
func (r *restClient) createWorkspace(ctx context.Context, template, name string) (*workspace, error) {
	var tmpls []struct{ ID, Name string }
	if err := r.do(ctx, http.MethodGet, "/api/v2/templates", nil, &tmpls); err != nil {
		return nil, err
	}
	tid := ""
	for _, tp := range tmpls {
		if tp.Name == template {
			tid = tp.ID
		}
	}
	if tid == "" {
		return nil, fmt.Errorf("template %q not found", template)
	}
	var ws apiWorkspace
	if err := r.do(ctx, http.MethodPost, "/api/v2/users/me/workspaces", map[string]any{"name": name, "template_id": tid}, &ws); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if err := r.do(ctx, http.MethodGet, "/api/v2/workspaces/"+ws.ID, nil, &ws); err != nil {
			return nil, err
		}
		for _, res := range ws.LatestBuild.Resources {
			for _, a := range res.Agents {
				if a.Status == "connected" {
					return &workspace{id: ws.ID, name: name, agentID: a.ID}, nil
				}
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	return nil, errors.New("workspace " + name + ": no connected agent within 60 s")
}

// stopWorkspace starts a stop build (coderpeer then stops the agent).
func (r *restClient) stopWorkspace(ctx context.Context, ws *workspace) error {
	return r.do(ctx, http.MethodPost, "/api/v2/workspaces/"+ws.id+"/builds", map[string]any{"transition": "stop"}, nil)
}
