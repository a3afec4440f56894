package coder_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cdeload/cdeload/lab/codersim"
	"github.com/cdeload/cdeload/workspace"
	"github.com/cdeload/cdeload/workspace/coder"
)

type phaseEvent struct {
	phase string
	d     time.Duration
	ws    workspace.Workspace
}

type recObserver struct {
	mu       sync.Mutex
	phases   []phaseEvent
	failures []string
}

func (o *recObserver) OnPhase(phase string, d time.Duration, ws workspace.Workspace) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.phases = append(o.phases, phaseEvent{phase, d, ws})
}

func (o *recObserver) OnFailure(op string, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.failures = append(o.failures, op+": "+err.Error())
}

func (o *recObserver) phase(name string) []phaseEvent {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []phaseEvent
	for _, p := range o.phases {
		if p.phase == name {
			out = append(out, p)
		}
	}
	return out
}

func newSim(t testing.TB, cfg codersim.Config) *codersim.Server {
	t.Helper()
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	s, err := codersim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newProvider(t testing.TB, sim *codersim.Server, mod func(*coder.Config)) (*coder.Provider, *recObserver) {
	t.Helper()
	obs := &recObserver{}
	cfg := coder.Config{
		URL: sim.URL, Token: sim.AdminToken, Client: coder.ClientOptions{BypassRateLimit: true},
		PollInterval: 5 * time.Millisecond, BuildTimeout: 10 * time.Second, AgentTimeout: 10 * time.Second,
		DeleteTimeout: 10 * time.Second, Observer: obs,
	}
	if mod != nil {
		mod(&cfg)
	}
	p, err := coder.NewProvider(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p, obs
}

func adminClient(t testing.TB, sim *codersim.Server) *coder.Client {
	c, err := coder.NewClient(sim.URL, sim.AdminToken, coder.ClientOptions{BypassRateLimit: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

var k8sParams = map[string]string{"cpu": "4", "memory": "4", "home_disk_size": "20"}

func TestCreateReadyWithParametersAndTimings(t *testing.T) {
	sim := newSim(t, codersim.Config{Faults: codersim.Faults{
		BuildQueue:   codersim.Latency{Fixed: 20 * time.Millisecond},
		Build:        codersim.Latency{Fixed: 40 * time.Millisecond},
		AgentConnect: codersim.Latency{Fixed: 30 * time.Millisecond},
		AgentReady:   codersim.Latency{Fixed: 10 * time.Millisecond},
	}})
	p, obs := newProvider(t, sim, func(c *coder.Config) { c.RunID = "t1" })
	ctx := context.Background()
	ws, err := p.Create(ctx, workspace.CreateRequest{Template: "kubernetes", Parameters: k8sParams})
	if err != nil {
		t.Fatal(err)
	}
	if ws.Name != "scaletest-t1-1" || ws.Owner != "scaletest-t1-1" || ws.ID == "" {
		t.Fatalf("workspace = %+v", ws)
	}
	ws, err = p.WaitReady(ctx, ws)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws.Agents) != 1 || ws.Agents[0].Name != "main" || ws.AgentID() == "" {
		t.Fatalf("agents = %+v", ws.Agents)
	}
	addr, err := netip.ParseAddr(ws.Address)
	if err != nil || !netip.MustParsePrefix("fd7a:115c:a1e0::/48").Contains(addr) {
		t.Fatalf("address %q not in Coder's tailnet prefix", ws.Address)
	}
	tm := ws.Timings
	if tm.Build < 60*time.Millisecond || tm.AgentConnect < 40*time.Millisecond || tm.Ready < tm.Build+tm.AgentConnect {
		t.Fatalf("timings = %+v", tm)
	}
	for _, ph := range []string{workspace.PhaseBuild, workspace.PhaseAgentConnect, workspace.PhaseReady} {
		ev := obs.phase(ph)
		if len(ev) != 1 || ev[0].ws.Name != ws.Name {
			t.Fatalf("phase %s events = %+v", ph, ev)
		}
	}
	// The build carries the parameters (given ones and the template's defaults).
	params, err := p.Client().BuildParameters(ctx, ws.BuildID)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, bp := range params {
		got[bp.Name] = bp.Value
	}
	if fmt.Sprint(got) != fmt.Sprint(k8sParams) {
		t.Fatalf("build parameters = %v", got)
	}
	// The user is a scaletest user in the default organization.
	u, err := p.Client().User(ctx, ws.Owner)
	if err != nil || u.Email != "t1-1@scaletest.local" || len(u.OrganizationIDs) != 1 {
		t.Fatalf("user = %+v, %v", u, err)
	}
	list, err := p.List(ctx)
	if err != nil || len(list) != 1 || list[0].ID != ws.ID || list[0].AgentID() != ws.AgentID() {
		t.Fatalf("list = %+v, %v", list, err)
	}
	if err := p.Delete(ctx, ws); err != nil {
		t.Fatal(err)
	}
	if ev := obs.phase(workspace.PhaseDelete); len(ev) != 1 || ev[0].d <= 0 {
		t.Fatalf("delete events %+v", ev)
	}
	if _, err := p.Client().Workspace(ctx, ws.ID); coder.StatusCode(err) != http.StatusGone {
		t.Fatalf("deleted workspace: want 410, got %v", err)
	}
	if err := p.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if len(obs.failures) != 0 {
		t.Fatalf("failures: %v", obs.failures)
	}
}

func TestParameterErrors(t *testing.T) {
	sim := newSim(t, codersim.Config{})
	p, obs := newProvider(t, sim, nil)
	ctx := context.Background()
	cases := []struct {
		params map[string]string
		want   []string
	}{
		{map[string]string{"cpu": "2", "gpu": "1"}, []string{`unknown parameter "gpu"`, "cpu, memory, home_disk_size"}},
		{map[string]string{"cpu": "3"}, []string{`parameter "cpu"`, `"3"`, "2, 4, 6, 8"}},
		{map[string]string{"home_disk_size": "0"}, []string{`parameter "home_disk_size"`, "below the minimum 1"}},
		{map[string]string{"home_disk_size": "big"}, []string{"is not a number"}},
	}
	for _, c := range cases {
		_, err := p.Create(ctx, workspace.CreateRequest{Template: "kubernetes", Parameters: c.params})
		if err == nil {
			t.Fatalf("%v: want error", c.params)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q lacks %q", c.params, err, w)
			}
		}
	}
	if _, err := p.Create(ctx, workspace.CreateRequest{Template: "nope"}); err == nil || !strings.Contains(err.Error(), `template "nope"`) || coder.StatusCode(err) != 404 {
		t.Fatalf("unknown template: %v", err)
	}
	if len(obs.failures) != len(cases)+1 {
		t.Fatalf("failures reported: %d", len(obs.failures))
	}
	if l, _ := p.List(ctx); len(l) != 0 {
		t.Fatalf("workspaces created despite errors: %+v", l)
	}
	// The simulator validates server-side too, with Coder's error shape.
	c := p.Client()
	orgs, _ := c.Organizations(ctx)
	tmpl, _ := c.TemplateByName(ctx, orgs[0].ID, "kubernetes")
	_, err := c.CreateWorkspace(ctx, orgs[0].ID, "me", coder.CreateWorkspaceRequest{TemplateID: tmpl.ID, Name: "x1",
		RichParameterValues: []coder.WorkspaceBuildParameter{{Name: "cpu", Value: "3"}}})
	var apiErr *coder.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 400 || len(apiErr.Validations) != 1 || apiErr.Validations[0].Field != "cpu" {
		t.Fatalf("server-side validation: %#v", err)
	}
	if !strings.Contains(err.Error(), "POST /api/v2/organizations/") || !strings.Contains(err.Error(), `Unable to validate parameter "cpu"`) {
		t.Fatalf("API error text %q", err)
	}
	_ = p.Cleanup(ctx)
}

func TestBuildFailureAndRetry(t *testing.T) {
	ctx := context.Background()
	t.Run("fails without retries", func(t *testing.T) {
		sim := newSim(t, codersim.Config{Faults: codersim.Faults{BuildFailureRate: 1}})
		p, obs := newProvider(t, sim, func(c *coder.Config) { c.Retries = 2; c.RunID = "bf" })
		ws, err := p.Create(ctx, workspace.CreateRequest{Template: "kubernetes"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.WaitReady(ctx, ws)
		if err == nil || !strings.Contains(err.Error(), "workspace scaletest-bf-1: build #3 failed: terraform apply") ||
			!strings.Contains(err.Error(), "after 2 retries") {
			t.Fatalf("error = %v", err)
		}
		if len(obs.failures) != 1 || !strings.HasPrefix(obs.failures[0], "create: ") {
			t.Fatalf("failures = %v", obs.failures)
		}
		if err := p.Cleanup(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("succeeds after retry", func(t *testing.T) {
		// Under seed 1 the first start build draws a failure, the second not.
		be := codersim.NewMemBackend()
		sim := newSim(t, codersim.Config{Seed: 1, Backend: be, Faults: codersim.Faults{BuildFailureRate: 0.5}})
		p, _ := newProvider(t, sim, func(c *coder.Config) { c.Retries = 1 })
		ws, err := p.Create(ctx, workspace.CreateRequest{Template: "kubernetes"})
		if err != nil {
			t.Fatal(err)
		}
		ws, err = p.WaitReady(ctx, ws)
		if err != nil {
			t.Fatal(err)
		}
		b, err := p.Client().WorkspaceBuild(ctx, ws.BuildID)
		if err != nil || b.BuildNumber != 2 || b.Job.Status != coder.JobSucceeded {
			t.Fatalf("build = %+v, %v", b, err)
		}
		if be.Running() != 1 {
			t.Fatalf("running machines %d", be.Running())
		}
		if err := p.Cleanup(ctx); err != nil {
			t.Fatal(err)
		}
		if be.Running() != 0 {
			t.Fatalf("running machines after cleanup %d", be.Running())
		}
	})
}

func TestAgentNeverConnects(t *testing.T) {
	sim := newSim(t, codersim.Config{Faults: codersim.Faults{AgentNeverConnectsRate: 1}})
	p, obs := newProvider(t, sim, func(c *coder.Config) { c.RunID = "nc"; c.AgentTimeout = 150 * time.Millisecond })
	ctx := context.Background()
	ws, err := p.Create(ctx, workspace.CreateRequest{Template: "kubernetes"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.WaitReady(ctx, ws)
	want := `workspace scaletest-nc-1: agent "main" not connected after 150ms (status connecting)`
	if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want %q", err, want)
	}
	if len(obs.failures) != 1 || len(obs.phase(workspace.PhaseReady)) != 0 || len(obs.phase(workspace.PhaseBuild)) != 1 {
		t.Fatalf("events: failures %v phases %+v", obs.failures, obs.phases)
	}
	if err := p.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestRateLimit429(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for Retry-After (≈2s)")
	}
	// One request a second per user and endpoint (coderd's keying): the
	// second create's POST /api/v2/users is limited.
	sim := newSim(t, codersim.Config{Faults: codersim.Faults{RateLimit: 1}})
	ctx := context.Background()
	// Without the bypass header the client is limited and backs off.
	p, _ := newProvider(t, sim, func(c *coder.Config) { c.Client.BypassRateLimit = false; c.PollInterval = time.Millisecond })
	for i := 0; i < 2; i++ {
		ws, err := p.Create(ctx, workspace.CreateRequest{Template: "kubernetes"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.WaitReady(ctx, ws); err != nil {
			t.Fatal(err)
		}
	}
	st := p.Client().Stats()
	if st.RateLimited == 0 || st.Retries < st.RateLimited {
		t.Fatalf("stats = %+v: expected 429s and retries", st)
	}
	if err := p.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	// Bounded: with no retries allowed the 429 surfaces with Coder's message.
	c, _ := coder.NewClient(sim.URL, sim.AdminToken, coder.ClientOptions{MaxRateLimitRetries: -1})
	var lastErr error
	for i := 0; i < 20 && lastErr == nil; i++ {
		_, lastErr = c.BuildInfo(ctx)
		_, lastErr = c.Me(ctx)
	}
	if coder.StatusCode(lastErr) != http.StatusTooManyRequests || !strings.Contains(lastErr.Error(), "GET /api/v2/users/me: 429") ||
		!strings.Contains(lastErr.Error(), "rate limited for sending more than 1 requests") {
		t.Fatalf("error = %v", lastErr)
	}
	// The owner's bypass header is honoured.
	b, _ := coder.NewClient(sim.URL, sim.AdminToken, coder.ClientOptions{BypassRateLimit: true, MaxRateLimitRetries: -1})
	for i := 0; i < 30; i++ {
		if _, err := b.Me(ctx); err != nil {
			t.Fatalf("bypass request %d: %v", i, err)
		}
	}
}

func TestDeleteWithActiveBuild(t *testing.T) {
	sim := newSim(t, codersim.Config{Faults: codersim.Faults{BuildQueue: codersim.Latency{Fixed: time.Minute}}})
	p, obs := newProvider(t, sim, nil)
	ctx := context.Background()
	ws, err := p.Create(ctx, workspace.CreateRequest{Template: "kubernetes"})
	if err != nil {
		t.Fatal(err)
	}
	// Stop the build queue delay for the builds that follow (cancel + delete).
	_ = sim.SetFaults(codersim.Faults{})
	start := time.Now()
	if err := p.Delete(ctx, ws); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatal("delete waited for the active build instead of cancelling it")
	}
	c := p.Client()
	w, err := c.Workspace(ctx, ws.ID)
	if coder.StatusCode(err) != http.StatusGone {
		t.Fatalf("want 410, got %+v %v", w, err)
	}
	b1, err := c.WorkspaceBuild(ctx, ws.BuildID)
	if err != nil || b1.Job.Status != coder.JobCanceled || b1.Job.CanceledAt == nil {
		t.Fatalf("first build = %+v %v", b1.Job, err)
	}
	if len(obs.phase(workspace.PhaseDelete)) != 1 {
		t.Fatal("no delete phase")
	}
	// Deleting again is a no-op.
	if err := p.Delete(ctx, ws); err != nil {
		t.Fatal(err)
	}
	if err := p.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestCleanupAfterAbort(t *testing.T) {
	be := codersim.NewMemBackend()
	sim := newSim(t, codersim.Config{Backend: be, Faults: codersim.Faults{
		BuildQueue: codersim.Latency{Fixed: 20 * time.Millisecond, Jitter: 80 * time.Millisecond},
		Build:      codersim.Latency{Fixed: 20 * time.Millisecond, Jitter: 50 * time.Millisecond},
	}})
	p, _ := newProvider(t, sim, func(c *coder.Config) { c.RunID = "abort" })
	ctx, cancel := context.WithCancel(context.Background())
	const n = 12
	var wg sync.WaitGroup
	var created atomic.Int32
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ws, err := p.Create(ctx, workspace.CreateRequest{Template: "kubernetes"})
			if err != nil {
				return
			}
			if created.Add(1) == 4 {
				cancel() // abort mid-run: other creates and waits are in flight
			}
			_, _ = p.WaitReady(ctx, ws)
		}()
	}
	wg.Wait()
	cancel()
	if p.Ledger().Len() == 0 {
		t.Fatal("nothing recorded")
	}
	noID := 0
	for _, e := range p.Ledger().Entries() {
		if e.ID == "" {
			noID++
		}
	}
	t.Logf("ledger at abort: %d entries %d without id, %d creates returned", p.Ledger().Len(), noID, created.Load())
	cctx, ccancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer ccancel()
	if err := p.Cleanup(cctx); err != nil {
		t.Fatal(err)
	}
	admin := adminClient(t, sim)
	wss, err := admin.Workspaces(cctx, "name:scaletest-abort-", 0, 0)
	if err != nil || wss.Count != 0 || len(wss.Workspaces) != 0 {
		t.Fatalf("workspaces left: %+v %v", wss, err)
	}
	us, err := admin.Users(cctx, "scaletest-abort-", 0, 0)
	if err != nil || us.Count != 0 {
		t.Fatalf("users left: %+v %v", us, err)
	}
	all, _ := admin.Users(cctx, "", 0, 0)
	if all.Count != 1 {
		t.Fatalf("only the admin should remain, have %d users", all.Count)
	}
	if be.Running() != 0 {
		t.Fatalf("%d workspace machines still running", be.Running())
	}
	if p.Ledger().Len() != 0 {
		t.Fatalf("ledger not empty: %+v", p.Ledger().Entries())
	}
	// Idempotent.
	if err := p.Cleanup(cctx); err != nil {
		t.Fatal(err)
	}
}

func TestSweepFindsUnrecordedResources(t *testing.T) {
	sim := newSim(t, codersim.Config{})
	ctx := context.Background()
	p1, _ := newProvider(t, sim, func(c *coder.Config) { c.RunID = "dead" })
	for i := 0; i < 3; i++ {
		if _, err := p1.Create(ctx, workspace.CreateRequest{Template: "kubernetes"}); err != nil {
			t.Fatal(err)
		}
	}
	// A new process knows nothing of p1's ledger.
	p2, _ := newProvider(t, sim, nil)
	if err := p2.Sweep(ctx, "scaletest-dead-"); err != nil {
		t.Fatal(err)
	}
	admin := adminClient(t, sim)
	wss, _ := admin.Workspaces(ctx, "", 0, 0)
	us, _ := admin.Users(ctx, "scaletest-", 0, 0)
	if wss.Count != 0 || us.Count != 0 {
		t.Fatalf("left: %d workspaces, %d users", wss.Count, us.Count)
	}
	if err := p2.Sweep(ctx, "other-"); err == nil {
		t.Fatal("sweep must refuse a non-scaletest prefix")
	}
}

func TestStopStart(t *testing.T) {
	sim := newSim(t, codersim.Config{})
	p, obs := newProvider(t, sim, func(c *coder.Config) { c.Users = coder.UsersMe })
	ctx := context.Background()
	ws, err := p.Create(ctx, workspace.CreateRequest{Template: "kubernetes"})
	if err != nil {
		t.Fatal(err)
	}
	if ws.Owner != "admin" {
		t.Fatalf("owner %q", ws.Owner)
	}
	ws, err = p.WaitReady(ctx, ws)
	if err != nil {
		t.Fatal(err)
	}
	first := ws.AgentID()
	if err := p.Stop(ctx, ws); err != nil {
		t.Fatal(err)
	}
	w, _ := p.Client().Workspace(ctx, ws.ID)
	if w.LatestBuild.Status != "stopped" {
		t.Fatalf("status %q", w.LatestBuild.Status)
	}
	ws, err = p.Start(ctx, ws)
	if err != nil {
		t.Fatal(err)
	}
	if ws.AgentID() == "" || ws.AgentID() == first {
		t.Fatalf("start should bring a new agent: %q vs %q", ws.AgentID(), first)
	}
	if len(obs.phase(workspace.PhaseStop)) != 1 || len(obs.phase(workspace.PhaseReady)) != 2 {
		t.Fatalf("phases %+v", obs.phases)
	}
	if err := p.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Client().Me(ctx); err != nil {
		t.Fatal("cleanup must not delete the caller:", err)
	}
}

func TestTerminalEcho(t *testing.T) {
	sim := newSim(t, codersim.Config{})
	p, _ := newProvider(t, sim, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, err := p.Create(ctx, workspace.CreateRequest{Template: "kubernetes"})
	if err != nil {
		t.Fatal(err)
	}
	ws, err = p.WaitReady(ctx, ws)
	if err != nil {
		t.Fatal(err)
	}
	term, err := p.Client().OpenTerminal(ctx, ws.AgentID(), coder.TerminalConfig{Command: "cat", Width: 120, Height: 40})
	if err != nil {
		t.Fatal(err)
	}
	var rwc io.ReadWriteCloser = term
	readFull := func(want string) {
		t.Helper()
		buf := make([]byte, len(want))
		done := make(chan error, 1)
		go func() { _, err := io.ReadFull(rwc, buf); done <- err }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("timeout reading echo")
		}
		if string(buf) != want {
			t.Fatalf("read %q, want %q", buf, want)
		}
	}
	if _, err := rwc.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	readFull("hello\r\nhello\r\n") // tty echo, then cat's output
	// A write larger than one frame is split into ≤1024-byte chunks and
	// arrives whole and in order.
	long := strings.Repeat("0123456789abcdef", 200) // 3200 bytes
	if n, err := rwc.Write([]byte(long + "\n")); err != nil || n != len(long)+1 {
		t.Fatal(n, err)
	}
	readFull(long + "\r\n" + long + "\r\n")
	if err := rwc.Close(); err != nil {
		t.Fatal(err)
	}
	// A terminal to an agent that is not connected is refused with Coder's message.
	_ = sim.SetFaults(codersim.Faults{AgentNeverConnectsRate: 1})
	ws2, err := p.Create(ctx, workspace.CreateRequest{Template: "kubernetes"})
	if err != nil {
		t.Fatal(err)
	}
	var agentID string
	for agentID == "" {
		b, err := p.Client().WorkspaceBuild(ctx, ws2.BuildID)
		if err != nil {
			t.Fatal(err)
		}
		if a := b.Agents(); len(a) > 0 {
			agentID = a[0].ID
		}
		time.Sleep(5 * time.Millisecond)
	}
	_, err = p.Client().OpenTerminal(ctx, agentID, coder.TerminalConfig{})
	if coder.StatusCode(err) != http.StatusBadRequest || !strings.Contains(err.Error(), `must be in the "connected" state`) {
		t.Fatalf("error = %v", err)
	}
	if err := p.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestSessionTokenNeverInErrors(t *testing.T) {
	sim := newSim(t, codersim.Config{})
	ctx := context.Background()
	const secret = "AbCdEfGhIj-supersecretsessiontoken42"
	p, _ := newProvider(t, sim, func(c *coder.Config) { c.Token = secret })
	_, err0 := p.Create(ctx, workspace.CreateRequest{Template: "kubernetes"})
	if err0 == nil || coder.StatusCode(err0) != http.StatusUnauthorized {
		t.Fatalf("want 401, got %v", err0)
	}
	// A server that echoes the header back must not make the token leak.
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"message":"bad token %s","detail":"%s"}`, r.Header.Get(coder.SessionTokenHeader), r.Header.Get(coder.SessionTokenHeader))
	}))
	defer echo.Close()
	c, err := coder.NewClient(echo.URL, secret, coder.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err1 := c.Me(ctx)
	_, err2 := c.OpenTerminal(ctx, "7c9a2a4e-5f0b-4a44-8b6e-0123456789ab", coder.TerminalConfig{})
	dead, _ := coder.NewClient("http://127.0.0.1:1", secret, coder.ClientOptions{MaxServerErrorRetries: -1})
	_, err3 := dead.Me(ctx)
	for i, e := range []error{err0, err1, err2, err3} {
		if e == nil {
			t.Fatalf("error %d is nil", i)
		}
		if strings.Contains(e.Error(), secret) || strings.Contains(fmt.Sprintf("%+v", e), secret) {
			t.Fatalf("error %d leaks the token: %v", i, e)
		}
	}
	if !strings.Contains(err1.Error(), "[REDACTED]") || coder.StatusCode(err1) != 400 {
		t.Fatalf("redacted error = %v", err1)
	}
	if _, err := coder.NewProvider(coder.Config{URL: sim.URL, Token: "x", Users: "everyone"}); err == nil ||
		!strings.Contains(err.Error(), `users "everyone"`) {
		t.Fatalf("strict config: %v", err)
	}
}

// TestCleanupRemovesWorkspacesTheLedgerMissed covers a create cut off by an
// abort that reaches the server after cleanup's workspace pass: the user
// then still owns a workspace the ledger does not know, and deleting the
// user must remove it instead of failing with "user has workspaces".
func TestCleanupRemovesWorkspacesTheLedgerMissed(t *testing.T) {
	be := codersim.NewMemBackend()
	sim := newSim(t, codersim.Config{Backend: be})
	p, _ := newProvider(t, sim, func(c *coder.Config) { c.RunID = "late" })
	ctx := context.Background()
	ws, err := p.Create(ctx, workspace.CreateRequest{Template: "kubernetes"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.WaitReady(ctx, ws); err != nil {
		t.Fatal(err)
	}
	p.Ledger().Forget(workspace.KindWorkspace, ws.Name)

	if err := p.Cleanup(ctx); err != nil {
		t.Fatalf("cleanup: %v", err)
	}
	admin := adminClient(t, sim)
	wss, err := admin.Workspaces(ctx, "name:scaletest-late-", 0, 0)
	if err != nil || wss.Count != 0 {
		t.Fatalf("workspaces left: %+v %v", wss, err)
	}
	us, err := admin.Users(ctx, "scaletest-late-", 0, 0)
	if err != nil || us.Count != 0 {
		t.Fatalf("users left: %+v %v", us, err)
	}
	if be.Running() != 0 {
		t.Fatalf("%d workspace machines still running", be.Running())
	}
}
