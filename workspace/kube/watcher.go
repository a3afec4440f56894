package kube

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
)

// DefaultResync is how often the informer re-delivers its cached pods to
// the watcher (no API request: a resync reads the local cache).
const DefaultResync = 10 * time.Minute

// WatcherConfig configures a Watcher.
type WatcherConfig struct {
	// Client is the core/v1 client (required).
	Client corev1client.CoreV1Interface
	// Namespace is the namespace of the workspace pods (required).
	Namespace string
	// Selector is a label selector narrowing the pods watched ("" for all).
	Selector string
	// Resync is the informer's resync period (DefaultResync when zero).
	Resync time.Duration
}

// Watcher keeps one shared informer (a list, then one watch; the informer
// relists by itself after 410 Gone) on the pods of a namespace and records
// when each pod reached each phase. It never polls. Safe for concurrent use.
type Watcher struct {
	cfg      WatcherConfig
	informer cache.SharedIndexInformer
	stop     chan struct{}
	done     chan struct{}

	mu      sync.Mutex
	pods    map[string]*PodPhases // by UID
	waiters map[string]map[*waiter]struct{}
	werr    error // the latest list/watch error
	closed  bool
}

// waiter is one Wait call, keyed by the label (or pod name) it matches.
type waiter struct {
	ch chan PodPhases
}

// nameKey is the key of waiters matching a pod by name.
const nameKey = "\x00name"

func waitKey(label, value string) string { return label + "=" + value }

// NewWatcher starts the informer and waits until its first list is in
// (bounded by ctx). A list the client is not allowed to make is an error
// naming the missing permission rather than a hang.
func NewWatcher(ctx context.Context, cfg WatcherConfig) (*Watcher, error) {
	if cfg.Client == nil {
		return nil, errors.New("kubernetes pod watcher: no client")
	}
	if cfg.Namespace == "" {
		return nil, errors.New("kubernetes pod watcher: namespace is required")
	}
	if _, err := labels.Parse(cfg.Selector); err != nil {
		return nil, fmt.Errorf("kubernetes pod watcher: selector %q: %w", cfg.Selector, err)
	}
	if cfg.Resync == 0 {
		cfg.Resync = DefaultResync
	}
	lw := cache.NewFilteredListWatchFromClient(cfg.Client.RESTClient(), "pods", cfg.Namespace, func(o *metav1.ListOptions) {
		o.LabelSelector = cfg.Selector
	})
	inf := cache.NewSharedIndexInformer(lw, &corev1.Pod{}, cfg.Resync, cache.Indexers{})
	// Keep only what the watcher and the provider read: managed fields and
	// most of the spec are the bulk of a cached pod.
	if err := inf.SetTransform(slimPod); err != nil {
		return nil, fmt.Errorf("kubernetes pod watcher: %w", err)
	}
	w := &Watcher{
		cfg:      cfg,
		informer: inf,
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		pods:     map[string]*PodPhases{},
		waiters:  map[string]map[*waiter]struct{}{},
	}
	if err := inf.SetWatchErrorHandler(func(_ *cache.Reflector, err error) {
		w.mu.Lock()
		w.werr = err
		w.mu.Unlock()
	}); err != nil {
		return nil, fmt.Errorf("kubernetes pod watcher: %w", err)
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{
		AddFunc:    func(obj any, initial bool) { w.observe(obj, !initial, false) },
		UpdateFunc: func(_, obj any) { w.observe(obj, true, false) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			w.observe(obj, true, true)
		},
	}); err != nil {
		return nil, fmt.Errorf("kubernetes pod watcher: %w", err)
	}
	go func() {
		defer close(w.done)
		inf.Run(w.stop)
	}()
	if err := w.waitSynced(ctx); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

// syncCheck is how often waitSynced looks at the informer's local state
// (no API request).
const syncCheck = 10 * time.Millisecond

func (w *Watcher) waitSynced(ctx context.Context) error {
	t := time.NewTicker(syncCheck)
	defer t.Stop()
	for !w.informer.HasSynced() {
		w.mu.Lock()
		err := w.werr
		w.mu.Unlock()
		if err != nil && (apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err)) {
			return Forbidden(err, "list", "pods", w.cfg.Namespace)
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("kubernetes pod watcher: list pods in %s: %w (last error: %v)", w.cfg.Namespace, ctx.Err(), err)
			}
			return fmt.Errorf("kubernetes pod watcher: list pods in %s: %w", w.cfg.Namespace, ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// Forbidden turns an API error into one naming the permission to grant
// ("forbidden: needs list on pods in ns"); other errors are wrapped as they
// are.
func Forbidden(err error, verb, resource, namespace string) error {
	if apierrors.IsForbidden(err) {
		return fmt.Errorf("kubernetes: forbidden: needs %s on %s in %s (see the README's RBAC section): %w", verb, resource, namespace, err)
	}
	if apierrors.IsUnauthorized(err) {
		return fmt.Errorf("kubernetes: unauthorized (%s %s in %s): check the kubeconfig's credentials: %w", verb, resource, namespace, err)
	}
	return fmt.Errorf("kubernetes: %s %s in %s: %w", verb, resource, namespace, err)
}

// Close stops the informer and waits for it to end. Waiters get ctx-style
// errors from their own contexts; Close does not cancel them.
func (w *Watcher) Close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	w.mu.Unlock()
	close(w.stop)
	<-w.done
}

// Namespace returns the watched namespace.
func (w *Watcher) Namespace() string { return w.cfg.Namespace }

// annReceived is the annotation slimPod replaces a cached pod's
// annotations with: when the watch delivered this state of the pod
// (RFC 3339, nanoseconds). It exists only in the watcher's cache.
const annReceived = "cdeload.dev/received-at"

// slimPod drops the parts of a pod the watcher does not read, and stamps
// it with the time it was received. The informer transforms each object
// as the reflector queues it, so the stamp is the watch delivery, before
// any queueing in the informer. Idempotent: a stamped pod is left as is.
func slimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	if _, done := p.Annotations[annReceived]; done {
		return p, nil
	}
	received := time.Now()
	p.ManagedFields = nil
	p.Annotations = map[string]string{annReceived: received.Format(time.RFC3339Nano)}
	p.Spec = corev1.PodSpec{NodeName: p.Spec.NodeName}
	return p, nil
}

// receivedAt returns when the watch delivered this state of p (now when
// it carries no stamp).
func receivedAt(p *corev1.Pod) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, p.Annotations[annReceived]); err == nil {
		return t
	}
	return time.Now()
}

// observe records the state of a pod the informer delivered; live is false
// for the pods of the first list (their phases predate the watcher).
func (w *Watcher) observe(obj any, live, deleted bool) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	now := receivedAt(p)
	uid := string(p.UID)
	w.mu.Lock()
	st := w.pods[uid]
	if st == nil {
		st = &PodPhases{Name: p.Name, Namespace: p.Namespace, UID: uid}
		st.Created = pick(now, p.CreationTimestamp.Time, live)
		w.pods[uid] = st
	}
	st.Labels = p.Labels
	if c := condition(p, corev1.PodScheduled); c != nil && c.Status == corev1.ConditionTrue && st.Scheduled.IsZero() {
		st.Scheduled = pick(now, c.LastTransitionTime.Time, live)
	}
	if c := condition(p, corev1.ContainersReady); c != nil && c.Status == corev1.ConditionTrue && st.ContainersReady.IsZero() {
		st.ContainersReady = pick(now, c.LastTransitionTime.Time, live)
		if st.Scheduled.IsZero() { // a pod that skipped scheduling (nodeName set on create)
			st.Scheduled = st.Created
		}
	}
	st.Pending = p.Status.Phase == corev1.PodPending
	st.IP = p.Status.PodIP
	if r, m := failureReason(p); r != "" {
		st.Reason, st.Message = r, m
	} else if st.Ready() {
		st.Reason, st.Message = "", ""
	}
	st.Deleted = deleted
	snap := *st
	if deleted {
		delete(w.pods, uid)
	}
	w.notifyLocked(snap)
	w.mu.Unlock()
}

// notifyLocked sends snap to the waiters of its name and labels, dropping
// an older undelivered state.
func (w *Watcher) notifyLocked(snap PodPhases) {
	send := func(key string) {
		for wt := range w.waiters[key] {
			select {
			case <-wt.ch:
			default:
			}
			wt.ch <- snap
		}
	}
	send(waitKey(nameKey, snap.Name))
	for k, v := range snap.Labels {
		send(waitKey(k, v))
	}
}

// Match selects the pod of one workspace: by Label=Value, or by pod name
// when Label is "".
type Match struct {
	Label, Value string
}

// ByName matches the pod called name.
func ByName(name string) Match { return Match{Value: name} }

// ByLabel matches the pods with label=value.
func ByLabel(label, value string) Match { return Match{Label: label, Value: value} }

func (m Match) key() string {
	if m.Label == "" {
		return waitKey(nameKey, m.Value)
	}
	return waitKey(m.Label, m.Value)
}

func (m Match) matches(p *PodPhases) bool {
	if m.Label == "" {
		return p.Name == m.Value
	}
	return p.Labels[m.Label] == m.Value
}

// Lookup returns the latest known state of the pods matching m.
func (w *Watcher) Lookup(m Match) []PodPhases {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []PodPhases
	for _, p := range w.pods {
		if m.matches(p) {
			out = append(out, *p)
		}
	}
	return out
}

// Count returns how many watched pods satisfy pred.
func (w *Watcher) Count(pred func(PodPhases) bool) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, p := range w.pods {
		if pred(*p) {
			n++
		}
	}
	return n
}

// Wait blocks until a pod matching m satisfies until, and returns its
// state. When ctx ends first it returns the latest state of a matching pod
// (zero if none was seen) and ctx's error.
func (w *Watcher) Wait(ctx context.Context, m Match, until func(PodPhases) bool) (PodPhases, error) {
	wt := &waiter{ch: make(chan PodPhases, 1)}
	key := m.key()
	w.mu.Lock()
	var last PodPhases
	for _, p := range w.pods {
		if m.matches(p) {
			last = *p
			if until(last) {
				w.mu.Unlock()
				return last, nil
			}
		}
	}
	w.addWaiterLocked(key, wt)
	w.mu.Unlock()
	defer w.removeWaiter(key, wt)
	for {
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case p := <-wt.ch:
			last = p
			if until(p) {
				return p, nil
			}
		}
	}
}

// addWaiterLocked registers wt for the pods of key; w.mu is held.
func (w *Watcher) addWaiterLocked(key string, wt *waiter) {
	if w.waiters[key] == nil {
		w.waiters[key] = map[*waiter]struct{}{}
	}
	w.waiters[key][wt] = struct{}{}
}

// removeWaiter undoes addWaiterLocked.
func (w *Watcher) removeWaiter(key string, wt *waiter) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.waiters[key], wt)
	if len(w.waiters[key]) == 0 {
		delete(w.waiters, key)
	}
}

// WaitGone blocks until no watched pod matches m (at once when none does).
func (w *Watcher) WaitGone(ctx context.Context, m Match) error {
	wt := &waiter{ch: make(chan PodPhases, 1)}
	key := m.key()
	exists := func() bool {
		for _, p := range w.pods {
			if m.matches(p) {
				return true
			}
		}
		return false
	}
	w.mu.Lock()
	if !exists() {
		w.mu.Unlock()
		return nil
	}
	w.addWaiterLocked(key, wt)
	w.mu.Unlock()
	defer w.removeWaiter(key, wt)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wt.ch:
			w.mu.Lock()
			gone := !exists()
			w.mu.Unlock()
			if gone {
				return nil
			}
		}
	}
}
