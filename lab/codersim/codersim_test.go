package codersim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

type rawClient struct {
	t     *testing.T
	base  string
	token string
}

func (c rawClient) do(method, path string, body any) (int, http.Header, map[string]any, []any) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	if c.token != "" {
		req.Header.Set("Coder-Session-Token", c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var obj map[string]any
	var arr []any
	if len(raw) > 0 && raw[0] == '[' {
		_ = json.Unmarshal(raw, &arr)
	} else if err := json.Unmarshal(raw, &obj); err != nil {
		c.t.Fatalf("%s %s: body is not JSON: %q", method, path, raw)
	}
	return resp.StatusCode, resp.Header, obj, arr
}

func start(t *testing.T, cfg Config) (*Server, rawClient) {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, rawClient{t: t, base: s.URL, token: s.AdminToken}
}

func hasKeys(t *testing.T, what string, m map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Errorf("%s: missing JSON field %q (have %v)", what, k, m)
		}
	}
}

func TestLoopbackOnly(t *testing.T) {
	if _, err := New(Config{Addr: "0.0.0.0:0"}); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("want loopback error, got %v", err)
	}
	if _, err := New(Config{Faults: Faults{BuildFailureRate: 2}}); err == nil || !strings.Contains(err.Error(), "build failure rate 2") {
		t.Fatalf("want rate error, got %v", err)
	}
}

func TestErrorShapesAndAuth(t *testing.T) {
	s, c := start(t, Config{})
	anon := rawClient{t: t, base: s.URL}
	st, _, body, _ := anon.do("GET", "/api/v2/users/me", nil)
	if st != 401 || body["message"] == "" {
		t.Fatalf("anon: %d %v", st, body)
	}
	st, _, body, _ = c.do("GET", "/api/v2/nope", nil)
	if st != 404 || body["message"] != "Route not found." {
		t.Fatalf("unknown route: %d %v", st, body)
	}
	st, _, body, _ = c.do("POST", "/api/v2/users", map[string]any{"email": "nope", "username": "bad_name!", "password": "x"})
	vs, _ := body["validations"].([]any)
	if st != 400 || len(vs) != 2 {
		t.Fatalf("validation: %d %v", st, body)
	}
	hasKeys(t, "validation", vs[0].(map[string]any), "field", "detail")
	// Login.
	st, _, body, _ = anon.do("POST", "/api/v2/users/login", map[string]string{"email": s.AdminEmail, "password": s.AdminPassword})
	if st != 201 || body["session_token"] == "" {
		t.Fatalf("login: %d %v", st, body)
	}
	st, _, _, _ = anon.do("POST", "/api/v2/users/login", map[string]string{"email": s.AdminEmail, "password": "wrong"})
	if st != 401 {
		t.Fatalf("bad login: %d", st)
	}
	st, _, body, _ = anon.do("GET", "/api/v2/buildinfo", nil)
	if st != 200 {
		t.Fatal(st)
	}
	hasKeys(t, "buildinfo", body, "external_url", "version", "dashboard_url", "deployment_id")
	st, _, _, _ = c.do("GET", "/api/v2/workspaces?q=colour:blue", nil)
	if st != 400 {
		t.Fatalf("unknown filter: %d", st)
	}
}

func TestWorkspaceLifecycleJSON(t *testing.T) {
	_, c := start(t, Config{Faults: Faults{
		BuildQueue: Latency{Fixed: 30 * time.Millisecond}, Build: Latency{Fixed: 30 * time.Millisecond},
	}})
	_, _, me, _ := c.do("GET", "/api/v2/users/me", nil)
	hasKeys(t, "user", me, "id", "username", "email", "created_at", "status", "login_type", "organization_ids", "roles")
	_, _, _, orgs := c.do("GET", "/api/v2/organizations", nil)
	org := orgs[0].(map[string]any)
	hasKeys(t, "org", org, "id", "name", "display_name", "is_default", "created_at")
	st, _, tmpl, _ := c.do("GET", "/api/v2/organizations/"+org["id"].(string)+"/templates/kubernetes", nil)
	if st != 200 {
		t.Fatal(st)
	}
	hasKeys(t, "template", tmpl, "id", "name", "organization_id", "active_version_id", "provisioner")
	_, _, _, params := c.do("GET", "/api/v2/templateversions/"+tmpl["active_version_id"].(string)+"/rich-parameters", nil)
	if len(params) != 3 {
		t.Fatalf("params %v", params)
	}
	hasKeys(t, "parameter", params[2].(map[string]any), "name", "type", "default_value", "options", "validation_min", "validation_max", "required", "mutable")

	st, _, ws, _ := c.do("POST", "/api/v2/organizations/coder/members/me/workspaces", map[string]any{
		"template_id": tmpl["id"], "name": "ws-1",
		"rich_parameter_values": []map[string]string{{"name": "cpu", "value": "8"}},
	})
	if st != 201 {
		t.Fatalf("create: %d %v", st, ws)
	}
	hasKeys(t, "workspace", ws, "id", "name", "owner_id", "owner_name", "organization_id", "template_id", "template_name", "latest_build", "outdated", "health")
	lb := ws["latest_build"].(map[string]any)
	hasKeys(t, "build", lb, "id", "build_number", "transition", "status", "job", "resources", "workspace_id", "workspace_owner_name", "template_version_id")
	if lb["transition"] != "start" || lb["job"].(map[string]any)["status"] != "pending" || lb["status"] != "pending" {
		t.Fatalf("fresh build %v", lb)
	}
	st, _, _, _ = c.do("POST", "/api/v2/organizations/coder/members/me/workspaces", map[string]any{"template_id": tmpl["id"], "name": "ws-1"})
	if st != 409 {
		t.Fatalf("duplicate: %d", st)
	}
	// Job status progresses pending → running → succeeded; the agent connects.
	seen := map[string]bool{}
	var b map[string]any
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		_, _, b, _ = c.do("GET", "/api/v2/workspacebuilds/"+lb["id"].(string), nil)
		job := b["job"].(map[string]any)
		seen[job["status"].(string)] = true
		res := b["resources"].([]any)
		if job["status"] == "succeeded" && len(res) > 0 {
			agents := res[0].(map[string]any)["agents"].([]any)
			if len(agents) == 1 && agents[0].(map[string]any)["lifecycle_state"] == "ready" {
				break
			}
		}
		time.Sleep(3 * time.Millisecond)
	}
	if !seen["pending"] || !seen["running"] || !seen["succeeded"] {
		t.Fatalf("statuses seen %v", seen)
	}
	hasKeys(t, "job", b["job"].(map[string]any), "id", "created_at", "started_at", "completed_at", "status", "queue_position")
	agent := b["resources"].([]any)[0].(map[string]any)["agents"].([]any)[0].(map[string]any)
	hasKeys(t, "agent", agent, "id", "name", "status", "lifecycle_state", "first_connected_at", "ready_at", "resource_id", "operating_system")
	if agent["status"] != "connected" || b["status"] != "running" {
		t.Fatalf("agent %v build status %v", agent["status"], b["status"])
	}
	// Cancelling a finished build is refused.
	st, _, body, _ := c.do("PATCH", "/api/v2/workspacebuilds/"+lb["id"].(string)+"/cancel", nil)
	if st != 400 || body["message"] == "" {
		t.Fatalf("cancel done build: %d %v", st, body)
	}
	// Delete transition → 410 afterwards; the user can then be deleted.
	st, _, del, _ := c.do("POST", "/api/v2/workspaces/"+ws["id"].(string)+"/builds", map[string]string{"transition": "delete"})
	if st != 201 || del["transition"] != "delete" {
		t.Fatalf("delete: %d %v", st, del)
	}
	st, _, _, _ = c.do("POST", "/api/v2/workspaces/"+ws["id"].(string)+"/builds", map[string]string{"transition": "stop"})
	if st != 409 {
		t.Fatalf("build while another is active: %d", st)
	}
	var gone map[string]any
	for time.Now().Before(deadline) {
		if st, _, gone, _ = c.do("GET", "/api/v2/workspaces/"+ws["id"].(string), nil); st == 410 {
			break
		}
		time.Sleep(3 * time.Millisecond)
	}
	if st != 410 {
		t.Fatalf("deleted workspace: %d", st)
	}
	// coderd's text names ?deleted=true, though ?include_deleted=true is
	// the parameter it reads.
	if msg, _ := gone["message"].(string); !strings.Contains(msg, "was deleted, you can view this workspace by specifying '?deleted=true'") {
		t.Errorf("410 message %q differs from coderd's", msg)
	}
	st, _, list, _ := c.do("GET", "/api/v2/workspaces?q=owner:me", nil)
	if st != 200 || list["count"].(float64) != 0 {
		t.Fatalf("list: %d %v", st, list)
	}
}

func TestRateLimitHeaders(t *testing.T) {
	_, c := start(t, Config{Faults: Faults{RateLimit: 3}})
	var st int
	var h http.Header
	var body map[string]any
	for i := 0; i < 4; i++ {
		st, h, body, _ = c.do("GET", "/api/v2/users/me", nil)
	}
	if st != 429 || h.Get("Retry-After") == "" || !strings.Contains(body["message"].(string), "rate limited") {
		t.Fatalf("%d %v %v", st, h, body)
	}
}

// outcomes creates n workspaces one after another and returns the final job
// status of each.
func outcomes(t *testing.T, seed uint64, n int) string {
	_, c := start(t, Config{Seed: seed, Faults: Faults{BuildFailureRate: 0.5}})
	_, _, tmpl, _ := c.do("GET", "/api/v2/organizations/coder/templates/kubernetes", nil)
	var out []string
	for i := 0; i < n; i++ {
		_, _, ws, _ := c.do("POST", "/api/v2/organizations/coder/members/me/workspaces",
			map[string]any{"template_id": tmpl["id"], "name": "w" + string(rune('a'+i))})
		id := ws["latest_build"].(map[string]any)["id"].(string)
		for {
			_, _, b, _ := c.do("GET", "/api/v2/workspacebuilds/"+id, nil)
			if s := b["job"].(map[string]any)["status"].(string); s == "succeeded" || s == "failed" {
				out = append(out, s[:1])
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	return strings.Join(out, "")
}

func TestDeterministicUnderSeed(t *testing.T) {
	a, b := outcomes(t, 7, 12), outcomes(t, 7, 12)
	if a != b {
		t.Fatalf("same seed, different faults: %s vs %s", a, b)
	}
	if !strings.Contains(a, "s") || !strings.Contains(a, "f") {
		t.Fatalf("rate 0.5 gave %s", a)
	}
}

func TestAgentCrash(t *testing.T) {
	s, c := start(t, Config{Faults: Faults{AgentCrashAfter: 30 * time.Millisecond}})
	_, _, tmpl, _ := c.do("GET", "/api/v2/organizations/coder/templates/kubernetes", nil)
	_, _, ws, _ := c.do("POST", "/api/v2/organizations/coder/members/me/workspaces", map[string]any{"template_id": tmpl["id"], "name": "crash"})
	seen := map[string]bool{}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && !seen["disconnected"] {
		_, _, w, _ := c.do("GET", "/api/v2/workspaces/"+ws["id"].(string), nil)
		for _, r := range w["latest_build"].(map[string]any)["resources"].([]any) {
			for _, a := range r.(map[string]any)["agents"].([]any) {
				seen[a.(map[string]any)["status"].(string)] = true
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	if !seen["connected"] || !seen["disconnected"] {
		t.Fatalf("agent statuses seen: %v", seen)
	}
	_ = s
}

func TestMemPTY(t *testing.T) {
	be := NewMemBackend()
	a, err := be.StartWorkspace(context.Background(), WorkspaceSpec{WorkspaceID: "w"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.OpenPTY(context.Background(), PTYRequest{Command: "dd if=/dev/stdin of=/dev/null"})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = p.Write([]byte("ab\rc\x03")) }()
	out, err := io.ReadAll(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "ab\r\nc^C\r\n" {
		t.Fatalf("output %q", out)
	}
	p2, _ := a.OpenPTY(context.Background(), PTYRequest{})
	if err := be.StopWorkspace(context.Background(), WorkspaceSpec{WorkspaceID: "w"}); err != nil {
		t.Fatal(err)
	}
	if _, err := p2.Read(make([]byte, 1)); err == nil {
		t.Fatal("session should end when the machine stops")
	}
	if _, err := a.OpenPTY(context.Background(), PTYRequest{}); err == nil {
		t.Fatal("stopped machine must refuse sessions")
	}
}

// TestMemPTYQuietCommand runs the command cdeload sends to a real agent to
// turn the tty's echo off: the marker is printed first, then only cat's
// copy of each line comes back (a real agent's shell does the same).
func TestMemPTYQuietCommand(t *testing.T) {
	be := NewMemBackend()
	a, err := be.StartWorkspace(context.Background(), WorkspaceSpec{WorkspaceID: "w"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.OpenPTY(context.Background(), PTYRequest{Command: "stty -echo; echo mark-1; exec cat"})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		_, _ = p.Write([]byte("one\rtwo\r"))
		_ = p.Close()
	}()
	out, _ := io.ReadAll(p)
	if string(out) != "mark-1\r\none\r\ntwo\r\n" {
		t.Fatalf("output %q, want the marker, then each line once", out)
	}
}

// TestUnauthorizedLikeCoderd checks the 401 answers against coderd's (seen
// on the coderpeer build): one message, and a detail saying why.
func TestUnauthorizedLikeCoderd(t *testing.T) {
	_, c := start(t, Config{})
	const signedOutMsg = "You are signed out or your session has expired. Please sign in again to continue."
	for token, detail := range map[string]string{
		"":                                   `Cookie "coder_session_token" or query parameter must be provided.`,
		"wrong":                              "Invalid API key format: incorrect amount of API key parts, expected 2 got 1",
		"abcdefghij-abcdefghijklmnopqrstuvw": "Invalid API key format: invalid API key secret length, expected 22 got 23",
		"abcdefghij-abcdefghijklmnopqrstuv":  "API key is invalid.",
	} {
		c.token = token
		st, _, body, _ := c.do("GET", "/api/v2/users/me", nil)
		if st != 401 || body["message"] != signedOutMsg || body["detail"] != detail {
			t.Errorf("token %q: %d %v, want 401 %q (%s)", token, st, body, signedOutMsg, detail)
		}
	}
}

// TestRateLimitPerUserAndEndpoint checks coderd's keying of its rate
// limit: one budget per user and path (whatever the method and session),
// with the X-Ratelimit-* headers on every answer.
func TestRateLimitPerUserAndEndpoint(t *testing.T) {
	s, c := start(t, Config{Faults: Faults{RateLimit: 3}})
	st, h, _, _ := c.do("GET", "/api/v2/users?limit=1", nil)
	if st != 200 || h.Get("X-Ratelimit-Limit") != "3" || h.Get("X-Ratelimit-Remaining") != "2" || h.Get("X-Ratelimit-Reset") == "" {
		t.Fatalf("first request: %d, headers %v", st, h)
	}
	c.do("GET", "/api/v2/users?limit=1", nil)
	c.do("POST", "/api/v2/users", map[string]any{}) // same path, another method: same budget
	// A second session of the same user shares the budget.
	anon := rawClient{t: t, base: s.URL}
	_, _, login, _ := anon.do("POST", "/api/v2/users/login", map[string]string{"email": s.AdminEmail, "password": s.AdminPassword})
	other := rawClient{t: t, base: s.URL, token: login["session_token"].(string)}
	if st, h, _, _ = other.do("GET", "/api/v2/users?limit=1", nil); st != 429 || h.Get("Retry-After") == "" {
		t.Errorf("4th request to /api/v2/users, from another session of the user: %d, want 429 with Retry-After", st)
	}
	if st, _, _, _ = other.do("GET", "/api/v2/organizations", nil); st != 200 {
		t.Errorf("another endpoint: %d, want 200 (its own budget)", st)
	}
}

// TestListWorkspacesSearch checks the workspace search as coderd does it:
// the query is case-insensitive, name: matches a substring, a bare term is
// a name or owner/name, template: an exact name, owner: a username or me,
// and has-agent: agent connection statuses.
func TestListWorkspacesSearch(t *testing.T) {
	_, c := start(t, Config{})
	_, _, tmpl, _ := c.do("GET", "/api/v2/organizations/coder/templates/kubernetes", nil)
	for _, name := range []string{"dev-a", "dev-b", "web"} {
		if st, _, ws, _ := c.do("POST", "/api/v2/organizations/coder/members/me/workspaces", map[string]any{"template_id": tmpl["id"], "name": name}); st != 201 {
			t.Fatalf("create %s: %d %v", name, st, ws)
		}
	}
	_, _, me, _ := c.do("GET", "/api/v2/users/me", nil)
	admin := me["username"].(string)
	list := func(q string) string {
		st, _, list, _ := c.do("GET", "/api/v2/workspaces?q="+url.QueryEscape(q), nil)
		if st != 200 {
			t.Fatalf("q=%q: %d %v", q, st, list)
		}
		var names []string
		for _, w := range list["workspaces"].([]any) {
			names = append(names, w.(map[string]any)["name"].(string))
		}
		return strings.Join(names, " ")
	}
	// has-agent: the agents' connection status, of start builds only.
	for deadline := time.Now().Add(30 * time.Second); list("has-agent:connected") != "dev-a dev-b web"; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("has-agent:connected = %q after 30 s, want every workspace", list("has-agent:connected"))
		}
	}
	if got := list("has-agent:timeout,disconnected"); got != "" {
		t.Errorf("has-agent:timeout,disconnected = %q, want none", got)
	}
	for q, want := range map[string]string{
		"Name:DEV":                     "dev-a dev-b",
		"dev":                          "dev-a dev-b",
		admin + "/web":                 "web",
		"nobody/web":                   "",
		"owner:me template:kubernetes": "dev-a dev-b web",
		"template:kube":                "",
		"owner:" + strings.ToUpper(admin) + " name:-b": "dev-b",
	} {
		if got := list(q); got != want {
			t.Errorf("q=%q: %q, want %q", q, got, want)
		}
	}
}
