package coder_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cdeload/cdeload/lab/codersim"
	"github.com/cdeload/cdeload/workspace"
	"github.com/cdeload/cdeload/workspace/coder"
)

// silentServer accepts connections and reads requests but never answers.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	t.Cleanup(func() { close(done); ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				go io.Copy(io.Discard, c)
				<-done
			})
		}
	})
	return "http://" + ln.Addr().String()
}

func TestRequestWithoutAnswerFailsAfterRequestTimeout(t *testing.T) {
	u := silentServer(t)
	p, err := coder.NewProvider(coder.Config{URL: u, Token: "tok",
		Client: coder.ClientOptions{RequestTimeout: 200 * time.Millisecond, MaxServerErrorRetries: -1}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	began := time.Now()
	_, err = p.Create(ctx, workspace.CreateRequest{Template: "kubernetes"})
	took := time.Since(began)
	want := "no answer from " + u + " in 200ms"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Create = %v, want an error containing %q", err, want)
	}
	if took > 2*time.Second {
		t.Fatalf("Create took %v: the request timeout is 200ms", took)
	}
	if r := coder.FailureReason(err); r != "no_answer" {
		t.Fatalf("FailureReason = %q, want no_answer", r)
	}
}

func TestRateLimitedClientsRetryAfterRetryAfterAndSpreadOut(t *testing.T) {
	var mu sync.Mutex
	first := map[string]time.Time{}
	retry := map[string]time.Time{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ua := r.UserAgent()
		mu.Lock()
		defer mu.Unlock()
		if _, ok := first[ua]; !ok {
			first[ua] = time.Now()
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		retry[ua] = time.Now()
		w.Write([]byte(`{"id":"u","username":"me"}`))
	}))
	defer srv.Close()
	const n = 10
	var wg sync.WaitGroup
	for i := range n {
		c, err := coder.NewClient(srv.URL, "tok", coder.ClientOptions{UserAgent: "c" + string(rune('a'+i))})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		wg.Go(func() {
			if _, err := c.Me(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	var lo, hi time.Time
	for ua, at := range retry {
		if wait := at.Sub(first[ua]); wait < time.Second {
			t.Errorf("%s retried %v after its 429: Retry-After asked for 1s", ua, wait)
		}
		if lo.IsZero() || at.Before(lo) {
			lo = at
		}
		if at.After(hi) {
			hi = at
		}
	}
	if len(retry) != n {
		t.Fatalf("%d clients retried, want %d", len(retry), n)
	}
	if spread := hi.Sub(lo); spread < 100*time.Millisecond {
		t.Fatalf("the %d clients limited together retried within %v of each other: no jitter", n, spread)
	}
}

func TestDeleteIsRetriedAfterServerError(t *testing.T) {
	var deletes atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete && deletes.Add(1) == 1 {
			http.Error(w, `{"message":"boom"}`, http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	c, err := coder.NewClient(srv.URL, "tok", coder.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.DeleteUser(context.Background(), "scaletest-x-1"); err != nil {
		t.Fatalf("DeleteUser after one 500 = %v, want it retried", err)
	}
	if got := deletes.Load(); got != 2 {
		t.Fatalf("%d DELETE requests, want 2", got)
	}
}

// answerLosingProxy forwards every request to the simulator but answers 502
// to the first POST of each path in lose: the request was processed, its
// answer lost.
func answerLosingProxy(t *testing.T, target string, lose ...string) string {
	t.Helper()
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	var mu sync.Mutex
	lost := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		drop := false
		for _, suffix := range lose {
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, suffix) && !lost[suffix] {
				lost[suffix], drop = true, true
			}
		}
		mu.Unlock()
		if !drop {
			rp.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		rp.ServeHTTP(rec, r)
		http.Error(w, `{"message":"bad gateway"}`, http.StatusBadGateway)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestCreateWhoseAnswerWasLostIsFoundNotRepeated(t *testing.T) {
	sim := newSim(t, codersim.Config{})
	proxy := answerLosingProxy(t, sim.URL, "/api/v2/users", "/workspaces")
	p, err := coder.NewProvider(coder.Config{URL: proxy, Token: sim.AdminToken, RunID: "lost",
		PollInterval: 5 * time.Millisecond, Client: coder.ClientOptions{BypassRateLimit: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	ws, err := p.Create(ctx, workspace.CreateRequest{Template: "kubernetes"})
	if err != nil {
		t.Fatalf("Create whose user and workspace answers were lost = %v", err)
	}
	if ws.ID == "" || ws.Name != "scaletest-lost-1" {
		t.Fatalf("workspace = %+v", ws)
	}
	admin := adminClient(t, sim)
	users, err := admin.Users(ctx, "scaletest-lost-", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	wss, err := admin.Workspaces(ctx, "name:scaletest-lost-", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if users.Count != 1 || wss.Count != 1 {
		t.Fatalf("%d users and %d workspaces on the server, want 1 and 1", users.Count, wss.Count)
	}
	if err := p.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestAPIErrorsLeaveNothingBehind(t *testing.T) {
	sim := newSim(t, codersim.Config{Seed: 7, Faults: codersim.Faults{APIErrorRate: 0.2}})
	p, _ := newProvider(t, sim, func(c *coder.Config) { c.RunID = "err" })
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			ws, err := p.Create(ctx, workspace.CreateRequest{Template: "kubernetes"})
			if err == nil {
				_, err = p.WaitReady(ctx, ws)
			}
			if err != nil {
				t.Errorf("create with 20%% API errors: %v", err)
			}
		})
	}
	wg.Wait()
	if err := p.Cleanup(ctx); err != nil {
		t.Fatalf("Cleanup with 20%% API errors: %v", err)
	}
	_ = sim.SetFaults(codersim.Faults{})
	admin := adminClient(t, sim)
	users, err := admin.Users(ctx, "scaletest-", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	wss, err := admin.Workspaces(ctx, "name:scaletest-", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if users.Count != 0 || wss.Count != 0 {
		t.Fatalf("left behind: %d users, %d workspaces", users.Count, wss.Count)
	}
}

func TestCrashedAgentFailsTheWaitAtOnce(t *testing.T) {
	sim := newSim(t, codersim.Config{Faults: codersim.Faults{
		AgentConnect:    codersim.Latency{Fixed: 20 * time.Millisecond},
		AgentCrashAfter: time.Millisecond,
	}})
	p, _ := newProvider(t, sim, func(c *coder.Config) {
		c.PollInterval = 300 * time.Millisecond
		c.AgentTimeout = 8 * time.Second
	})
	ctx := context.Background()
	ws, err := p.Create(ctx, workspace.CreateRequest{Template: "kubernetes"})
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	_, err = p.WaitReady(ctx, ws)
	took := time.Since(began)
	var ae *coder.AgentError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "disconnected") {
		t.Fatalf("WaitReady of a crashed agent = %v, want an AgentError saying it disconnected", err)
	}
	if took > 3*time.Second {
		t.Fatalf("WaitReady took %v: a crashed agent must fail the wait at once, not after agentTimeout", took)
	}
	if r := coder.FailureReason(err); r != "agent" {
		t.Fatalf("FailureReason = %q, want agent", r)
	}
	if err := p.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestCleanupOfManyWorkspacesTakesAboutOneDelete(t *testing.T) {
	const n, build = 32, time.Second
	sim := newSim(t, codersim.Config{Faults: codersim.Faults{Build: codersim.Latency{Fixed: build}}})
	ctx := context.Background()
	lim := workspace.NewLimiter(8)
	var provs []*coder.Provider
	for range 4 {
		p, _ := newProvider(t, sim, func(c *coder.Config) { c.NoWaitForAgents = true; c.PollInterval = 20 * time.Millisecond })
		provs = append(provs, p)
	}
	var wg sync.WaitGroup
	for i := range n {
		p := provs[i%len(provs)]
		wg.Go(func() {
			ws, err := p.Create(ctx, workspace.CreateRequest{Template: "kubernetes"})
			if err == nil {
				_, err = p.WaitReady(ctx, ws)
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// Baseline: one workspace deleted alone.
	extra, err := provs[0].Create(ctx, workspace.CreateRequest{Template: "kubernetes"})
	if err == nil {
		extra, err = provs[0].WaitReady(ctx, extra)
	}
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if err := provs[0].Delete(ctx, extra); err != nil {
		t.Fatal(err)
	}
	one := time.Since(began)
	began = time.Now()
	for _, p := range provs {
		wg.Go(func() {
			if err := p.CleanupShared(ctx, lim); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	took := time.Since(began)
	// 32 deletes 8 at a time for the whole delete would take 4 deletes.
	t.Logf("one delete %v, %d deletes with 8 request slots %v", one, n, took)
	if took > 3*one {
		t.Fatalf("cleanup of %d workspaces with 8 request slots took %v, want about one delete (%v)", n, took, one)
	}
	wss, err := adminClient(t, sim).Workspaces(ctx, "name:scaletest-", 0, 100)
	if err != nil || wss.Count != 0 {
		t.Fatalf("left: %d workspaces (%v)", wss.Count, err)
	}
}
