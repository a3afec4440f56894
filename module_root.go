package cdeload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cdeload/cdeload/engine/modules"
	"github.com/cdeload/cdeload/tailnet"
	"github.com/cdeload/cdeload/workspace"
)

// errClosed is returned by every network call made after RootModule.Close.
var errClosed = errors.New("the cdeload module is closed (the run is over)")

// RootModule is the k6/x/cdeload module registered with the engine. It holds
// the only state shared between VUs: the lazily started labs and the pool of
// shared tailnet nodes. Create it with New.
type RootModule struct {
	pool  *tailnet.Pool
	runID string
	seq   atomic.Uint64 // sequence of generated names

	// nodeStarted is set before the first tailnet node of the process
	// starts (derpOnly must be decided before that).
	nodeStarted atomic.Bool

	mu       sync.Mutex
	closed   bool
	labs     map[string]*lazyLab // "" is the embedded lab, else a lab URL
	leases   map[*tailnet.Lease]struct{}
	nodes    map[*tailnet.Node]struct{} // unshared nodes still open
	reported map[*tailnet.Node]struct{} // nodes whose up duration was emitted
	names    map[string]string          // lab workspace address → name
	closers  []func() error             // extra resources, closed in reverse order
	open     map[io.Closer]struct{}     // SSH sessions and terminals still open
	coders   map[string][]*coderObj     // Coder objects with a provider, by deployment
	// coderAddrs are the addresses of Coder workspaces created by this
	// process: a lab's (reachable over its tailnet) or a real Coder's.
	coderAddrs map[string]coderAddr
}

// New returns the root module. The engine calls New once per process
// through the package's init; tests may create their own.
func New() *RootModule {
	return &RootModule{
		pool:     tailnet.NewPool(),
		runID:    workspace.NewRunID(),
		labs:     map[string]*lazyLab{},
		leases:   map[*tailnet.Lease]struct{}{},
		nodes:    map[*tailnet.Node]struct{}{},
		reported: map[*tailnet.Node]struct{}{},
		names:    map[string]string{},
		open:     map[io.Closer]struct{}{},
		coders:   map[string][]*coderObj{},

		coderAddrs: map[string]coderAddr{},
	}
}

// NewModuleInstance implements modules.Module: it builds the per-VU
// instance and registers the module's metrics while the VU is in its init
// context.
func (r *RootModule) NewModuleInstance(vu modules.VU) modules.Instance {
	return newInstance(r, vu)
}

// Close releases what the module shares between VUs: it closes the SSH and
// terminal sessions scripts left open, removes the Coder workspaces and
// scaletest users that are still recorded (an aborted run, a script without
// coder.cleanup(); bounded by closeCleanupTimeout), closes the Coder
// providers, releases every tailnet lease and closes every node that scripts
// left open, stops workspaces started on a standalone lab, and stops the
// embedded lab. The host calls Close once after the run (after
// teardown and handleSummary) on every registered module that implements
// io.Closer. Network calls made afterwards fail. Close is idempotent.
func (r *RootModule) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	leases, nodes, labs, closers, open, coders := r.leases, r.nodes, r.labs, r.closers, r.open, r.coders
	r.leases, r.nodes, r.closers, r.open, r.coders = nil, nil, nil, nil, nil
	r.mu.Unlock()

	var errs []error
	for c := range open {
		c.Close()
	}
	errs = append(errs, cleanupCoders(coders))
	for _, cs := range coders {
		for _, c := range cs {
			c.closeProvider()
		}
	}
	for l := range leases {
		if err := l.Release(); err != nil {
			errs = append(errs, fmt.Errorf("cdeload: release shared tailnet node: %w", err))
		}
	}
	for n := range nodes {
		if err := n.Close(); err != nil {
			errs = append(errs, fmt.Errorf("cdeload: close tailnet node %s: %w", n.Hostname(), err))
		}
	}
	for i := len(closers) - 1; i >= 0; i-- {
		if err := closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	for _, l := range labs {
		if err := l.close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// closeCleanupTimeout bounds the cleanup Close runs for what scripts left.
const closeCleanupTimeout = 5 * time.Minute

// onClose registers fn to run when the module closes (after the tailnet
// nodes, before the labs). It fails when the module is already closed.
func (r *RootModule) onClose(fn func() error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errClosed
	}
	r.closers = append(r.closers, fn)
	return nil
}

// track records an open session so Close can close it.
func (r *RootModule) track(c io.Closer) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errClosed
	}
	r.open[c] = struct{}{}
	return nil
}

// untrack forgets a session the script closed.
func (r *RootModule) untrack(c io.Closer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.open, c)
}

// addCoder records a Coder object whose provider cleanup() must reach.
func (r *RootModule) addCoder(key string, c *coderObj) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errClosed
	}
	r.coders[key] = append(r.coders[key], c)
	return nil
}

// codersFor returns the Coder objects of one deployment.
func (r *RootModule) codersFor(key string) []*coderObj {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*coderObj(nil), r.coders[key]...)
}

// addLease records a lease so Close can release it.
func (r *RootModule) addLease(l *tailnet.Lease) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errClosed
	}
	r.leases[l] = struct{}{}
	return nil
}

// dropLease forgets a lease the script released itself.
func (r *RootModule) dropLease(l *tailnet.Lease) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.leases, l)
}

// addNode records an unshared node so Close can close it.
func (r *RootModule) addNode(n *tailnet.Node) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errClosed
	}
	r.nodes[n] = struct{}{}
	return nil
}

// dropNode forgets an unshared node the script closed itself.
func (r *RootModule) dropNode(n *tailnet.Node) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.nodes, n)
}

// firstUp reports whether n's up duration has not been emitted yet, and
// marks it emitted: a shared node is reported once, by the first VU that
// sees it.
func (r *RootModule) firstUp(n *tailnet.Node) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.reported[n]; ok {
		return false
	}
	r.reported[n] = struct{}{}
	return true
}

// rememberWorkspace records the name of a lab workspace by address, so
// samples for connections to that address carry the workspace name.
func (r *RootModule) rememberWorkspace(address, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.names != nil {
		r.names[address] = name
	}
}

// workspaceName returns the lab workspace name known for host (an address
// or a name), or "".
func (r *RootModule) workspaceName(host string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.names[host]
}

// nextName returns a fresh name "cdeload-<runid>-<n>" for lab workspaces
// and nodes.
func (r *RootModule) nextName(kind string) string {
	return fmt.Sprintf("%s-%s-%d", kind, r.runID, r.seq.Add(1))
}

// lazy runs start once, in its own goroutine and context, the first time
// get is called; every caller waits for the result (or for its own context)
// and a failure is reported to every caller.
type lazy[T any] struct {
	once  sync.Once
	start func() (T, error)
	done  chan struct{}
	val   T
	err   error
}

func newLazy[T any](start func() (T, error)) *lazy[T] {
	return &lazy[T]{start: start, done: make(chan struct{})}
}

// get starts the work if needed and waits for it, bounded by ctx.
func (l *lazy[T]) get(ctx context.Context) (T, error) {
	l.once.Do(func() {
		go func() {
			defer close(l.done)
			l.val, l.err = l.start()
		}()
	})
	select {
	case <-l.done:
		return l.val, l.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// result waits for a started start and returns its result, with ok true.
// If get was never called it returns ok false and makes later get calls
// fail with errClosed instead of starting.
func (l *lazy[T]) result() (val T, err error, ok bool) {
	neverStarted := false
	l.once.Do(func() {
		neverStarted = true
		l.err = errClosed
		close(l.done)
	})
	if neverStarted {
		return val, nil, false
	}
	<-l.done
	return l.val, l.err, true
}
