package coder

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/cdeload/cdeload/workspace"
)

// User modes of a Provider.
const (
	// UsersPerWorkspace creates one scaletest user per workspace (like
	// coder exp scaletest create-workspaces).
	UsersPerWorkspace = "per-workspace"
	// UsersMe creates every workspace for the caller (GET /api/v2/users/me).
	UsersMe = "me"
)

// DefaultCleanupConcurrency is Config.CleanupConcurrency when not set.
const DefaultCleanupConcurrency = 16

// Config configures a Provider.
type Config struct {
	// URL is the Coder deployment URL (required).
	URL string
	// Token is the session token of an owner (required). It never appears in
	// errors.
	Token string
	// Client configures the HTTP client (rate-limit bypass, retries…).
	Client ClientOptions
	// Organization is the organization name or ID; "" selects the default
	// organization.
	Organization string
	// RunID names the run's resources scaletest-<runid>-<n>; "" picks a
	// random one.
	RunID string
	// Users is UsersPerWorkspace (default) or UsersMe.
	Users string
	// Retries is how many times a failed start build is retried (default 0).
	Retries int
	// PollInterval is the interval between status polls (default 500ms).
	PollInterval time.Duration
	// BuildTimeout bounds waiting for one build job (default 10m).
	BuildTimeout time.Duration
	// AgentTimeout bounds waiting for agents after the build (default 5m).
	AgentTimeout time.Duration
	// DeleteTimeout bounds one delete, including cancelling an active
	// build (default 10m).
	DeleteTimeout time.Duration
	// IgnoreLifecycle makes WaitReady wait only for agent status
	// "connected", not for lifecycle_state "ready".
	IgnoreLifecycle bool
	// NoWaitForAgents makes WaitReady return when the build succeeded.
	NoWaitForAgents bool
	// CleanupConcurrency bounds the removals Cleanup requests at once
	// (default DefaultCleanupConcurrency); a removal holds its slot until
	// its delete is under way, not while it waits for the workspace to go.
	CleanupConcurrency int
	// Observer receives phase timings and failures (default: none).
	Observer workspace.Observer
	// AddressFunc maps an agent ID to its tailnet address (default
	// AgentAddress, Coder's convention).
	AddressFunc func(agentID string) string
}

func (c *Config) validate() error {
	if c.URL == "" {
		return errors.New("coder provider: URL is required")
	}
	if c.Token == "" {
		return errors.New("coder provider: session token is required")
	}
	switch c.Users {
	case "":
		c.Users = UsersPerWorkspace
	case UsersPerWorkspace, UsersMe:
	default:
		return fmt.Errorf("coder provider: users %q: allowed values are %q and %q", c.Users, UsersPerWorkspace, UsersMe)
	}
	if c.Retries < 0 {
		return fmt.Errorf("coder provider: retries %d: must be ≥ 0", c.Retries)
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"poll interval", &c.PollInterval, 500 * time.Millisecond},
		{"build timeout", &c.BuildTimeout, 10 * time.Minute},
		{"agent timeout", &c.AgentTimeout, 5 * time.Minute},
		{"delete timeout", &c.DeleteTimeout, 10 * time.Minute},
	} {
		if *d.v < 0 {
			return fmt.Errorf("coder provider: %s %v: must be ≥ 0", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.CleanupConcurrency <= 0 {
		c.CleanupConcurrency = DefaultCleanupConcurrency
	}
	if c.Observer == nil {
		c.Observer = workspace.NopObserver{}
	}
	if c.AddressFunc == nil {
		c.AddressFunc = AgentAddress
	}
	return nil
}

// Provider is a workspace.Provider for Coder. Every user and workspace it
// creates is recorded in its ledger before the create request is sent, so
// Cleanup finds even resources whose creation was interrupted.
type Provider struct {
	cfg    Config
	client *Client
	namer  *workspace.Namer
	ledger workspace.Ledger

	mu        sync.Mutex
	org       *Organization
	me        *User
	templates map[string]*templateInfo
}

type templateInfo struct {
	tmpl   Template
	params []TemplateVersionParameter
}

var _ workspace.Provider = (*Provider)(nil)

// NewProvider returns a Provider. It does not touch the network.
func NewProvider(cfg Config) (*Provider, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	namer, err := workspace.NewNamer(cfg.RunID)
	if err != nil {
		return nil, fmt.Errorf("coder provider: %w", err)
	}
	client, err := NewClient(cfg.URL, cfg.Token, cfg.Client)
	if err != nil {
		return nil, fmt.Errorf("coder provider: %w", err)
	}
	return &Provider{cfg: cfg, client: client, namer: namer, templates: map[string]*templateInfo{}}, nil
}

// Client returns the provider's API client.
func (p *Provider) Client() *Client { return p.client }

// RunID returns the run identifier used in names.
func (p *Provider) RunID() string { return p.namer.RunID() }

// Ledger returns the provider's cleanup ledger.
func (p *Provider) Ledger() *workspace.Ledger { return &p.ledger }

// Close releases the client's idle connections.
func (p *Provider) Close() { p.client.Close() }

func (p *Provider) organization(ctx context.Context) (Organization, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.org != nil {
		return *p.org, nil
	}
	var org Organization
	if p.cfg.Organization != "" {
		o, err := p.client.Organization(ctx, p.cfg.Organization)
		if err != nil {
			return org, fmt.Errorf("organization %q: %w", p.cfg.Organization, err)
		}
		org = o
	} else {
		orgs, err := p.client.Organizations(ctx)
		if err != nil {
			return org, fmt.Errorf("list organizations: %w", err)
		}
		found := false
		for _, o := range orgs {
			if o.IsDefault {
				org, found = o, true
				break
			}
		}
		if !found {
			return org, errors.New("no default organization")
		}
	}
	p.org = &org
	return org, nil
}

func (p *Provider) caller(ctx context.Context) (User, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.me != nil {
		return *p.me, nil
	}
	u, err := p.client.Me(ctx)
	if err != nil {
		return u, fmt.Errorf("current user: %w", err)
	}
	p.me = &u
	return u, nil
}

func (p *Provider) template(ctx context.Context, orgID, name string) (*templateInfo, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t, ok := p.templates[name]; ok {
		return t, nil
	}
	tmpl, err := p.client.TemplateByName(ctx, orgID, name)
	if err != nil {
		return nil, fmt.Errorf("template %q: %w", name, err)
	}
	params, err := p.client.RichParameters(ctx, tmpl.ActiveVersionID)
	if err != nil {
		return nil, fmt.Errorf("template %q: parameters of version %s: %w", name, tmpl.ActiveVersionID, err)
	}
	t := &templateInfo{tmpl: tmpl, params: params}
	p.templates[name] = t
	return t, nil
}

// Create implements workspace.Provider: it resolves the template and its
// parameters, creates the owner (in UsersPerWorkspace mode) and requests the
// workspace.
func (p *Provider) Create(ctx context.Context, req workspace.CreateRequest) (workspace.Workspace, error) {
	ws, err := p.create(ctx, req)
	if err != nil {
		p.cfg.Observer.OnFailure(workspace.OpCreate, err)
	}
	return ws, err
}

func (p *Provider) create(ctx context.Context, req workspace.CreateRequest) (workspace.Workspace, error) {
	var ws workspace.Workspace
	if req.Template == "" {
		return ws, errors.New("create workspace: template is required")
	}
	org, err := retryRateLimited(ctx, p.client, p.organization)
	if err != nil {
		return ws, fmt.Errorf("create workspace: %w", err)
	}
	t, err := retryRateLimited(ctx, p.client, func(ctx context.Context) (*templateInfo, error) {
		return p.template(ctx, org.ID, req.Template)
	})
	if err != nil {
		return ws, fmt.Errorf("create workspace: %w", err)
	}
	values, err := ResolveParameters(req.Template, t.params, req.Parameters)
	if err != nil {
		return ws, fmt.Errorf("create workspace: %w", err)
	}
	n := p.namer.Next()
	name := req.Name
	if name == "" {
		name = p.namer.Name(n)
	}
	var owner User
	if p.cfg.Users == UsersMe {
		if owner, err = retryRateLimited(ctx, p.client, p.caller); err != nil {
			return ws, fmt.Errorf("create workspace %s: %w", name, err)
		}
	} else {
		username := p.namer.Name(n)
		p.ledger.Record(workspace.Entry{Kind: workspace.KindUser, Name: username})
		ureq := CreateUserRequest{
			Email:           p.namer.Email(n),
			Username:        username,
			Name:            "Scaletest " + username,
			Password:        randomPassword(),
			LoginType:       "password",
			UserStatus:      "active",
			OrganizationIDs: []string{org.ID},
		}
		owner, err = createOrFind(ctx, p.client,
			func(ctx context.Context) (User, error) { return p.client.CreateUser(ctx, ureq) },
			func(ctx context.Context) (User, error) { return p.client.User(ctx, username) })
		if err != nil {
			return ws, fmt.Errorf("create workspace %s: create user %s: %w", name, username, err)
		}
		p.ledger.Record(workspace.Entry{Kind: workspace.KindUser, Name: username, ID: owner.ID})
	}
	p.ledger.Record(workspace.Entry{Kind: workspace.KindWorkspace, Name: name, Owner: owner.Username})
	requested := time.Now()
	wreq := CreateWorkspaceRequest{TemplateID: t.tmpl.ID, Name: name, RichParameterValues: values}
	w, err := createOrFind(ctx, p.client,
		func(ctx context.Context) (Workspace, error) {
			return p.client.CreateWorkspace(ctx, org.ID, owner.ID, wreq)
		},
		func(ctx context.Context) (Workspace, error) {
			return p.client.WorkspaceByOwnerAndName(ctx, owner.Username, name)
		})
	if err != nil {
		return ws, fmt.Errorf("create workspace %s: %w", name, err)
	}
	p.ledger.Record(workspace.Entry{Kind: workspace.KindWorkspace, Name: name, ID: w.ID, Owner: owner.Username})
	return workspace.Workspace{
		ID:          w.ID,
		Name:        w.Name,
		Owner:       w.OwnerName,
		OwnerID:     w.OwnerID,
		Template:    req.Template,
		BuildID:     w.LatestBuild.ID,
		RequestedAt: requested,
	}, nil
}

// WaitReady implements workspace.Provider: it waits for the latest build
// (retrying failed builds up to Config.Retries times) and then for every
// agent to be connected and ready.
func (p *Provider) WaitReady(ctx context.Context, ws workspace.Workspace) (workspace.Workspace, error) {
	return p.waitReady(ctx, ws, workspace.OpCreate)
}

func (p *Provider) waitReady(ctx context.Context, ws workspace.Workspace, op string) (workspace.Workspace, error) {
	out, err := p.doWaitReady(ctx, ws)
	if err != nil {
		p.cfg.Observer.OnFailure(op, err)
		return out, err
	}
	return out, nil
}

func (p *Provider) doWaitReady(ctx context.Context, ws workspace.Workspace) (workspace.Workspace, error) {
	start := ws.RequestedAt
	if start.IsZero() {
		start = time.Now()
	}
	if ws.BuildID == "" {
		w, err := p.client.Workspace(ctx, ws.ID)
		if err != nil {
			return ws, fmt.Errorf("workspace %s: %w", ws.Name, err)
		}
		ws.BuildID = w.LatestBuild.ID
	}
	var build WorkspaceBuild
	for attempt := 0; ; attempt++ {
		b, err := p.waitBuild(ctx, ws.Name, ws.BuildID, p.cfg.BuildTimeout)
		if err != nil {
			return ws, err
		}
		if b.Job.Status == JobSucceeded {
			build = b
			break
		}
		failure := fmt.Errorf("workspace %s: %w", ws.Name, &BuildError{Number: b.BuildNumber, Status: b.Job.Status, Message: b.Job.Error})
		if b.Job.Status != JobFailed || attempt >= p.cfg.Retries {
			if attempt > 0 {
				failure = fmt.Errorf("%w (after %d retries)", failure, attempt)
			}
			return ws, failure
		}
		nb, err := p.client.CreateWorkspaceBuild(ctx, ws.ID, CreateWorkspaceBuildRequest{
			Transition:        TransitionStart,
			TemplateVersionID: b.TemplateVersionID,
		})
		if err != nil {
			return ws, fmt.Errorf("workspace %s: retry %d of failed build #%d: %w", ws.Name, attempt+1, b.BuildNumber, err)
		}
		ws.BuildID = nb.ID
	}
	succeededSeen := time.Now()
	ws.Timings.Build = jobDuration(build.Job)
	p.cfg.Observer.OnPhase(workspace.PhaseBuild, ws.Timings.Build, ws)

	if !p.cfg.NoWaitForAgents {
		b, err := p.waitAgents(ctx, ws.Name, build)
		if err != nil {
			return ws, err
		}
		build = b
		ws.Timings.AgentConnect = p.agentConnectDuration(build, succeededSeen)
		ws.Agents = nil
	}
	for _, a := range build.Agents() {
		ws.Agents = append(ws.Agents, workspace.Agent{ID: a.ID, Name: a.Name})
	}
	if len(ws.Agents) > 0 {
		ws.Address = p.cfg.AddressFunc(ws.Agents[0].ID)
	}
	ws.Status = build.Status
	if !p.cfg.NoWaitForAgents {
		p.cfg.Observer.OnPhase(workspace.PhaseAgentConnect, ws.Timings.AgentConnect, ws)
	}
	ws.Timings.Ready = time.Since(start)
	p.cfg.Observer.OnPhase(workspace.PhaseReady, ws.Timings.Ready, ws)
	return ws, nil
}

// jobDuration is job queued → job completed on the server's clock.
func jobDuration(j ProvisionerJob) time.Duration {
	if j.CompletedAt == nil || j.CreatedAt.IsZero() {
		return 0
	}
	return max(0, j.CompletedAt.Sub(j.CreatedAt))
}

// agentConnectDuration is job completed → last agent connected (or ready),
// on the server's clock when it reports both, else as observed.
func (p *Provider) agentConnectDuration(b WorkspaceBuild, succeededSeen time.Time) time.Duration {
	var last time.Time
	for _, a := range b.Agents() {
		t := a.FirstConnectedAt
		if !p.cfg.IgnoreLifecycle && a.ReadyAt != nil {
			t = a.ReadyAt
		}
		if t == nil {
			return max(0, time.Since(succeededSeen))
		}
		if t.After(last) {
			last = *t
		}
	}
	if last.IsZero() || b.Job.CompletedAt == nil {
		return max(0, time.Since(succeededSeen))
	}
	return max(0, last.Sub(*b.Job.CompletedAt))
}

// waitBuild polls a build until its job is no longer active.
func (p *Provider) waitBuild(ctx context.Context, wsName, buildID string, timeout time.Duration) (WorkspaceBuild, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last WorkspaceBuild
	var fails int
	for {
		b, err := p.client.WorkspaceBuild(ctx, buildID)
		if err == nil {
			last, fails = b, 0
			if !JobActive(b.Job.Status) {
				return b, nil
			}
		}
		if err != nil && ctx.Err() == nil {
			if fails++; !transient(err) || fails > maxPollFailures {
				return last, fmt.Errorf("workspace %s: build %s: %w", wsName, buildID, err)
			}
		}
		if werr := sleepCtx(ctx, p.cfg.PollInterval); werr != nil || ctx.Err() != nil {
			return last, p.timeoutErr(ctx, fmt.Sprintf("workspace %s: build #%d not finished after %v (job status %s)",
				wsName, last.BuildNumber, timeout, orNone(last.Job.Status)))
		}
	}
}

// timeoutErr wraps the context's error with msg (DeadlineExceeded for our
// own timeout, Canceled when the caller gave up).
func (p *Provider) timeoutErr(ctx context.Context, msg string) error {
	err := context.Cause(ctx)
	if err == nil {
		err = context.DeadlineExceeded
	}
	return fmt.Errorf("%s: %w", msg, err)
}

// waitAgents polls the build until every agent is connected (and ready
// unless IgnoreLifecycle).
func (p *Provider) waitAgents(ctx context.Context, wsName string, b WorkspaceBuild) (WorkspaceBuild, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.AgentTimeout)
	defer cancel()
	var fails int
	for {
		var pending *WorkspaceAgent
		for _, a := range b.Agents() {
			if err := agentGone(a); err != nil {
				return b, fmt.Errorf("workspace %s: %w", wsName, err)
			}
			if a.Status != AgentConnected || (!p.cfg.IgnoreLifecycle && a.LifecycleState != LifecycleReady) {
				pending = &a
				break
			}
		}
		if pending == nil {
			return b, nil
		}
		if err := sleepCtx(ctx, p.cfg.PollInterval); err != nil {
			what := "connected"
			state := "status " + pending.Status
			if pending.Status == AgentConnected {
				what, state = "ready", "lifecycle "+pending.LifecycleState
			}
			return b, p.timeoutErr(ctx, fmt.Sprintf("workspace %s: agent %q not %s after %v (%s)",
				wsName, pending.Name, what, p.cfg.AgentTimeout, state))
		}
		nb, err := p.client.WorkspaceBuild(ctx, b.ID)
		if err != nil {
			if ctx.Err() != nil {
				continue // reported as a timeout on the next round
			}
			if fails++; transient(err) && fails <= maxPollFailures {
				continue
			}
			return b, fmt.Errorf("workspace %s: build %s: %w", wsName, b.ID, err)
		}
		b, fails = nb, 0
	}
}

// Stop implements workspace.Provider.
func (p *Provider) Stop(ctx context.Context, ws workspace.Workspace) error {
	start := time.Now()
	if _, err := p.transition(ctx, ws, TransitionStop); err != nil {
		p.cfg.Observer.OnFailure(workspace.OpStop, err)
		return err
	}
	p.cfg.Observer.OnPhase(workspace.PhaseStop, time.Since(start), ws)
	return nil
}

// Start implements workspace.Provider: it starts the workspace and waits
// until it is ready; the ready phase is measured from the start request.
func (p *Provider) Start(ctx context.Context, ws workspace.Workspace) (workspace.Workspace, error) {
	ws.RequestedAt = time.Now()
	ws.Timings = workspace.Timings{}
	b, err := p.createBuild(ctx, ws, TransitionStart)
	if err != nil {
		p.cfg.Observer.OnFailure(workspace.OpStart, err)
		return ws, err
	}
	ws.BuildID = b.ID
	return p.waitReady(ctx, ws, workspace.OpStart)
}

// transition starts a build of the given transition and waits for it.
func (p *Provider) transition(ctx context.Context, ws workspace.Workspace, transition string) (WorkspaceBuild, error) {
	b, err := p.createBuild(ctx, ws, transition)
	if err != nil {
		return b, err
	}
	b, err = p.waitBuild(ctx, ws.Name, b.ID, p.cfg.BuildTimeout)
	if err != nil {
		return b, err
	}
	if b.Job.Status != JobSucceeded {
		return b, fmt.Errorf("workspace %s: %w", ws.Name, &BuildError{Transition: transition, Number: b.BuildNumber, Status: b.Job.Status, Message: b.Job.Error})
	}
	return b, nil
}

// createBuild requests a build; if another build is active (409) it is
// cancelled first.
func (p *Provider) createBuild(ctx context.Context, ws workspace.Workspace, transition string) (WorkspaceBuild, error) {
	for attempt := 0; ; attempt++ {
		b, err := p.client.CreateWorkspaceBuild(ctx, ws.ID, CreateWorkspaceBuildRequest{Transition: transition})
		if err == nil {
			return b, nil
		}
		if StatusCode(err) != http.StatusConflict || attempt >= 2 {
			return b, fmt.Errorf("workspace %s: %s: %w", ws.Name, transition, err)
		}
		if err := p.cancelActive(ctx, ws.Name, ws.ID); err != nil {
			return b, err
		}
	}
}

// cancelActive cancels the workspace's latest build if it is active and
// waits until its job is no longer active.
func (p *Provider) cancelActive(ctx context.Context, name, id string) error {
	w, err := p.client.Workspace(ctx, id)
	if err != nil {
		return fmt.Errorf("workspace %s: %w", name, err)
	}
	lb := w.LatestBuild
	if !JobActive(lb.Job.Status) {
		return nil
	}
	if lb.Job.Status != JobCanceling {
		if err := p.client.CancelWorkspaceBuild(ctx, lb.ID); err != nil && StatusCode(err) != http.StatusBadRequest {
			return fmt.Errorf("workspace %s: cancel build #%d: %w", name, lb.BuildNumber, err)
		}
	}
	if _, err := p.waitBuild(ctx, name, lb.ID, p.cfg.BuildTimeout); err != nil {
		return fmt.Errorf("cancel: %w", err)
	}
	return nil
}

// Delete implements workspace.Provider.
func (p *Provider) Delete(ctx context.Context, ws workspace.Workspace) error {
	start := time.Now()
	err := p.removeWorkspace(ctx, workspace.Entry{Kind: workspace.KindWorkspace, Name: ws.Name, ID: ws.ID, Owner: ws.Owner}, nil)
	if err != nil {
		p.cfg.Observer.OnFailure(workspace.OpDelete, err)
		return err
	}
	ws.Timings.Delete = time.Since(start)
	p.ledger.Forget(workspace.KindWorkspace, ws.Name)
	p.cfg.Observer.OnPhase(workspace.PhaseDelete, ws.Timings.Delete, ws)
	return nil
}

// removeWorkspace deletes a workspace and waits until it is gone; a
// workspace that does not exist is success. An attempt that failed with a
// server error or without an answer is retried with backoff: each attempt
// looks at the workspace first, so a delete that was started is not
// started again.
// With lim (cleanup), a slot is held while the delete is being requested.
func (p *Provider) removeWorkspace(ctx context.Context, e workspace.Entry, lim *workspace.Limiter) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.DeleteTimeout)
	defer cancel()
	for retry := 0; ; retry++ {
		err := p.removeWorkspaceOnce(ctx, e, lim)
		if err == nil || !transient(err) || retry >= maxDeleteRetries || ctx.Err() != nil {
			return err
		}
		if werr := sleepCtx(ctx, p.client.retryWait(retry+1, err)); werr != nil {
			return err
		}
	}
}

func (p *Provider) removeWorkspaceOnce(ctx context.Context, e workspace.Entry, lim *workspace.Limiter) error {
	if lim != nil {
		if err := lim.Acquire(ctx); err != nil {
			return fmt.Errorf("workspace %s: waiting for a cleanup slot: %w", e.Name, err)
		}
		held := true
		release := func() {
			if held {
				held = false
				lim.Release()
			}
		}
		defer release()
		ctx = context.WithValue(ctx, releaseKey{}, release)
	}
	id := e.ID
	if id == "" {
		owner := e.Owner
		if owner == "" {
			owner = "me"
		}
		w, err := p.client.WorkspaceByOwnerAndName(ctx, owner, e.Name)
		if IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("workspace %s: look up: %w", e.Name, err)
		}
		id = w.ID
	}
	for attempt := 0; ; attempt++ {
		w, err := p.client.Workspace(ctx, id)
		if IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("workspace %s: %w", e.Name, err)
		}
		lb := w.LatestBuild
		var del WorkspaceBuild
		if lb.Transition == TransitionDelete && (JobActive(lb.Job.Status) || lb.Job.Status == JobSucceeded) {
			del = lb // a delete is already under way
		} else {
			if JobActive(lb.Job.Status) {
				if err := p.cancelActive(ctx, e.Name, id); err != nil {
					return err
				}
			}
			del, err = p.client.CreateWorkspaceBuild(ctx, id, CreateWorkspaceBuildRequest{Transition: TransitionDelete})
			if IsNotFound(err) {
				return nil
			}
			if StatusCode(err) == http.StatusConflict && attempt < 3 {
				continue // a build started meanwhile: cancel it and retry
			}
			if err != nil {
				return fmt.Errorf("workspace %s: delete: %w", e.Name, err)
			}
		}
		if release, ok := ctx.Value(releaseKey{}).(func()); ok {
			release() // the delete is under way: waiting needs no slot
		}
		b, err := p.waitBuild(ctx, e.Name, del.ID, p.cfg.DeleteTimeout)
		if IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if b.Job.Status != JobSucceeded {
			if attempt < 3 && b.Job.Status == JobCanceled {
				continue
			}
			return fmt.Errorf("workspace %s: %w", e.Name, &BuildError{Transition: TransitionDelete, Number: b.BuildNumber, Status: b.Job.Status, Message: b.Job.Error})
		}
		return p.waitGone(ctx, e.Name, id)
	}
}

func (p *Provider) waitGone(ctx context.Context, name, id string) error {
	var fails int
	for {
		_, err := p.client.Workspace(ctx, id)
		if IsNotFound(err) {
			return nil
		}
		if err != nil && ctx.Err() == nil {
			if fails++; !transient(err) || fails > maxPollFailures {
				return fmt.Errorf("workspace %s: %w", name, err)
			}
		} else {
			fails = 0
		}
		if err := sleepCtx(ctx, p.cfg.PollInterval); err != nil {
			return p.timeoutErr(ctx, fmt.Sprintf("workspace %s: still present after its delete build", name))
		}
	}
}

func (p *Provider) removeUser(ctx context.Context, e workspace.Entry) error {
	ref := e.ID
	if ref == "" {
		ref = e.Name
	}
	err := p.client.DeleteUser(ctx, ref)
	if StatusCode(err) == http.StatusExpectationFailed {
		// The user still owns workspaces: a create cut off by an abort
		// can land on the server after the workspace pass looked for it.
		// Remove what the user owns, then try once more.
		if werr := p.removeOwnedWorkspaces(ctx, e.Name); werr != nil {
			return fmt.Errorf("user %s: %w", e.Name, werr)
		}
		err = p.client.DeleteUser(ctx, ref)
	}
	if err == nil || IsNotFound(err) {
		return nil
	}
	return fmt.Errorf("user %s: %w", e.Name, err)
}

// removeOwnedWorkspaces removes every workspace owner owns.
func (p *Provider) removeOwnedWorkspaces(ctx context.Context, owner string) error {
	page, err := p.client.Workspaces(ctx, "owner:"+owner, 0, 100)
	if err != nil {
		return fmt.Errorf("list workspaces of %s: %w", owner, err)
	}
	var errs []error
	for _, w := range page.Workspaces {
		errs = append(errs, p.removeWorkspace(ctx, workspace.Entry{Kind: workspace.KindWorkspace, Name: w.Name, ID: w.ID, Owner: w.OwnerName}, nil))
	}
	return errors.Join(errs...)
}

type remover struct {
	p   *Provider
	lim *workspace.Limiter
}

func (r remover) RemoveWorkspace(ctx context.Context, e workspace.Entry) error {
	return r.p.removeWorkspace(ctx, e, r.lim)
}

func (r remover) RemoveUser(ctx context.Context, e workspace.Entry) error {
	if err := r.lim.Acquire(ctx); err != nil {
		return fmt.Errorf("user %s: waiting for a cleanup slot: %w", e.Name, err)
	}
	defer r.lim.Release()
	return r.p.removeUser(ctx, e)
}

// releaseKey carries, in a removal's context, the function that frees its
// cleanup slot once the delete is under way.
type releaseKey struct{}

// cleanupGoroutines bounds the removals a ledger runs at once; the
// Limiter bounds the requests among them.
const cleanupGoroutines = 1024

// Cleanup implements workspace.Provider: it removes every recorded workspace
// (cancelling active builds first), then every recorded user, requesting at
// most CleanupConcurrency removals at once. Resources already gone count as
// removed, so Cleanup is idempotent and may run with a fresh context after
// the run's context was cancelled.
func (p *Provider) Cleanup(ctx context.Context) error {
	return p.CleanupShared(ctx, workspace.NewLimiter(p.cfg.CleanupConcurrency))
}

// CleanupShared is Cleanup with removals bounded by lim, which other
// providers of the deployment may share so that cleaning up every virtual
// user's provider at once stays within one bound.
// Rate-limited requests are retried until ctx ends: a cleanup must finish.
func (p *Provider) CleanupShared(ctx context.Context, lim *workspace.Limiter) error {
	return p.ledger.Cleanup(WithPatience(ctx), remover{p, lim}, cleanupGoroutines, func(_ workspace.Entry, err error) {
		p.cfg.Observer.OnFailure(workspace.OpCleanup, err)
	})
}

// Sweep records every workspace and user whose name starts with prefix
// (for example "scaletest-" or "scaletest-<runid>-") into the ledger, then
// runs Cleanup. It is the equivalent of Coder's scaletest cleanup for
// resources left by a process that died.
func (p *Provider) Sweep(ctx context.Context, prefix string) error {
	found, err := p.FindScaletest(ctx, prefix, nil)
	if err != nil {
		return err
	}
	for _, e := range found {
		p.ledger.Record(e)
	}
	return p.Cleanup(ctx)
}

// FindScaletest lists the workspaces and users on the deployment whose
// name starts with prefix (which must start with "scaletest-") and, if
// match is not nil, that match accepts; workspaces first.
func (p *Provider) FindScaletest(ctx context.Context, prefix string, match func(name string) bool) ([]workspace.Entry, error) {
	if !strings.HasPrefix(prefix, workspace.ScaletestPrefix) {
		return nil, fmt.Errorf("sweep: prefix %q must start with %q", prefix, workspace.ScaletestPrefix)
	}
	ok := func(name string) bool { return strings.HasPrefix(name, prefix) && (match == nil || match(name)) }
	wss, err := p.listWorkspaces(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("sweep: %w", err)
	}
	var out []workspace.Entry
	for _, w := range wss {
		if ok(w.Name) {
			out = append(out, workspace.Entry{Kind: workspace.KindWorkspace, Name: w.Name, ID: w.ID, Owner: w.OwnerName})
		}
	}
	for offset := 0; ; {
		page, err := p.client.Users(ctx, prefix, offset, 100)
		if err != nil {
			return nil, fmt.Errorf("sweep: list users: %w", err)
		}
		for _, u := range page.Users {
			if ok(u.Username) {
				out = append(out, workspace.Entry{Kind: workspace.KindUser, Name: u.Username, ID: u.ID})
			}
		}
		offset += len(page.Users)
		if len(page.Users) == 0 || offset >= page.Count {
			break
		}
	}
	return out, nil
}

func (p *Provider) listWorkspaces(ctx context.Context, prefix string) ([]Workspace, error) {
	var out []Workspace
	for offset := 0; ; {
		page, err := p.client.Workspaces(ctx, "name:"+prefix, offset, 100)
		if err != nil {
			return nil, fmt.Errorf("list workspaces: %w", err)
		}
		for _, w := range page.Workspaces {
			if strings.HasPrefix(w.Name, prefix) {
				out = append(out, w)
			}
		}
		offset += len(page.Workspaces)
		if len(page.Workspaces) == 0 || offset >= page.Count {
			return out, nil
		}
	}
}

// List implements workspace.Provider: the run's workspaces that still exist.
func (p *Provider) List(ctx context.Context) ([]workspace.Workspace, error) {
	wss, err := p.listWorkspaces(ctx, p.namer.Prefix())
	if err != nil {
		return nil, err
	}
	out := make([]workspace.Workspace, 0, len(wss))
	for _, w := range wss {
		out = append(out, p.fromAPI(w))
	}
	return out, nil
}

// fromAPI describes a workspace as the API lists it: its latest build's
// status and agents, and the first agent's address.
func (p *Provider) fromAPI(w Workspace) workspace.Workspace {
	ws := workspace.Workspace{ID: w.ID, Name: w.Name, Owner: w.OwnerName, OwnerID: w.OwnerID, Template: w.TemplateName,
		BuildID: w.LatestBuild.ID, Status: w.LatestBuild.Status}
	for _, a := range w.LatestBuild.Agents() {
		ws.Agents = append(ws.Agents, workspace.Agent{ID: a.ID, Name: a.Name})
	}
	if len(ws.Agents) > 0 {
		ws.Address = p.cfg.AddressFunc(ws.Agents[0].ID)
	}
	return ws
}

// findPageSize is how many workspaces Find asks for per request.
const findPageSize = 100

// Find returns the workspaces that Coder's search query matches (the q of
// GET /api/v2/workspaces, e.g. "owner:me template:docker name:dev") and
// that keep accepts (nil: all), at most limit of them (0: all), in the
// order coderd lists them. They are not recorded in the ledger: the
// provider did not create them, so Cleanup never removes them.
func (p *Provider) Find(ctx context.Context, query string, limit int, keep func(workspace.Workspace) bool) ([]workspace.Workspace, error) {
	var out []workspace.Workspace
	for offset := 0; ; {
		page, err := p.client.Workspaces(ctx, query, offset, findPageSize)
		if err != nil {
			return nil, fmt.Errorf("list workspaces (q=%q): %w", query, err)
		}
		for _, w := range page.Workspaces {
			ws := p.fromAPI(w)
			if keep != nil && !keep(ws) {
				continue
			}
			out = append(out, ws)
			if limit > 0 && len(out) == limit {
				return out, nil
			}
		}
		offset += len(page.Workspaces)
		if len(page.Workspaces) == 0 || offset >= page.Count {
			return out, nil
		}
	}
}

// AgentAddress returns Coder's tailnet address of an agent: the prefix
// fd7a:115c:a1e0::/48 followed by the last 10 bytes of the agent's UUID.
// It returns "" if agentID is not a UUID.
func AgentAddress(agentID string) string {
	u, ok := parseUUID(agentID)
	if !ok {
		return ""
	}
	var a [16]byte
	copy(a[:], []byte{0xfd, 0x7a, 0x11, 0x5c, 0xa1, 0xe0})
	copy(a[6:], u[6:])
	return netip.AddrFrom16(a).String()
}

func parseUUID(s string) ([16]byte, bool) {
	var u [16]byte
	h := strings.ReplaceAll(s, "-", "")
	if len(h) != 32 || len(s) != 36 {
		return u, false
	}
	for i := 0; i < 16; i++ {
		hi, ok1 := unhex(h[2*i])
		lo, ok2 := unhex(h[2*i+1])
		if !ok1 || !ok2 {
			return u, false
		}
		u[i] = hi<<4 | lo
	}
	return u, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func randomPassword() string {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	var b [20]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:])
}

// Retry bounds of the provider's own retries, on top of the client's.
const (
	// maxPollFailures is how many failed status polls in a row a wait
	// tolerates when each failed for a transient reason.
	maxPollFailures = 3
	// maxCreateRetries bounds re-sending a create after a transient error.
	maxCreateRetries = 4
	// maxDeleteRetries bounds re-trying a workspace removal after a
	// transient error.
	maxDeleteRetries = 5
)

// transient reports whether err may go away by itself: a 5xx answer, no
// answer at all, or rate limiting that outlasted the client's retries.
func transient(err error) bool {
	var na *NoAnswerError
	s := StatusCode(err)
	return s >= 500 || s == http.StatusTooManyRequests || errors.As(err, &na)
}

// createOrFind sends a create request. A 429 was not processed: it is sent
// again. After another transient failure the request may still have been
// processed, so the resource is looked up by name before the create is
// sent again: nothing is created twice, nothing created is lost. A 409
// after such a failure also means it exists.
func createOrFind[T any](ctx context.Context, c *Client, create, find func(context.Context) (T, error)) (T, error) {
	for retry := 0; ; retry++ {
		v, err := create(ctx)
		if err == nil {
			return v, nil
		}
		if !(transient(err) || retry > 0 && StatusCode(err) == http.StatusConflict) || ctx.Err() != nil {
			return v, err
		}
		if StatusCode(err) != http.StatusTooManyRequests {
			found, ferr := find(ctx)
			if ferr == nil {
				return found, nil
			}
			if !IsNotFound(ferr) && !transient(ferr) {
				return v, fmt.Errorf("%w (then looking it up: %v)", err, ferr)
			}
		}
		if retry >= maxCreateRetries {
			return v, fmt.Errorf("%w (after %d retries)", err, retry)
		}
		if werr := sleepCtx(ctx, c.retryWait(retry+1, err)); werr != nil {
			return v, err
		}
	}
}

// retryRateLimited calls get until it succeeds, fails for another reason
// than rate limiting (the client already retried the rest), or was rate
// limited maxCreateRetries+1 times, waiting as the server asks between.
func retryRateLimited[T any](ctx context.Context, c *Client, get func(context.Context) (T, error)) (T, error) {
	for retry := 0; ; retry++ {
		v, err := get(ctx)
		if err == nil || StatusCode(err) != http.StatusTooManyRequests || retry >= maxCreateRetries || ctx.Err() != nil {
			return v, err
		}
		if werr := sleepCtx(ctx, c.retryWait(retry+1, err)); werr != nil {
			return v, err
		}
	}
}

// agentGone returns why an agent will not become ready by waiting: it
// connected and then disconnected, or its lifecycle failed or shut down.
func agentGone(a WorkspaceAgent) error {
	switch a.LifecycleState {
	case LifecycleStartError, LifecycleStartTimeout, LifecycleShuttingDown, LifecycleShutdownError, LifecycleShutdownTimeout, LifecycleOff:
		return &AgentError{Agent: a.Name, State: "lifecycle " + a.LifecycleState}
	}
	if a.Status == AgentDisconnected && a.FirstConnectedAt != nil {
		return &AgentError{Agent: a.Name, State: "disconnected after it had connected"}
	}
	return nil
}

// AgentError ends a wait for an agent that will not become ready: it
// disconnected after connecting, or its lifecycle failed or shut down.
type AgentError struct {
	// Agent is the agent's name.
	Agent string
	// State says what happened ("lifecycle start_error", "disconnected …").
	State string
}

// Error implements error.
func (e *AgentError) Error() string { return fmt.Sprintf("agent %q %s", e.Agent, e.State) }

// BuildError is a build whose job ended without success.
type BuildError struct {
	// Transition is "stop" or "delete"; "" for the start build of a create.
	Transition string
	// Number is the build number.
	Number int32
	// Status is the job status (failed, canceled).
	Status string
	// Message is the job's error.
	Message string
}

// Error implements error.
func (e *BuildError) Error() string {
	t := ""
	if e.Transition != "" {
		t = e.Transition + " "
	}
	return fmt.Sprintf("%sbuild #%d %s: %s", t, e.Number, e.Status, orNone(e.Message))
}

// FailureReason classifies why a lifecycle operation failed, for the
// reason tag of workspace_failed: build_failed, build_canceled, agent,
// no_answer, rate_limited, server_error, api_error, timeout, canceled, or
// "" when unknown.
func FailureReason(err error) string {
	var (
		be *BuildError
		ae *AgentError
		na *NoAnswerError
	)
	switch {
	case err == nil:
		return ""
	case errors.As(err, &be):
		if be.Status == JobCanceled {
			return "build_canceled"
		}
		return "build_failed"
	case errors.As(err, &ae):
		return "agent"
	case errors.As(err, &na):
		return "no_answer"
	case StatusCode(err) == http.StatusTooManyRequests:
		return "rate_limited"
	case StatusCode(err) >= 500:
		return "server_error"
	case StatusCode(err) != 0:
		return "api_error"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return ""
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
