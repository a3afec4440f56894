package tailnet

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Pool shares one [Node] per configuration among many users (VUs): the
// first [Pool.Acquire] for a configuration creates and joins the node,
// later ones reuse it, and the node is closed when the last [Lease] is
// released. The zero Pool is not usable; create one with [NewPool].
type Pool struct {
	mu      sync.Mutex
	entries map[string]*poolEntry
}

type poolEntry struct {
	key   string
	node  *Node
	refs  int
	ready chan struct{} // closed when the join attempt finished
	err   error         // join error (entry is then removed)
}

// NewPool returns an empty pool.
func NewPool() *Pool { return &Pool{entries: map[string]*poolEntry{}} }

// poolKey identifies a configuration. Dir and Logf do not distinguish
// nodes.
func poolKey(c Config) string {
	tags := slices.Clone(c.AdvertiseTags)
	slices.Sort(tags)
	return strings.Join([]string{c.ControlURL, c.AuthKey, c.Hostname, fmt.Sprint(c.Persistent), strings.Join(tags, ",")}, "\x00")
}

// Lease is one user's reference to a shared node.
type Lease struct {
	pool  *Pool
	entry *poolEntry
	once  sync.Once
	info  UpInfo
}

// Node returns the shared node. It stays valid until Release.
func (l *Lease) Node() *Node { return l.entry.node }

// UpInfo returns how the shared node joined (the same for every lease).
func (l *Lease) UpInfo() UpInfo { return l.info }

// Release drops the reference; the last release closes the node and
// returns Close's error. Release is idempotent.
func (l *Lease) Release() error {
	var err error
	l.once.Do(func() { err = l.pool.release(l.entry) })
	return err
}

// Acquire returns a lease on the node for cfg, creating and joining it if
// needed. Concurrent callers for the same configuration wait for one join.
// If ctx ends while waiting, Acquire returns ctx's error (the join goes on
// for the other waiters).
func (p *Pool) Acquire(ctx context.Context, cfg Config) (*Lease, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	key := poolKey(cfg)
	p.mu.Lock()
	e, ok := p.entries[key]
	if !ok {
		n, err := New(cfg)
		if err != nil {
			p.mu.Unlock()
			return nil, err
		}
		e = &poolEntry{key: key, node: n, ready: make(chan struct{})}
		p.entries[key] = e
		go p.join(e)
	}
	e.refs++
	p.mu.Unlock()

	select {
	case <-e.ready:
	case <-ctx.Done():
		p.release(e)
		return nil, fmt.Errorf("tailnet: wait for shared node %q: %w", cfg.Hostname, ctx.Err())
	}
	if e.err != nil {
		p.release(e)
		return nil, e.err
	}
	info, _ := e.node.Up(ctx) // already up: returns the cached result
	return &Lease{pool: p, entry: e, info: info}, nil
}

// join brings a new shared node up. It is bounded by the node's own Close
// (the last release cancels it).
func (p *Pool) join(e *poolEntry) {
	_, err := e.node.Up(context.Background())
	if err != nil {
		e.err = err
		p.mu.Lock()
		if p.entries[e.key] == e {
			delete(p.entries, e.key)
		}
		p.mu.Unlock()
	}
	close(e.ready)
}

func (p *Pool) release(e *poolEntry) error {
	p.mu.Lock()
	e.refs--
	last := e.refs == 0
	if last && p.entries[e.key] == e {
		delete(p.entries, e.key)
	}
	p.mu.Unlock()
	if !last {
		return nil
	}
	return e.node.Close()
}

// Len returns the number of live shared nodes.
func (p *Pool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.entries)
}
