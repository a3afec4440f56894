// Package codersim simulates the subset of Coder's REST API (v2) that
// cdeload uses: users, login, organizations, templates with rich
// parameters, workspaces, builds with provisioner jobs, agents, the
// reconnecting-PTY websocket and build info. Paths, JSON field names, status
// codes and the error body ({"message","detail","validations"}) follow
// Coder's documented API. The machines behind workspaces come from a
// Backend; fault knobs inject latency, failures and rate limiting,
// deterministically under a seed.
package codersim

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Server is a running Coder API simulator.
type Server struct {
	// URL is the base URL (http://127.0.0.1:port).
	URL string
	// AdminToken is the session token of the first user, an owner.
	AdminToken string
	// AdminEmail and AdminPassword log the first user in.
	AdminEmail, AdminPassword string

	cfg     Config
	backend Backend
	handler http.Handler
	ln      net.Listener
	srv     *http.Server
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	rngMu sync.Mutex
	rng   *mrand.Rand

	mu         sync.Mutex
	faults     Faults
	users      map[string]*user
	sessions   map[string]string // token → user ID
	orgs       map[string]*org
	templates  map[string]*template
	versions   map[string]*version
	workspaces map[string]*workspaceRec
	builds     map[string]*build
	agents     map[string]*agent
	windows    map[string]*rateWindow
	defaultOrg *org
	admin      *user
}

type rateWindow struct {
	start time.Time
	count int
}

// New starts a simulator listening on cfg.Addr (loopback only).
func New(cfg Config) (*Server, error) {
	if err := cfg.Faults.validate(); err != nil {
		return nil, err
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("codersim: addr %q: %w", cfg.Addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("codersim: addr %q: only loopback addresses are allowed", cfg.Addr)
	}
	if cfg.Backend == nil {
		cfg.Backend = NewMemBackend()
	}
	if cfg.AdminUsername == "" {
		cfg.AdminUsername = "admin"
	}
	if cfg.AdminEmail == "" {
		cfg.AdminEmail = "admin@coder.local"
	}
	if cfg.AdminPassword == "" {
		cfg.AdminPassword = randomString(16)
	}
	if len(cfg.Templates) == 0 {
		cfg.Templates = []TemplateSpec{Kubernetes()}
	}
	if cfg.AgentConnectionTimeout <= 0 {
		cfg.AgentConnectionTimeout = 120 * time.Second
	}
	if cfg.Logf == nil {
		cfg.Logf = log.Printf
	}
	if cfg.Version == "" {
		cfg.Version = "v2.99.0-codersim"
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg: cfg, backend: cfg.Backend, ctx: ctx, cancel: cancel,
		rng:    mrand.New(mrand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		faults: cfg.Faults,
		users:  map[string]*user{}, sessions: map[string]string{}, orgs: map[string]*org{},
		templates: map[string]*template{}, versions: map[string]*version{}, workspaces: map[string]*workspaceRec{},
		builds: map[string]*build{}, agents: map[string]*agent{}, windows: map[string]*rateWindow{},
	}
	s.seed()
	s.handler = s.routes()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("codersim: listen %s: %w", cfg.Addr, err)
	}
	s.ln = ln
	s.URL = "http://" + ln.Addr().String()
	s.srv = &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *Server) seed() {
	now := time.Now().UTC()
	o := &org{id: newUUID(), name: "coder", displayName: "Coder", isDefault: true, createdAt: now}
	s.orgs[o.id] = o
	s.defaultOrg = o
	admin := &user{id: newUUID(), username: s.cfg.AdminUsername, email: s.cfg.AdminEmail, name: "Admin",
		password: s.cfg.AdminPassword, status: "active", loginType: "password", owner: true,
		createdAt: now, updatedAt: now, orgIDs: []string{o.id}}
	s.users[admin.id] = admin
	s.admin = admin
	s.AdminToken = newToken()
	s.AdminEmail, s.AdminPassword = admin.email, admin.password
	s.sessions[s.AdminToken] = admin.id
	for _, spec := range s.cfg.Templates {
		t := &template{id: newUUID(), name: spec.Name, displayName: spec.DisplayName, orgID: o.id, createdAt: now, agents: spec.Agents}
		if len(t.agents) == 0 {
			t.agents = []string{"main"}
		}
		v := &version{id: newUUID(), name: "v1", templateID: t.id, params: spec.Parameters, createdAt: now}
		for i := range v.params {
			if v.params[i].DescriptionPlain == "" {
				v.params[i].DescriptionPlain = v.params[i].Description
			}
			if v.params[i].Options == nil {
				v.params[i].Options = []ParameterOption{}
			}
		}
		t.activeVersionID = v.id
		s.templates[t.id] = t
		s.versions[v.id] = v
	}
}

// Handler returns the simulator's HTTP handler (to mount it elsewhere).
func (s *Server) Handler() http.Handler { return s.handler }

// Backend returns the backend running the workspace machines.
func (s *Server) Backend() Backend { return s.backend }

// SetFaults replaces the fault knobs.
func (s *Server) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return err
	}
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
	return nil
}

// Faults returns the current fault knobs.
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// Close stops the server, cancels running builds and stops every running
// workspace machine; it waits for machine starts in flight and stops the
// machines they bring up.
func (s *Server) Close() error {
	s.cancel()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	if err != nil {
		_ = s.srv.Close()
	}
	s.wg.Wait() // builds, machine starts (overtaken: they stop what they started) and agents
	s.mu.Lock()
	var up []*machineRun
	for _, w := range s.workspaces {
		if w.machine != nil {
			up = append(up, w.machine)
			w.machine = nil
		}
	}
	s.mu.Unlock()
	for _, m := range up {
		if m.impl != nil {
			s.stopMachineNow(m.spec)
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}

// AgentAddress returns the tailnet address a Coder client derives from an
// agent ID: fd7a:115c:a1e0:: followed by the last 10 bytes of the UUID, or
// the backend agent's own address when it reports one.
func (s *Server) AgentAddress(agentID string) string {
	s.mu.Lock()
	a := s.agents[agentID]
	s.mu.Unlock()
	if a != nil && a.impl != nil {
		if addr := a.impl.Address(); addr.IsValid() {
			return addr.String()
		}
	}
	return coderAgentAddress(agentID)
}

// ---- helpers ----

func (s *Server) float() float64 {
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	return s.rng.Float64()
}

func (s *Server) draw(l Latency) time.Duration {
	d := l.Fixed
	if l.Jitter > 0 {
		s.rngMu.Lock()
		d += time.Duration(s.rng.Int64N(int64(l.Jitter)))
		s.rngMu.Unlock()
	}
	return d
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg, detail string, v ...validationError) {
	writeJSON(w, status, response{Message: msg, Detail: detail, Validations: v})
}

func notFound(w http.ResponseWriter) {
	writeError(w, http.StatusNotFound, "Resource not found or you do not have access to this resource", "")
}

// found answers 404 when v is nil, and returns v.
func found[T any](w http.ResponseWriter, v *T) *T {
	if v == nil {
		notFound(w)
	}
	return v
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "Request body must be valid JSON.", err.Error())
		return false
	}
	return true
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return formatUUID(b)
}

func formatUUID(b [16]byte) string {
	const hexd = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, x := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hexd[x>>4], hexd[x&15])
	}
	return string(out)
}

func parseUUID(s string) ([16]byte, bool) {
	var u [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, false
	}
	h := strings.ReplaceAll(s, "-", "")
	for i := 0; i < 16; i++ {
		var v byte
		for _, c := range []byte{h[2*i], h[2*i+1]} {
			switch {
			case '0' <= c && c <= '9':
				v = v<<4 | (c - '0')
			case 'a' <= c && c <= 'f':
				v = v<<4 | (c - 'a' + 10)
			case 'A' <= c && c <= 'F':
				v = v<<4 | (c - 'A' + 10)
			default:
				return u, false
			}
		}
		u[i] = v
	}
	return u, true
}

func coderAgentAddress(agentID string) string {
	u, ok := parseUUID(agentID)
	if !ok {
		return ""
	}
	ip := make(net.IP, 16)
	copy(ip, []byte{0xfd, 0x7a, 0x11, 0x5c, 0xa1, 0xe0})
	copy(ip[6:], u[6:])
	return ip.String()
}

const tokenAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = tokenAlphabet[int(b[i])%len(tokenAlphabet)]
	}
	return string(b)
}

// newToken returns a session token shaped like Coder's: <10-char id>-<22-char secret>.
func newToken() string { return randomString(10) + "-" + randomString(22) }
