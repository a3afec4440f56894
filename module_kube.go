package cdeload

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/grafana/sobek"
	"k8s.io/apimachinery/pkg/labels"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"

	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/sshtraffic"
	"github.com/cdeload/cdeload/workspace"
	"github.com/cdeload/cdeload/workspace/kube"
)

// Metric names of the Kubernetes pod phases (a contract, see the README).
const (
	mPodSchedule = "workspace_pod_schedule_duration"
	mPodStart    = "workspace_pod_start_duration"
	mPodsPending = "workspace_pods_pending"
)

// Timings of the Kubernetes side.
const (
	kubeStartTimeout  = time.Minute     // first list of the shared informer
	kubePhaseLag      = 5 * time.Second // the informer catching up with a ready workspace
	kubePendingSample = time.Second     // workspace_pods_pending sampling period
)

// kubeOptions are the `kubernetes` options of new Coder(...), and the
// cluster options of new Kubernetes(...).
type kubeOptions struct {
	namespace, kubeconfig, context, selector string
}

// kubeFields returns the option parsers of o's keys.
func kubeFields(o *kubeOptions) fields {
	return fields{
		"namespace":  func(v sobek.Value) (err error) { o.namespace, err = asNonEmpty(v); return err },
		"kubeconfig": func(v sobek.Value) (err error) { o.kubeconfig, err = asNonEmpty(v); return err },
		"context":    func(v sobek.Value) (err error) { o.context, err = asNonEmpty(v); return err },
		"selector": func(v sobek.Value) error {
			s, err := asNonEmpty(v)
			if err != nil {
				return err
			}
			if _, err := labels.Parse(s); err != nil {
				return fmt.Errorf("not a label selector: %w", err)
			}
			o.selector = s
			return nil
		},
	}
}

// parseKube parses the `kubernetes` option of op.
func (mi *instance) parseKube(op string, v sobek.Value) (*kubeOptions, error) {
	o := &kubeOptions{}
	if err := parseOptions(v, true, kubeFields(o)); err != nil {
		return nil, err
	}
	if o.namespace == "" {
		return nil, fmt.Errorf("namespace is required")
	}
	return o, nil
}

func (o kubeOptions) key() string {
	return fmt.Sprintf("%q %q %q %q", o.kubeconfig, o.context, o.namespace, o.selector)
}

func (o kubeOptions) restConfig() (*rest.Config, error) {
	return kube.ClientConfig{Kubeconfig: o.kubeconfig, Context: o.context}.RESTConfig()
}

// kubeWatchers are the process's shared pod informers, one per cluster,
// namespace and selector.
type kubeWatchers struct {
	mu  sync.Mutex
	m   map[string]*sharedWatcher
	ssh map[string]kubeSSH // by workspace address and name
	// addrs are the addresses of the Kubernetes workspaces, by name, to
	// forget when they are deleted.
	addrs map[string]string
}

// kubeSSH are the SSH credentials of new Kubernetes({sshUser, sshKey})
// for its workspaces.
type kubeSSH struct {
	user string
	key  []byte
}

// rememberKubeSSH records the SSH credentials of a Kubernetes workspace,
// by address and name, as defaults of ssh.connect; none (the zero value)
// replaces those of an earlier workspace at the same address.
func (r *RootModule) rememberKubeSSH(address, name string, c kubeSSH) {
	r.kube.mu.Lock()
	defer r.kube.mu.Unlock()
	if r.kube.ssh == nil {
		r.kube.ssh, r.kube.addrs = map[string]kubeSSH{}, map[string]string{}
	}
	r.kube.addrs[name] = address
	for _, k := range []string{address, name} {
		if k != "" {
			r.kube.ssh[k] = c
		}
	}
}

// forgetKubeWorkspaces forgets what was recorded of deleted Kubernetes
// workspaces (all of them when names is nil): their SSH credentials, and
// their address as a lab workspace's, which a later workspace of another
// lab may reuse.
func (r *RootModule) forgetKubeWorkspaces(names []string) {
	r.kube.mu.Lock()
	if names == nil {
		for n := range r.kube.addrs {
			names = append(names, n)
		}
	}
	forget := map[string]string{} // address → name
	for _, n := range names {
		if a, ok := r.kube.addrs[n]; ok {
			forget[a] = n
			delete(r.kube.ssh, a)
			delete(r.kube.ssh, n)
			delete(r.kube.addrs, n)
		}
	}
	r.kube.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	for a, n := range forget {
		if c, ok := r.coderAddrs[a]; ok && c.name == n {
			delete(r.coderAddrs, a)
		}
		if r.names[a] == n {
			delete(r.names, a)
		}
	}
}

// kubeSSHDefaults completes cfg with the credentials of the Kubernetes
// workspace host, for what the script did not set itself.
func (r *RootModule) kubeSSHDefaults(host string, cfg *sshtraffic.ClientConfig) {
	r.kube.mu.Lock()
	c, ok := r.kube.ssh[host]
	r.kube.mu.Unlock()
	if !ok {
		return
	}
	if cfg.User == "" {
		cfg.User = c.user
	}
	if len(cfg.PrivateKeyPEM) == 0 && cfg.Password == "" {
		cfg.PrivateKeyPEM = c.key
	}
}

// sharedWatcher is one shared informer and what this run tracks through
// it: the pods of its own workspaces, whose Pending count it samples.
type sharedWatcher struct {
	ready chan struct{}
	w     *kube.Watcher
	rest  *rest.Config
	core  corev1client.CoreV1Interface
	err   error

	mu      sync.Mutex
	tracked map[kube.Match]struct{}
	active  map[*emitter]int // emitters of calls in flight
	namer   *workspace.Namer // names of the Kubernetes provider's pods
	prov    *kube.Provider   // a provider of this run, for the cleanup on close
	stop    chan struct{}
	done    chan struct{}
}

// kubeWatcher returns the shared informer for o, starting it on first use.
func (r *RootModule) kubeWatcher(ctx context.Context, o kubeOptions) (*sharedWatcher, error) {
	r.kube.mu.Lock()
	if r.kube.m == nil {
		r.kube.m = map[string]*sharedWatcher{}
	}
	sw, ok := r.kube.m[o.key()]
	if !ok {
		sw = &sharedWatcher{ready: make(chan struct{}), tracked: map[kube.Match]struct{}{}, active: map[*emitter]int{}}
		r.kube.m[o.key()] = sw
	}
	r.kube.mu.Unlock()
	if !ok {
		sw.err = sw.start(o, r.runID+"k")
		if sw.err == nil {
			if err := r.onClose(sw.close); err != nil {
				sw.close()
				sw.err = err
			}
		}
		close(sw.ready)
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-sw.ready:
	}
	if sw.err != nil {
		return nil, sw.err
	}
	return sw, nil
}

func (sw *sharedWatcher) start(o kubeOptions, runID string) error {
	rc, err := o.restConfig()
	if err != nil {
		return err
	}
	core, err := corev1client.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("kubernetes client for %s: %w", rc.Host, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), kubeStartTimeout)
	defer cancel()
	w, err := kube.NewWatcher(ctx, kube.WatcherConfig{Client: core, Namespace: o.namespace, Selector: o.selector})
	if err != nil {
		return err
	}
	if sw.namer, err = workspace.NewNamer(runID); err != nil {
		w.Close()
		return err
	}
	sw.w, sw.rest, sw.core = w, rc, core
	sw.stop, sw.done = make(chan struct{}), make(chan struct{})
	go sw.samplePending()
	return nil
}

func (sw *sharedWatcher) close() error {
	err := sw.cleanupOnClose()
	close(sw.stop)
	<-sw.done
	sw.w.Close()
	return err
}

// track adds a pod of this run (counted in workspace_pods_pending).
func (sw *sharedWatcher) track(m kube.Match) {
	sw.mu.Lock()
	sw.tracked[m] = struct{}{}
	sw.mu.Unlock()
}

// begin registers e, the emitter of a call in flight, for the
// workspace_pods_pending samples until the returned func is called. The
// samples go out through the emitter of a call still in flight only, so
// none is sent after the VU's calls returned.
func (sw *sharedWatcher) begin(e *emitter) (end func()) {
	if e == nil || e.ms == nil {
		return func() {}
	}
	sw.mu.Lock()
	sw.active[e]++
	sw.mu.Unlock()
	return func() {
		sw.mu.Lock()
		if sw.active[e]--; sw.active[e] == 0 {
			delete(sw.active, e)
		}
		sw.mu.Unlock()
	}
}

// samplePending emits workspace_pods_pending every second while a call
// that tracks pods is in flight.
func (sw *sharedWatcher) samplePending() {
	defer close(sw.done)
	t := time.NewTicker(kubePendingSample)
	defer t.Stop()
	for {
		select {
		case <-sw.stop:
			return
		case <-t.C:
		}
		sw.mu.Lock()
		var e *emitter
		for a := range sw.active {
			e = a
			break
		}
		if e != nil {
			n := 0
			for m := range sw.tracked {
				for _, p := range sw.w.Lookup(m) {
					if p.Pending {
						n++
					}
				}
			}
			e.push(e.sample(e.ms.byName[mPodsPending], float64(n)))
		}
		sw.mu.Unlock()
	}
}

// metaPhaseEnd is the sample metadata key of when a pod phase ended
// (RFC 3339, UTC): the samples go out later, once the workspace is ready,
// and the web dashboard's timeline places the phase by it.
const metaPhaseEnd = "phase_end"

// emitPodPhases emits the phase durations the pod reached.
func emitPodPhases(e *emitter, p kube.PodPhases) {
	if e == nil || e.ms == nil {
		return
	}
	end := func(t time.Time) *emitter {
		return e.withMeta(map[string]string{metaPhaseEnd: t.UTC().Format(time.RFC3339Nano)})
	}
	if d := p.ScheduleDuration(); d > 0 {
		e := end(p.Scheduled)
		e.push(e.sample(e.ms.byName[mPodSchedule], metrics.D(d)))
	}
	if d := p.StartDuration(); d > 0 {
		e := end(p.ContainersReady)
		e.push(e.sample(e.ms.byName[mPodStart], metrics.D(d)))
	}
}

// podReason returns the failure reason of the latest pod matching m
// ("" when none is known).
func (sw *sharedWatcher) podReason(m kube.Match) (reason, detail string) {
	for _, p := range sw.w.Lookup(m) {
		if p.Reason != "" {
			return p.Reason, fmt.Sprintf("pod %s: %s: %s", p.Name, p.Reason, p.Message)
		}
	}
	return "", ""
}
