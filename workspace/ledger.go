package workspace

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
)

// Kinds of resources recorded in a Ledger.
const (
	KindWorkspace = "workspace"
	KindUser      = "user"
)

// Entry is one resource recorded in a Ledger. It is recorded before the
// create request is sent (with the name only) so that a request interrupted
// by an abort can still be found by name at cleanup; the ID is filled in when
// the provider answers.
type Entry struct {
	// Kind is KindWorkspace or KindUser.
	Kind string `json:"kind"`
	// Name is the workspace name or username.
	Name string `json:"name"`
	// ID is the provider's identifier, "" until known.
	ID string `json:"id,omitempty"`
	// Owner is the owner's username (workspaces only).
	Owner string `json:"owner,omitempty"`
}

// Remover removes one recorded resource. A resource that is already gone
// must be reported as success (nil).
type Remover interface {
	// RemoveWorkspace deletes the workspace and waits until it is gone.
	RemoveWorkspace(ctx context.Context, e Entry) error
	// RemoveUser deletes the user.
	RemoveUser(ctx context.Context, e Entry) error
}

// Ledger records every user and workspace a run creates. It is safe for
// concurrent use. The zero value is ready to use.
type Ledger struct {
	mu      sync.Mutex
	entries map[ledgerKey]Entry
	seq     map[ledgerKey]uint64
	next    uint64
}

type ledgerKey struct{ kind, name string }

// Record adds e, or updates the entry with the same kind and name (a
// non-empty ID or Owner replaces the recorded one).
func (l *Ledger) Record(e Entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.entries == nil {
		l.entries = map[ledgerKey]Entry{}
		l.seq = map[ledgerKey]uint64{}
	}
	k := ledgerKey{e.Kind, e.Name}
	if old, ok := l.entries[k]; ok {
		if e.ID == "" {
			e.ID = old.ID
		}
		if e.Owner == "" {
			e.Owner = old.Owner
		}
	} else {
		l.next++
		l.seq[k] = l.next
	}
	l.entries[k] = e
}

// Forget removes the entry of kind and name (the resource is gone).
func (l *Ledger) Forget(kind, name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := ledgerKey{kind, name}
	delete(l.entries, k)
	delete(l.seq, k)
}

// Entries returns a snapshot of the recorded entries in recording order.
func (l *Ledger) Entries() []Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Entry, 0, len(l.entries))
	for _, e := range l.entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		return l.seq[ledgerKey{out[i].Kind, out[i].Name}] < l.seq[ledgerKey{out[j].Kind, out[j].Name}]
	})
	return out
}

// Len returns the number of recorded entries.
func (l *Ledger) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// Cleanup removes every recorded resource through r: all workspaces first,
// then all users, at most concurrency at a time (minimum 1). Entries removed
// successfully are forgotten, so Cleanup can be called again to retry the
// failures. onErr, if not nil, is called for each failure. The returned error
// joins every failure.
func (l *Ledger) Cleanup(ctx context.Context, r Remover, concurrency int, onErr func(Entry, error)) error {
	if concurrency < 1 {
		concurrency = 1
	}
	var errs []error
	for _, kind := range []string{KindWorkspace, KindUser} {
		var todo []Entry
		for _, e := range l.Entries() {
			if e.Kind == kind {
				todo = append(todo, e)
			}
		}
		errs = append(errs, l.removeAll(ctx, r, kind, todo, concurrency, onErr)...)
	}
	return errors.Join(errs...)
}

func (l *Ledger) removeAll(ctx context.Context, r Remover, kind string, todo []Entry, concurrency int, onErr func(Entry, error)) []error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, concurrency)
	)
	for _, e := range todo {
		if err := ctx.Err(); err != nil {
			mu.Lock()
			errs = append(errs, fmt.Errorf("cleanup of %s %q: %w", e.Kind, e.Name, err))
			mu.Unlock()
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(e Entry) {
			defer func() { <-sem; wg.Done() }()
			var err error
			if kind == KindWorkspace {
				err = r.RemoveWorkspace(ctx, e)
			} else {
				err = r.RemoveUser(ctx, e)
			}
			if err != nil {
				err = fmt.Errorf("cleanup of %s %q: %w", e.Kind, e.Name, err)
				if onErr != nil {
					onErr(e, err)
				}
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			l.Forget(e.Kind, e.Name)
		}(e)
	}
	wg.Wait()
	return errs
}

// Limiter bounds how many removals run at once, possibly across the
// ledgers of several providers of one deployment. The zero value is not
// usable; create one with NewLimiter.
type Limiter struct{ slots chan struct{} }

// NewLimiter returns a Limiter of n slots (minimum 1).
func NewLimiter(n int) *Limiter {
	return &Limiter{slots: make(chan struct{}, max(n, 1))}
}

// Acquire takes a slot, waiting until one is free or ctx is done.
func (l *Limiter) Acquire(ctx context.Context) error {
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Release frees a slot taken by Acquire.
func (l *Limiter) Release() { <-l.slots }
