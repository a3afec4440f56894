package cdeload

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/grafana/sobek"

	"github.com/cdeload/cdeload/lab"
	"github.com/cdeload/cdeload/lab/workspaces"
)

// Lab start-up and request bounds.
const (
	labStartTimeout     = 2 * time.Minute
	labRequestTimeout   = 3 * time.Minute
	labCloseStopTimeout = 30 * time.Second
)

// envLabURL points the module at a standalone `cdeload lab`.
const envLabURL = "CDELOAD_LAB_URL"

// envLabToken is the standalone lab's API token, which its info endpoint
// requires (the lab's Coder session token is accepted as well).
const envLabToken = "CDELOAD_LAB_TOKEN"

// labToken returns the token for the lab at CDELOAD_LAB_URL:
// CDELOAD_LAB_TOKEN, else CODER_SESSION_TOKEN.
func (mi *instance) labToken() string {
	if t := mi.getenv(envLabToken); t != "" {
		return t
	}
	return mi.getenv(envCoderToken)
}

// labTarget is a lab the module gets tailnet settings, SSH credentials and
// workspaces from: the embedded one or a standalone one over HTTP.
type labTarget interface {
	// info returns the lab's tailnet and SSH settings.
	info() lab.Info
	startWorkspace(ctx context.Context, name string) (lab.WorkspaceInfo, error)
	stopWorkspace(ctx context.Context, name string) error
	// coderAgentAddress is the tailnet address of a running agent of the
	// lab's Coder simulator, or "" if the lab does not know it.
	coderAgentAddress(agentID string) string
	close() error
}

// lazyLab is a lab started (or contacted) on first use.
type lazyLab struct {
	l *lazy[labTarget]
}

func (ll *lazyLab) close() error {
	t, err, ok := ll.l.result()
	if !ok || err != nil {
		return nil
	}
	return t.close()
}

// lab returns the lab for labURL ("" for the embedded lab), starting it on
// first use. The start runs in its own context; ctx bounds only the wait.
func (r *RootModule) lab(ctx context.Context, labURL, token string) (labTarget, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, errClosed
	}
	ll, ok := r.labs[labURL]
	if !ok {
		start := func() (labTarget, error) { return r.startEmbeddedLab() }
		if labURL != "" {
			start = func() (labTarget, error) { return newRemoteLab(labURL, token) }
		}
		ll = &lazyLab{l: newLazy(start)}
		r.labs[labURL] = ll
	}
	r.mu.Unlock()
	return ll.l.get(ctx)
}

func (r *RootModule) startEmbeddedLab() (labTarget, error) {
	ctx, cancel := context.WithTimeout(context.Background(), labStartTimeout)
	defer cancel()
	l, err := lab.Start(ctx, lab.Config{})
	if err != nil {
		return nil, fmt.Errorf("start the embedded lab: %w", err)
	}
	return &embeddedLab{root: r, l: l}, nil
}

// embeddedLab is a lab running in this process.
type embeddedLab struct {
	root *RootModule
	l    *lab.Lab
}

func (e *embeddedLab) info() lab.Info { return e.l.Info() }

func (e *embeddedLab) coderAgentAddress(agentID string) string {
	if be := e.l.CoderBackend(); be != nil {
		if ws, ok := be.AgentWorkspace(agentID); ok {
			return ws.Addr().String()
		}
	}
	return ""
}

func (e *embeddedLab) startWorkspace(ctx context.Context, name string) (lab.WorkspaceInfo, error) {
	e.root.nodeStarted.Store(true)
	ws, err := e.l.Workspaces.Start(ctx, workspaces.WorkspaceSpec{Name: name})
	if err != nil {
		return lab.WorkspaceInfo{}, err
	}
	c := e.l.Credentials()
	addr := ws.Addr().String()
	return lab.WorkspaceInfo{Name: ws.Name(), Address: addr, SSHAddress: ws.SSHAddr(), User: c.User,
		PrivateKeyPEM: string(c.PrivateKeyPEM), HostKey: c.HostKeyLine(),
		KnownHosts: c.KnownHostsLine(addr, ws.Name())}, nil
}

func (e *embeddedLab) stopWorkspace(ctx context.Context, name string) error {
	return e.l.Workspaces.Stop(ctx, name)
}

func (e *embeddedLab) close() error {
	if err := e.l.Close(); err != nil {
		return fmt.Errorf("cdeload: close the embedded lab: %w", err)
	}
	return nil
}

// remoteLab is a standalone `cdeload lab` reached through its HTTP API.
type remoteLab struct {
	base   string
	token  string // sent with every request
	client *http.Client
	inf    lab.Info

	mu      sync.Mutex
	started map[string]struct{} // workspaces this run started and did not stop
}

func newRemoteLab(raw, token string) (*remoteLab, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s=%q: want the lab's base URL, e.g. http://127.0.0.1:7070", envLabURL, raw)
	}
	rl := &remoteLab{base: strings.TrimRight(raw, "/"), token: token, client: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
		started: map[string]struct{}{}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rl.do(ctx, http.MethodGet, "/lab/v1/info", nil, &rl.inf, http.StatusOK); err != nil {
		return nil, fmt.Errorf("contact the lab at %s=%s: %w", envLabURL, raw, err)
	}
	return rl, nil
}

func (rl *remoteLab) info() lab.Info { return rl.inf }

func (rl *remoteLab) startWorkspace(ctx context.Context, name string) (lab.WorkspaceInfo, error) {
	var ws lab.WorkspaceInfo
	if err := rl.do(ctx, http.MethodPost, "/lab/v1/workspaces", lab.CreateWorkspaceRequest{Name: name}, &ws, http.StatusCreated); err != nil {
		return ws, err
	}
	rl.mu.Lock()
	rl.started[ws.Name] = struct{}{}
	rl.mu.Unlock()
	return ws, nil
}

func (rl *remoteLab) stopWorkspace(ctx context.Context, name string) error {
	if err := rl.do(ctx, http.MethodDelete, "/lab/v1/workspaces/"+url.PathEscape(name), nil, nil, http.StatusNoContent); err != nil {
		return err
	}
	rl.mu.Lock()
	delete(rl.started, name)
	rl.mu.Unlock()
	return nil
}

func (rl *remoteLab) coderAgentAddress(agentID string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var a lab.CoderAgent
	if err := rl.do(ctx, http.MethodGet, "/lab/v1/coder/agents/"+url.PathEscape(agentID), nil, &a, http.StatusOK); err != nil {
		return ""
	}
	return a.Address
}

// close stops the workspaces this run started and left running.
func (rl *remoteLab) close() error {
	rl.mu.Lock()
	names := make([]string, 0, len(rl.started))
	for n := range rl.started {
		names = append(names, n)
	}
	rl.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), labCloseStopTimeout)
	defer cancel()
	var errs []error
	for _, n := range names {
		if err := rl.stopWorkspace(ctx, n); err != nil {
			errs = append(errs, fmt.Errorf("cdeload: stop lab workspace %q: %w", n, err))
		}
	}
	rl.client.CloseIdleConnections()
	return errors.Join(errs...)
}

// do sends one JSON request and decodes the answer into out.
func (rl *remoteLab) do(ctx context.Context, method, path string, in, out any, want int) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, rl.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if rl.token != "" {
		req.Header.Set("Authorization", "Bearer "+rl.token)
	}
	resp, err := rl.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode != want {
		var e struct {
			Error   string `json:"error"`
			Message string `json:"message"`
		}
		msg := strings.TrimSpace(string(data))
		if json.Unmarshal(data, &e) == nil && (e.Error != "" || e.Message != "") {
			msg = e.Error + e.Message
		}
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, msg)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// labExports returns the cde.lab namespace of one VU.
func (mi *instance) labExports() map[string]any {
	return map[string]any{
		"startWorkspace": mi.labStartWorkspace,
		"stopWorkspace":  mi.labStopWorkspace,
	}
}

// labStartWorkspace implements cde.lab.startWorkspace({name?}).
func (mi *instance) labStartWorkspace(call sobek.FunctionCall) sobek.Value {
	const op = "lab.startWorkspace"
	mi.mustVU(op)
	var name string
	mi.parseOptions(op, call.Argument(0), false, fields{
		"name": func(v sobek.Value) error {
			s, err := asString(v)
			if err == nil {
				err = workspaces.ValidateName(s)
			}
			name = s
			return err
		},
	})
	if name == "" {
		name = mi.root.nextName("cdeload")
	}
	labURL, token := mi.getenv(envLabURL), mi.labToken()
	return mi.async(op+"("+quote(name)+")", func(ctx context.Context) (toJS, error) {
		t, err := mi.root.lab(ctx, labURL, token)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(ctx, labRequestTimeout)
		defer cancel()
		ws, err := t.startWorkspace(ctx, name)
		if err != nil {
			return nil, err
		}
		mi.root.rememberWorkspace(ws.Address, ws.Name)
		return func(rt *sobek.Runtime) sobek.Value {
			o := rt.NewObject()
			set(o, "name", ws.Name)
			set(o, "address", ws.Address)
			set(o, "sshAddress", ws.SSHAddress)
			set(o, "user", ws.User)
			set(o, "privateKey", ws.PrivateKeyPEM)
			set(o, "hostKey", ws.HostKey)
			set(o, "knownHosts", ws.KnownHosts)
			return o
		}, nil
	})
}

// labStopWorkspace implements cde.lab.stopWorkspace(name).
func (mi *instance) labStopWorkspace(call sobek.FunctionCall) sobek.Value {
	const op = "lab.stopWorkspace"
	mi.mustVU(op)
	name, err := asString(call.Argument(0))
	if err == nil && name == "" {
		err = errors.New("must not be empty")
	}
	if err != nil {
		mi.throw(fmt.Errorf("%s(name): name %s: %w", op, describe(call.Argument(0)), err))
	}
	labURL, token := mi.getenv(envLabURL), mi.labToken()
	return mi.async(op+"("+quote(name)+")", func(ctx context.Context) (toJS, error) {
		t, err := mi.root.lab(ctx, labURL, token)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(ctx, labRequestTimeout)
		defer cancel()
		if err := t.stopWorkspace(ctx, name); err != nil {
			return nil, err
		}
		return undefinedJS, nil
	})
}
