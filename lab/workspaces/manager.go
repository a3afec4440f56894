package workspaces

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// ErrExists is returned (wrapped) when a workspace name is already in use.
var ErrExists = errors.New("workspace already exists")

// ErrNotFound is returned (wrapped) for an unknown workspace name.
var ErrNotFound = errors.New("workspace not found")

// Manager owns a set of workspaces with unique names and bounds how many
// start or stop at once. It is safe for concurrent use.
type Manager struct {
	cfg Config
	sem chan struct{}

	mu       sync.Mutex
	byName   map[string]*Workspace
	starting map[string]bool
	closed   bool
}

// DefaultParallelism bounds concurrent starts and stops when
// NewManager gets parallelism <= 0.
const DefaultParallelism = 8

// NewManager returns a manager whose workspaces share cfg; at most
// parallelism workspaces start or stop at the same time.
func NewManager(cfg Config, parallelism int) (*Manager, error) {
	if cfg.Credentials == nil {
		return nil, errors.New("workspaces: Config.Credentials is required")
	}
	if parallelism <= 0 {
		parallelism = DefaultParallelism
	}
	return &Manager{cfg: cfg, sem: make(chan struct{}, parallelism),
		byName: map[string]*Workspace{}, starting: map[string]bool{}}, nil
}

// Credentials returns the SSH credentials of the manager's workspaces.
func (m *Manager) Credentials() *Credentials { return m.cfg.Credentials }

func (m *Manager) acquire(ctx context.Context) error {
	select {
	case m.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *Manager) release() { <-m.sem }

// Start starts a workspace named spec.Name (which must be unused).
func (m *Manager) Start(ctx context.Context, spec WorkspaceSpec) (*Workspace, error) {
	if err := ValidateName(spec.Name); err != nil {
		return nil, err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, errors.New("workspaces: manager closed")
	}
	if m.byName[spec.Name] != nil || m.starting[spec.Name] {
		m.mu.Unlock()
		return nil, fmt.Errorf("workspaces: %q: %w", spec.Name, ErrExists)
	}
	m.starting[spec.Name] = true
	m.mu.Unlock()

	w, err := func() (*Workspace, error) {
		if err := m.acquire(ctx); err != nil {
			return nil, fmt.Errorf("workspaces: start %s: %w", spec.Name, err)
		}
		defer m.release()
		return Start(ctx, m.cfg, spec)
	}()

	m.mu.Lock()
	delete(m.starting, spec.Name)
	if err == nil && m.closed {
		m.mu.Unlock()
		w.Stop()
		return nil, errors.New("workspaces: manager closed")
	}
	if err == nil {
		m.byName[spec.Name] = w
	}
	m.mu.Unlock()
	return w, err
}

// StartMany starts all specs concurrently (bounded by the manager's
// parallelism). It returns the workspaces that started, in spec order, and
// the joined errors of those that did not.
func (m *Manager) StartMany(ctx context.Context, specs []WorkspaceSpec) ([]*Workspace, error) {
	out := make([]*Workspace, len(specs))
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	for i, s := range specs {
		wg.Go(func() { out[i], errs[i] = m.Start(ctx, s) })
	}
	wg.Wait()
	return slices.DeleteFunc(out, func(w *Workspace) bool { return w == nil }), errors.Join(errs...)
}

// Get returns the running workspace with that name.
func (m *Manager) Get(name string) (*Workspace, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w, ok := m.byName[name]
	return w, ok
}

// List returns the running workspaces sorted by name.
func (m *Manager) List() []*Workspace {
	m.mu.Lock()
	out := make([]*Workspace, 0, len(m.byName))
	for _, w := range m.byName {
		out = append(out, w)
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b *Workspace) int {
		if a.name < b.name {
			return -1
		}
		if a.name > b.name {
			return 1
		}
		return 0
	})
	return out
}

// Len is the number of running workspaces.
func (m *Manager) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.byName)
}

func (m *Manager) take(name string) (*Workspace, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := m.byName[name]
	if w == nil {
		return nil, fmt.Errorf("workspaces: %q: %w", name, ErrNotFound)
	}
	delete(m.byName, name)
	return w, nil
}

// Stop stops the named workspace gracefully and forgets it.
func (m *Manager) Stop(ctx context.Context, name string) error {
	w, err := m.take(name)
	if err != nil {
		return err
	}
	if err := m.acquire(ctx); err != nil {
		w.Crash()
		return fmt.Errorf("workspaces: stop %s: %w", name, err)
	}
	defer m.release()
	return w.Stop()
}

// Crash kills the named workspace abruptly and forgets it.
func (m *Manager) Crash(name string) error {
	w, err := m.take(name)
	if err != nil {
		return err
	}
	return w.Crash()
}

// Close stops every workspace (bounded by the parallelism) and refuses new
// ones. It is idempotent.
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed = true
	ws := make([]*Workspace, 0, len(m.byName))
	for _, w := range m.byName {
		ws = append(ws, w)
	}
	clear(m.byName)
	m.mu.Unlock()
	errs := make([]error, len(ws))
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Go(func() {
			m.sem <- struct{}{}
			defer m.release()
			errs[i] = w.Stop()
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
