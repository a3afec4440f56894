package cdeload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grafana/sobek"

	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/lab"
	"github.com/cdeload/cdeload/workspace"
	"github.com/cdeload/cdeload/workspace/coder"
)

// Environment variables read by the Coder constructor.
const (
	envCoderURL   = "CODER_URL"
	envCoderToken = "CODER_SESSION_TOKEN"
)

// Coder defaults.
const (
	defaultCreateTimeout  = 15 * time.Minute
	defaultCleanupTimeout = 30 * time.Minute
)

// coderTarget is a Coder deployment: URL and owner token, and the lab
// behind it when it is a lab's Coder simulator (its workspaces are then
// reachable over the lab's tailnet with the lab's SSH credentials).
type coderTarget struct {
	url, token string
	lab        labTarget // nil for a real Coder deployment
}

// labProbeTimeout bounds asking a Coder URL whether it is a lab.
const labProbeTimeout = 10 * time.Second

// labCoder returns the Coder simulator of the lab at labURL ("" for the
// embedded lab, started on first use).
func (r *RootModule) labCoder(ctx context.Context, labURL, labToken string) (coderTarget, error) {
	l, err := r.lab(ctx, labURL, labToken)
	if err != nil {
		return coderTarget{}, err
	}
	inf := l.info()
	if inf.CoderURL == "" {
		return coderTarget{}, fmt.Errorf("the lab at %s=%s runs without the Coder simulator (started with --no-coder)", envLabURL, labURL)
	}
	if labURL == "" {
		r.nodeStarted.Store(true) // its workspaces are tailnet nodes of this process
	}
	return coderTarget{url: inf.CoderURL, token: inf.CoderSessionToken, lab: l}, nil
}

// resolveCoder finds the lab behind a Coder URL, if any: the lab at
// labURL (CDELOAD_LAB_URL) when its Coder URL is this one, else the lab
// that answers GET <url>/lab/v1/info (a standalone `cdeload lab` serves its
// Coder API on its own URL). Anything else is a real Coder deployment.
func (r *RootModule) resolveCoder(ctx context.Context, t coderTarget, labURL, labToken string, timeout time.Duration) (coderTarget, error) {
	same := func(a, b string) bool { return strings.TrimRight(a, "/") == strings.TrimRight(b, "/") }
	if labURL != "" {
		if l, err := r.lab(ctx, labURL, labToken); err == nil && same(l.info().CoderURL, t.url) {
			t.lab = l
			return t, nil
		}
	}
	isLab, err := probeLab(ctx, t.url, t.token, timeout)
	if err != nil {
		return t, err
	}
	if isLab {
		if l, err := r.lab(ctx, strings.TrimRight(t.url, "/"), t.token); err == nil && same(l.info().CoderURL, t.url) {
			t.lab = l
		}
	}
	return t, nil
}

// probeLab reports whether the server at base answers the lab's info
// endpoint with a lab's JSON (a real Coder answers 404 or its web UI). A
// server that does not answer in timeout (at most labProbeTimeout) is an
// error: "no answer from <url> in <t>".
func probeLab(ctx context.Context, base, token string, timeout time.Duration) (bool, error) {
	if timeout <= 0 || timeout > labProbeTimeout {
		timeout = labProbeTimeout
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodGet, strings.TrimRight(base, "/")+"/lab/v1/info", nil)
	if err != nil {
		return false, nil
	}
	req.Header.Set("Authorization", "Bearer "+token) // a lab takes its Coder session token
	c := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		if ctx.Err() == nil && pctx.Err() != nil {
			return false, &coder.NoAnswerError{URL: base, Timeout: timeout}
		}
		return false, nil
	}
	defer resp.Body.Close()
	var inf lab.Info
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&inf) != nil {
		return false, nil
	}
	return inf.ControlURL != "" && inf.CoderURL != "", nil
}

// rememberCoderWorkspace records where a Coder workspace's address can be
// reached: over its lab's tailnet (dep.lab not nil), or over the
// deployment's own tailnet through its agent (a real Coder).
func (r *RootModule) rememberCoderWorkspace(address, name, agentID string, dep coderTarget) {
	if address == "" {
		return
	}
	r.rememberWorkspace(address, name)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.coderAddrs != nil {
		r.coderAddrs[address] = coderAddr{name: name, lab: dep.lab, agentID: agentID, dep: dep}
	}
}

// coderAddr is a Coder workspace address this process has seen.
type coderAddr struct {
	name    string
	lab     labTarget // nil: a real Coder workspace, reached over Coder's tailnet
	agentID string
	dep     coderTarget
}

// coderAddrOf returns what is known of a Coder workspace address.
func (r *RootModule) coderAddrOf(host string) (coderAddr, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.coderAddrs[host]
	return a, ok
}

// labForHost completes src for a connection to host: when host is a
// workspace of a lab's Coder simulator and the tailnet is that lab's
// (joined through TS_CONTROL_URL rather than as the lab), the lab's SSH
// credentials apply. A tailnet of another control server cannot reach the
// workspace: that is an error saying which tailnet to join.
func (r *RootModule) labForHost(src tailnetSource, host string) (tailnetSource, error) {
	r.mu.Lock()
	a, ok := r.coderAddrs[host]
	r.mu.Unlock()
	if !ok || a.lab == nil || src.lab == a.lab {
		return src, nil
	}
	want := a.lab.info().ControlURL
	if strings.TrimRight(want, "/") != strings.TrimRight(src.controlURL, "/") {
		return src, fmt.Errorf("workspace %s (%s) is on the tailnet of the lab behind its Coder deployment (control server %s), "+
			"but this Tailnet joined %s: set %s and %s (or %s) to that lab's, as `cdeload lab` prints them",
			a.name, host, want, src.controlURL, envControlURL, envAuthKey, envLabURL)
	}
	src.lab = a.lab
	return src, nil
}

// coderObj is the Go side of a JS Coder object: one provider per VU, made
// on the first call. Providers of the same deployment are registered on
// the root so that cleanup() in teardown removes what every VU created.
type coderObj struct {
	mi     *instance
	target coderTarget // empty: the embedded simulator
	cfg    coder.Config
	obs    *coderObserver

	labURL   string     // CDELOAD_LAB_URL when the object was made
	labToken string     // its token (see instance.labToken)
	kube     *coderKube // the `kubernetes` option (module_kube_coder.go)

	mu   sync.Mutex
	prov *coder.Provider
	key  string
	dep  coderTarget // the resolved deployment
}

// newCoder implements `new Coder(options?)`; it does not touch the network.
func (mi *instance) newCoder(call sobek.ConstructorCall) *sobek.Object {
	const op = "new Coder"
	c := &coderObj{mi: mi, obs: &coderObserver{}}
	cfg := &c.cfg
	mi.parseOptions(op, call.Argument(0), false, fields{
		"url":             func(v sobek.Value) (err error) { c.target.url, err = asNonEmpty(v); return err },
		"token":           func(v sobek.Value) (err error) { c.target.token, err = asNonEmpty(v); return err },
		"bypassRateLimit": func(v sobek.Value) (err error) { cfg.Client.BypassRateLimit, err = asBool(v); return err },
		"organization":    func(v sobek.Value) (err error) { cfg.Organization, err = asNonEmpty(v); return err },
		"users": func(v sobek.Value) error {
			s, _ := v.Export().(string)
			if s != coder.UsersPerWorkspace && s != coder.UsersMe {
				return fmt.Errorf("want %q (a scaletest user per workspace) or %q", coder.UsersPerWorkspace, coder.UsersMe)
			}
			cfg.Users = s
			return nil
		},
		"retries": func(v sobek.Value) error {
			n, err := asInt(v, 0, 100)
			cfg.Retries = int(n)
			return err
		},
		"pollInterval":    func(v sobek.Value) (err error) { cfg.PollInterval, err = asDuration(v); return err },
		"buildTimeout":    func(v sobek.Value) (err error) { cfg.BuildTimeout, err = asDuration(v); return err },
		"agentTimeout":    func(v sobek.Value) (err error) { cfg.AgentTimeout, err = asDuration(v); return err },
		"deleteTimeout":   func(v sobek.Value) (err error) { cfg.DeleteTimeout, err = asDuration(v); return err },
		"noWaitForAgents": func(v sobek.Value) (err error) { cfg.NoWaitForAgents, err = asBool(v); return err },
		"ignoreLifecycle": func(v sobek.Value) (err error) { cfg.IgnoreLifecycle, err = asBool(v); return err },
		"requestTimeout":  func(v sobek.Value) (err error) { cfg.Client.RequestTimeout, err = asDuration(v); return err },
		"cleanupConcurrency": func(v sobek.Value) error {
			n, err := asInt(v, 1, 1000)
			cfg.CleanupConcurrency = int(n)
			return err
		},
		"kubernetes": func(v sobek.Value) error {
			o, err := mi.parseKube(op, v)
			c.kube = newCoderKube(o)
			return err
		},
	})
	if c.target.url == "" {
		c.target.url = mi.getenv(envCoderURL)
	}
	if c.target.token == "" {
		c.target.token = mi.getenv(envCoderToken)
	}
	if c.target.url != "" && c.target.token == "" {
		mi.throw(fmt.Errorf("%s: a Coder URL is set but no token: set the token option or %s", op, envCoderToken))
	}
	if c.target.url == "" && c.target.token != "" {
		mi.throw(fmt.Errorf("%s: a Coder token is set but no URL: set the url option or %s", op, envCoderURL))
	}
	c.labURL, c.labToken = mi.getenv(envLabURL), mi.labToken()
	o := call.This
	method(o, "createWorkspace", c.jsCreate)
	method(o, "cleanup", c.jsCleanup)
	method(o, "workspaces", c.jsWorkspaces) // module_coder_existing.go
	return nil
}

// provider returns the VU's provider, making it on first use. Without a
// URL the deployment is the Coder simulator of the lab at CDELOAD_LAB_URL,
// or else of the embedded lab; with one, resolveCoder finds out whether it
// is a lab's.
func (c *coderObj) provider(ctx context.Context) (*coder.Provider, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.prov != nil {
		return c.prov, nil
	}
	root := c.mi.root
	t := c.target
	key := "url=" + t.url
	if t.url == "" {
		var err error
		if t, err = root.labCoder(ctx, c.labURL, c.labToken); err != nil {
			return nil, err
		}
		key = "lab=" + c.labURL
	} else {
		var err error
		if t, err = root.resolveCoder(ctx, t, c.labURL, c.labToken, c.cfg.Client.RequestTimeout); err != nil {
			return nil, err
		}
	}
	cfg := c.cfg
	cfg.URL, cfg.Token, cfg.Observer = t.url, t.token, c.obs
	cfg.RunID = fmt.Sprintf("%sc%d", root.runID, root.seq.Add(1))
	if l := t.lab; l != nil {
		cfg.AddressFunc = func(agentID string) string {
			if a := l.coderAgentAddress(agentID); a != "" {
				return a
			}
			return coder.AgentAddress(agentID)
		}
	}
	p, err := coder.NewProvider(cfg)
	if err != nil {
		return nil, err
	}
	if err := root.addCoder(key, c); err != nil {
		p.Close()
		return nil, err
	}
	c.prov, c.key, c.dep = p, key, t
	return p, nil
}

// deployment returns the resolved deployment (after provider).
func (c *coderObj) deployment() coderTarget {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dep
}

// cleanupOnClose removes what the provider created and the script left
// behind (an aborted run, a script without cleanup()), without emitting
// metrics: the run is over.
func (c *coderObj) cleanupOnClose(ctx context.Context, lim *workspace.Limiter) error {
	c.mu.Lock()
	p := c.prov
	c.mu.Unlock()
	if p == nil || p.Ledger().Len() == 0 {
		return nil
	}
	c.obs.cur.Store(nil)
	if err := p.CleanupShared(ctx, lim); err != nil {
		return fmt.Errorf("cdeload: clean up Coder workspaces and users of run %s: %w", p.RunID(), err)
	}
	return nil
}

// closeProvider releases the provider's idle connections.
func (c *coderObj) closeProvider() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.prov != nil {
		c.prov.Close()
	}
}

// coderObserver turns provider events into workspace_* samples, with the
// tags of the JS call in progress (the latest call of the VU).
type coderObserver struct {
	cur    atomic.Pointer[coderCall]
	reason atomic.Pointer[func() string] // pod failure reason (module_kube_coder.go)
}

// coderCall is a JS call whose provider events become samples: its
// emitter and the lifecycle operation it is (create, start, delete, stop,
// cleanup).
type coderCall struct {
	e  *emitter
	op string
}

// begin makes the observer report the events of a new call.
func (o *coderObserver) begin(e *emitter, op string) { o.cur.Store(&coderCall{e: e, op: op}) }

// OnPhase implements workspace.Observer. A terminal phase is a successful
// operation: a workspace_failed 0 tagged with the operation.
func (o *coderObserver) OnPhase(phase string, d time.Duration, ws workspace.Workspace) {
	c := o.cur.Load()
	if c == nil || c.e == nil || c.e.ms == nil {
		return
	}
	e := c.e.withMeta(map[string]string{"workspace": ws.Name, "agent_id": ws.AgentID()})
	var out []metrics.Sample
	if m := e.ms.byName[workspace.MetricName(phase)]; m != nil {
		out = append(out, e.sample(m, metrics.D(d)))
	}
	if workspace.IsTerminalPhase(phase) {
		op := c.op
		switch phase {
		case workspace.PhaseDelete:
			op = workspace.OpDelete
		case workspace.PhaseStop:
			op = workspace.OpStop
		}
		out = append(out, e.sample(e.ms.workspaceFailed, 0, "op", op))
	}
	e.push(out...)
}

// OnFailure implements workspace.Observer: a workspace_failed 1 tagged
// with the operation and, when known, the reason: the workspace pod's
// (module_kube_coder.go), else coder.FailureReason's. Its metadata carries
// the error for the web dashboard.
func (o *coderObserver) OnFailure(op string, err error) {
	c := o.cur.Load()
	if c == nil || c.e == nil || c.e.ms == nil {
		return
	}
	tags := []string{"op", op}
	if pod := o.failTags(); pod != nil {
		tags = append(tags, pod...)
	} else if r := coder.FailureReason(err); r != "" {
		tags = append(tags, "reason", r)
	}
	e := c.e.withMeta(failureMeta(op, err))
	e.push(e.sample(e.ms.workspaceFailed, 1, tags...))
}

// failureMeta is the metadata of a workspace_failed sample: the operation
// and its error (cut to 300 bytes), which the web dashboard shows as the
// failure's reason.
func failureMeta(op string, err error) map[string]string {
	m := map[string]string{"op": op}
	if err != nil {
		msg := err.Error()
		if len(msg) > 300 {
			msg = strings.ToValidUTF8(msg[:300], "") + "…"
		}
		m["error"] = msg
	}
	return m
}

// withMeta returns a copy of e with extra metadata.
func (e *emitter) withMeta(extra map[string]string) *emitter {
	md := make(map[string]string, len(e.meta)+len(extra))
	for k, v := range e.meta {
		md[k] = v
	}
	for k, v := range extra {
		if v != "" {
			md[k] = v
		}
	}
	c := *e
	c.meta = md
	return &c
}

func (c *coderObj) jsCreate(call sobek.FunctionCall) sobek.Value {
	mi := c.mi
	op := "coder.createWorkspace"
	mi.mustVU(op)
	var req workspace.CreateRequest
	timeout := defaultCreateTimeout
	mi.parseOptions(op, call.Argument(0), true, fields{
		"template":   func(v sobek.Value) (err error) { req.Template, err = asNonEmpty(v); return err },
		"parameters": func(v sobek.Value) (err error) { req.Parameters, err = asStringMap(v); return err },
		"name":       func(v sobek.Value) (err error) { req.Name, err = asNonEmpty(v); return err },
		"timeout":    func(v sobek.Value) (err error) { timeout, err = asDuration(v); return err },
	})
	if req.Template == "" {
		mi.throw(fmt.Errorf("%s: option template is required", op))
	}
	op = fmt.Sprintf("coder.createWorkspace(template %q)", req.Template)
	e := mi.emitter(mi.vu.Context(), nil)
	c.obs.begin(e, workspace.OpCreate)
	return mi.async(op, func(ctx context.Context) (toJS, error) {
		p, err := c.provider(ctx)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		sw, endKube, err := c.kube.start(ctx, mi.root, e)
		if err != nil {
			return nil, err
		}
		defer endKube()
		ws, err := p.Create(ctx, req)
		if err != nil {
			return nil, err
		}
		c.kube.created(sw, ws, c.obs)
		ws, err = p.WaitReady(ctx, ws)
		err = c.kube.ready(ctx, sw, ws, err, e, c.obs)
		if err != nil {
			return nil, err // it names the workspace
		}
		dep := c.deployment()
		mi.root.rememberCoderWorkspace(ws.Address, ws.Name, ws.AgentID(), dep)
		w := &coderWorkspace{c: c, ws: ws, ssh: ws.AgentID() != ""}
		return func(rt *sobek.Runtime) sobek.Value { return w.object() }, nil
	})
}

func (c *coderObj) jsCleanup(sobek.FunctionCall) sobek.Value {
	mi := c.mi
	const op = "coder.cleanup()"
	mi.mustVU(op)
	e := mi.emitter(mi.vu.Context(), nil)
	return mi.async(op, func(ctx context.Context) (toJS, error) {
		if _, err := c.provider(ctx); err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(ctx, defaultCleanupTimeout)
		defer cancel()
		cs := mi.root.codersFor(c.key)
		for _, o := range cs {
			o.obs.begin(e, workspace.OpCleanup)
		}
		return undefinedJS, cleanupAll(ctx, cs, func(o *coderObj, lim *workspace.Limiter) error {
			o.mu.Lock()
			p := o.prov
			o.mu.Unlock()
			return p.CleanupShared(ctx, lim)
		})
	})
}

// cleanupAll runs clean for every Coder object at once, the objects of one
// deployment sharing one bound of removals in flight (the largest
// cleanupConcurrency among them), and joins the errors.
func cleanupAll(ctx context.Context, cs []*coderObj, clean func(*coderObj, *workspace.Limiter) error) error {
	bounds := map[string]int{}
	keys := make([]string, len(cs))
	for i, o := range cs {
		o.mu.Lock()
		keys[i] = o.key
		o.mu.Unlock()
		bounds[keys[i]] = max(bounds[keys[i]], o.cleanupConcurrency())
	}
	lims := map[string]*workspace.Limiter{}
	for k, n := range bounds {
		lims[k] = workspace.NewLimiter(n)
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for i, o := range cs {
		wg.Go(func() {
			if err := clean(o, lims[keys[i]]); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// cleanupConcurrency is the object's cleanupConcurrency option or the
// default.
func (c *coderObj) cleanupConcurrency() int {
	if c.cfg.CleanupConcurrency > 0 {
		return c.cfg.CleanupConcurrency
	}
	return coder.DefaultCleanupConcurrency
}

// cleanupCoders removes, at Close, what every Coder object's provider still
// has recorded (see cleanupOnClose), every provider at once.
func cleanupCoders(coders map[string][]*coderObj) error {
	ctx, cancel := context.WithTimeout(context.Background(), closeCleanupTimeout)
	defer cancel()
	var cs []*coderObj
	for _, list := range coders {
		cs = append(cs, list...)
	}
	return cleanupAll(ctx, cs, func(o *coderObj, lim *workspace.Limiter) error { return o.cleanupOnClose(ctx, lim) })
}

// coderWorkspace is the Go side of a JS workspace object.
type coderWorkspace struct {
	c   *coderObj
	ssh bool // reachable by cde.ssh.connect (a lab's workspace)
	// existing: found by coder.workspaces(), not created by this run, so
	// never deleted by it.
	existing bool
	mu       sync.Mutex
	ws       workspace.Workspace
}

func (w *coderWorkspace) get() workspace.Workspace {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ws
}

// object builds the JS workspace; it runs on the event loop.
func (w *coderWorkspace) object() *sobek.Object {
	rt := w.c.mi.vu.Runtime()
	ws := w.get()
	o := rt.NewObject()
	set(o, "name", ws.Name)
	set(o, "id", ws.ID)
	set(o, "owner", ws.Owner)
	set(o, "template", ws.Template)
	set(o, "sshSupported", w.ssh)
	set(o, "existing", w.existing)
	w.setBuild(o, ws)
	method(o, "delete", w.lifecycle(o, "delete"))
	method(o, "stop", w.lifecycle(o, "stop"))
	method(o, "start", w.lifecycle(o, "start"))
	method(o, "terminal", w.jsTerminal)
	return o
}

// setBuild sets the JS properties that change with every build: a real
// coderd gives the agent a new ID (and so a new address) on each start, and
// a stopped workspace has no agent. It runs on the event loop.
func (w *coderWorkspace) setBuild(o *sobek.Object, ws workspace.Workspace) {
	rt := w.c.mi.vu.Runtime()
	set(o, "address", ws.Address)
	set(o, "agentId", ws.AgentID())
	set(o, "status", ws.Status)
	t := rt.NewObject()
	set(t, "buildMs", ms(ws.Timings.Build))
	set(t, "agentConnectMs", ms(ws.Timings.AgentConnect))
	set(t, "readyMs", ms(ws.Timings.Ready))
	set(o, "timings", t)
}

// lifecycle returns the JS method for delete, stop or start of o. After
// stop and start it brings o's agentId, address and timings up to date.
func (w *coderWorkspace) lifecycle(o *sobek.Object, which string) func(sobek.FunctionCall) sobek.Value {
	return func(call sobek.FunctionCall) sobek.Value {
		mi := w.c.mi
		op := "workspace." + which + "()"
		mi.mustVU(op)
		timeout := defaultCreateTimeout
		mi.parseOptions(op, call.Argument(0), false, fields{
			"timeout": func(v sobek.Value) (err error) { timeout, err = asDuration(v); return err },
		})
		ws := w.get()
		op = fmt.Sprintf("workspace.%s() of %s", which, ws.Name)
		if which == "delete" && w.existing {
			return mi.async(op, func(context.Context) (toJS, error) { return nil, errNotCreated(ws.Name) })
		}
		e := mi.emitter(mi.vu.Context(), nil)
		w.c.obs.begin(e, which)
		return mi.async(op, func(ctx context.Context) (toJS, error) {
			p, err := w.c.provider(ctx)
			if err != nil {
				return nil, err
			}
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			var nws workspace.Workspace
			switch which {
			case "delete":
				return undefinedJS, p.Delete(ctx, ws)
			case "stop":
				if err = p.Stop(ctx, ws); err != nil {
					return nil, err
				}
				nws = ws
				nws.Agents, nws.Address, nws.Timings, nws.Status = nil, "", workspace.Timings{}, "stopped"
			case "start":
				if nws, err = p.Start(ctx, ws); err != nil {
					return nil, err
				}
				w.c.mi.root.rememberCoderWorkspace(nws.Address, nws.Name, nws.AgentID(), w.c.deployment())
			}
			w.mu.Lock()
			w.ws = nws
			w.mu.Unlock()
			return func(rt *sobek.Runtime) sobek.Value { w.setBuild(o, nws); return sobek.Undefined() }, nil
		})
	}
}

func (w *coderWorkspace) jsTerminal(call sobek.FunctionCall) sobek.Value {
	mi := w.c.mi
	op := "workspace.terminal()"
	mi.mustVU(op)
	tc := coder.TerminalConfig{Command: "cat"}
	timeout := defaultDialTimeout
	mi.parseOptions(op, call.Argument(0), false, fields{
		"width": func(v sobek.Value) error {
			n, err := asInt(v, 1, 1000)
			tc.Width = uint16(n)
			return err
		},
		"height": func(v sobek.Value) error {
			n, err := asInt(v, 1, 1000)
			tc.Height = uint16(n)
			return err
		},
		"timeout": func(v sobek.Value) (err error) { timeout, err = asDuration(v); return err },
	})
	ws := w.get()
	if ws.AgentID() == "" {
		mi.throw(fmt.Errorf("%s: workspace %s has no agent (a stopped workspace has none: start() it first)", op, ws.Name))
	}
	op = fmt.Sprintf("workspace.terminal() of %s", ws.Name)
	meta := map[string]string{"workspace": ws.Name, "agent_id": ws.AgentID()}
	return mi.async(op, func(ctx context.Context) (toJS, error) {
		p, err := w.c.provider(ctx)
		if err != nil {
			return nil, err
		}
		dctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		quiet := w.c.deployment().lab == nil
		if quiet {
			tc.Command = quietTerminalCommand
		}
		term, err := p.Client().OpenTerminal(dctx, ws.AgentID(), tc)
		if err != nil {
			return nil, err
		}
		if quiet {
			stop := context.AfterFunc(dctx, func() { term.Close() })
			err := waitQuiet(term)
			if !stop() || err != nil {
				term.Close()
				return nil, errors.Join(err, context.Cause(dctx))
			}
		}
		s := &terminalSession{mi: mi, term: term, name: ws.Name, meta: meta, ttyEcho: !quiet}
		if err := mi.root.track(s); err != nil {
			term.Close()
			return nil, err
		}
		return func(rt *sobek.Runtime) sobek.Value { return s.object() }, nil
	})
}

// terminalSession is the Go side of a JS web-terminal session.
type terminalSession struct {
	mi   *instance
	term *coder.Terminal
	name string
	meta map[string]string
	once sync.Once
	// ttyEcho: the tty echoes input itself (a lab's terminal); a real
	// Coder agent's runs quietTerminalCommand, with the echo off.
	ttyEcho bool
}

func (s *terminalSession) object() *sobek.Object {
	o := s.mi.vu.Runtime().NewObject()
	set(o, "workspace", s.name)
	method(o, "echo", s.jsEcho)
	method(o, "close", s.jsClose)
	return o
}

func (s *terminalSession) jsEcho(call sobek.FunctionCall) sobek.Value {
	mi := s.mi
	op := "terminal.echo"
	mi.mustVU(op)
	cfg := mi.echoOpts(op, call.Argument(0), false)
	op = "terminal.echo on " + s.name
	e := mi.emitter(mi.vu.Context(), s.meta)
	return mi.async(op, func(ctx context.Context) (toJS, error) {
		rec := e.startStream("terminal", nil)
		res, err := terminalEchoMode(ctx, s.term, cfg, rec, s.ttyEcho)
		rec.finish()
		return echoResult(res, err)
	})
}

func (s *terminalSession) jsClose(sobek.FunctionCall) sobek.Value {
	mi := s.mi
	op := "terminal.close() on " + s.name
	mi.mustVU(op)
	return mi.async(op, func(ctx context.Context) (toJS, error) {
		s.Close()
		return undefinedJS, nil
	})
}

// Close ends the terminal session once.
func (s *terminalSession) Close() error {
	s.once.Do(func() {
		s.term.Close()
		s.mi.root.untrack(s)
	})
	return nil
}

// Leftovers says what the Coder deployments this process used still hold
// of its run, by the ledgers of every provider, and the command that
// removes it: the host prints it when a second signal stops the run before
// cleanup could finish. It is "" when nothing is left (the embedded lab's
// resources end with the process and are not reported). The session token
// is never printed.
func (r *RootModule) Leftovers() string {
	r.mu.Lock()
	var cs []*coderObj
	for _, list := range r.coders {
		cs = append(cs, list...)
	}
	r.mu.Unlock()
	type left struct{ workspaces, users int }
	byURL := map[string]*left{}
	var urls []string
	for _, c := range cs {
		c.mu.Lock()
		p, key, dep := c.prov, c.key, c.dep
		c.mu.Unlock()
		if p == nil || key == "lab=" {
			continue
		}
		l := byURL[dep.url]
		if l == nil {
			l = &left{}
			byURL[dep.url] = l
			urls = append(urls, dep.url)
		}
		for _, e := range p.Ledger().Entries() {
			if e.Kind == workspace.KindWorkspace {
				l.workspaces++
			} else {
				l.users++
			}
		}
	}
	sort.Strings(urls)
	var b strings.Builder
	for _, u := range urls {
		l := byURL[u]
		if l.workspaces+l.users == 0 {
			continue
		}
		fmt.Fprintf(&b, "cdeload: left on %s: %d workspaces and %d users of run %s (named %s%sc*); remove them with:\n"+
			"  %s=%s %s=<an owner's token> cdeload cleanup --run-id %s\n",
			u, l.workspaces, l.users, r.runID, workspace.ScaletestPrefix, r.runID, envCoderURL, u, envCoderToken, r.runID)
	}
	return b.String()
}
