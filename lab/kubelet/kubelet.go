// Package kubelet is the lab's kubelet: it registers a Node in a real API
// server, binds the namespace's Pending pods to it and walks them through
// Kubernetes' real status conditions (PodScheduled, Initialized,
// ContainersReady, Ready) with configurable latencies and failure rates,
// starting a workload for each pod that becomes ready (in the lab: a
// tailnet node with an SSH server). It runs no containers.
package kubelet

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
)

// Workloads starts and stops what runs "inside" a pod.
type Workloads interface {
	// Start starts the pod's workload and returns its IP address ("" for
	// Config.PodIP).
	Start(ctx context.Context, pod *corev1.Pod) (ip string, err error)
	// Stop stops the pod's workload; it is called once per started pod.
	Stop(pod *corev1.Pod)
}

// Faults are the probabilities (0..1, summing to at most 1) that a pod
// fails in one of the ways a real cluster fails it.
type Faults struct {
	// Unschedulable: PodScheduled=False, reason Unschedulable (no node fits).
	Unschedulable float64
	// ImagePullBackOff: the container waits in ErrImagePull, then ImagePullBackOff.
	ImagePullBackOff float64
	// Crash: the container exits and waits in CrashLoopBackOff.
	Crash float64
}

// Config configures a Kubelet.
type Config struct {
	// Client is the core/v1 client (required; it needs pods get, list,
	// watch, update status, bind and delete, and nodes create, update status
	// and delete).
	Client corev1client.CoreV1Interface
	// Namespace is the namespace whose pods this kubelet runs (required).
	Namespace string
	// Node is the Node's name (required); it is created by Start and
	// deleted by Close.
	Node string
	// Selector narrows the pods handled ("" for all in the namespace).
	Selector string
	// ScheduleDelay is pod seen → bound (PodScheduled=True).
	ScheduleDelay time.Duration
	// PullDelay is bound → image pulled.
	PullDelay time.Duration
	// StartDelay is image pulled → containers ready.
	StartDelay time.Duration
	// Faults are the failure rates.
	Faults Faults
	// Seed seeds the fault choice (0: random).
	Seed uint64
	// PodIP is the IP reported for pods without a workload ("" for 127.0.0.1).
	PodIP string
	// Workloads, if set, runs each pod that becomes ready.
	Workloads Workloads
}

// Kubelet is a running lab kubelet.
type Kubelet struct {
	cfg      Config
	informer cache.SharedIndexInformer
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	infDone  chan struct{}

	mu      sync.Mutex
	rnd     *rand.Rand
	running map[string]*podRun // by pod UID
	// received is when the watch first delivered each pod (by UID), stamped
	// as the reflector queues it: the reference of the schedule delay.
	received map[string]time.Time
}

type podRun struct {
	cancel context.CancelFunc
	pod    *corev1.Pod
	times  Timeline
	// boundSeen is when the watch delivered the pod bound to this node;
	// bound is closed then (nil for a pod this kubelet does not walk).
	boundSeen time.Time
	bound     chan struct{}
	started   bool // the workload was started (Stop is due)
	stopped   bool
	gone      bool // delete with grace 0 was sent
}

// Timeline is when the kubelet's watch delivered a pod and its binding,
// and when the API server acknowledged its ready status (zero for steps
// not reached). The delays run from the first two.
type Timeline struct {
	// Seen is when the kubelet's watch delivered the new pod (as the
	// informer received it, before its own queueing).
	Seen time.Time
	// Bound is when the kubelet's watch delivered the binding
	// (PodScheduled=True), or when the API server acknowledged it if the
	// watch did not deliver it within boundSeenWait.
	Bound time.Time
	// Ready is when the status with ContainersReady=True was acknowledged.
	Ready time.Time
}

// Timeline returns the timeline of the pod with the given UID, while the
// pod exists.
func (k *Kubelet) Timeline(uid string) (Timeline, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	r := k.running[uid]
	if r == nil {
		return Timeline{}, false
	}
	return r.times, true
}

func (k *Kubelet) mark(r *podRun, set func(*Timeline)) {
	k.mu.Lock()
	set(&r.times)
	k.mu.Unlock()
}

// Start registers the Node and starts handling pods.
func Start(ctx context.Context, cfg Config) (*Kubelet, error) {
	if cfg.Client == nil || cfg.Namespace == "" || cfg.Node == "" {
		return nil, errors.New("lab kubelet: client, namespace and node are required")
	}
	f := cfg.Faults
	for _, r := range []float64{f.Unschedulable, f.ImagePullBackOff, f.Crash} {
		if r < 0 || r > 1 {
			return nil, fmt.Errorf("lab kubelet: fault rate %v: want 0..1", r)
		}
	}
	if s := f.Unschedulable + f.ImagePullBackOff + f.Crash; s > 1 {
		return nil, fmt.Errorf("lab kubelet: fault rates sum to %v: want at most 1", s)
	}
	if cfg.PodIP == "" {
		cfg.PodIP = "127.0.0.1"
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	if err := registerNode(ctx, cfg.Client, cfg.Node); err != nil {
		return nil, err
	}
	k := &Kubelet{cfg: cfg, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), running: map[string]*podRun{}, received: map[string]time.Time{}, infDone: make(chan struct{})}
	k.ctx, k.cancel = context.WithCancel(context.Background())
	lw := cache.NewFilteredListWatchFromClient(cfg.Client.RESTClient(), "pods", cfg.Namespace, func(o *metav1.ListOptions) {
		o.LabelSelector = cfg.Selector
	})
	k.informer = cache.NewSharedIndexInformer(lw, &corev1.Pod{}, 0, cache.Indexers{})
	if err := k.informer.SetTransform(k.stampReceived); err != nil {
		return nil, fmt.Errorf("lab kubelet: %w", err)
	}
	if _, err := k.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { k.onPod(obj) },
		UpdateFunc: func(_, obj any) { k.onPod(obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if p, ok := obj.(*corev1.Pod); ok {
				k.forget(p)
			}
		},
	}); err != nil {
		return nil, fmt.Errorf("lab kubelet: %w", err)
	}
	go func() {
		defer close(k.infDone)
		k.informer.Run(k.ctx.Done())
	}()
	k.wg.Add(1)
	go k.heartbeat()
	if !cache.WaitForCacheSync(ctx.Done(), k.informer.HasSynced) {
		k.Close()
		return nil, fmt.Errorf("lab kubelet: list pods in %s: %w", cfg.Namespace, ctx.Err())
	}
	return k, nil
}

// Close stops handling pods, stops every workload and deletes the Node.
func (k *Kubelet) Close() error {
	k.cancel()
	<-k.infDone
	k.wg.Wait()
	k.mu.Lock()
	var stop []*podRun
	for _, r := range k.running {
		if r.started && !r.stopped {
			r.stopped = true
			stop = append(stop, r)
		}
	}
	k.mu.Unlock()
	for _, r := range stop {
		k.cfg.Workloads.Stop(r.pod)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := k.cfg.Client.Nodes().Delete(ctx, k.cfg.Node, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("lab kubelet: delete node %s: %w", k.cfg.Node, err)
	}
	return nil
}

// registerNode creates the Node (or takes over one of the same name) and
// marks it Ready.
func registerNode(ctx context.Context, c corev1client.CoreV1Interface, name string) error {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		"kubernetes.io/hostname": name, "type": "cdeload-lab",
	}}}
	if _, err := c.Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("lab kubelet: register node %s: %w", name, err)
	}
	return updateNodeReady(ctx, c, name)
}

func updateNodeReady(ctx context.Context, c corev1client.CoreV1Interface, name string) error {
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		n, err := c.Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.Now()
		ready := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			Message: "cdeload lab kubelet", LastHeartbeatTime: now, LastTransitionTime: now}
		found := false
		for i := range n.Status.Conditions {
			if n.Status.Conditions[i].Type == corev1.NodeReady {
				ready.LastTransitionTime = n.Status.Conditions[i].LastTransitionTime
				n.Status.Conditions[i] = ready
				found = true
			}
		}
		if !found {
			n.Status.Conditions = append(n.Status.Conditions, ready)
		}
		n.Status.Capacity = corev1.ResourceList{}
		_, err = c.Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("lab kubelet: node %s status: %w", name, err)
	}
	return nil
}

// heartbeatInterval keeps the node Ready in the node lifecycle
// controller's eyes (it marks a node unknown after 40 s of silence).
const heartbeatInterval = 10 * time.Second

func (k *Kubelet) heartbeat() {
	defer k.wg.Done()
	t := time.NewTicker(heartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-k.ctx.Done():
			return
		case <-t.C:
			_ = updateNodeReady(k.ctx, k.cfg.Client, k.cfg.Node)
		}
	}
}

// stampReceived notes when the watch first delivered a pod. The informer
// calls it as the reflector queues each object, so the time excludes the
// informer's queueing and the handlers' turn: the schedule delay then
// runs from the pod's creation as closely as a watch can tell.
// The binding's delivery is noted the same way: the start delays run from
// it, as an observer's watch sees the pod scheduled.
func (k *Kubelet) stampReceived(obj any) (any, error) {
	if p, ok := obj.(*corev1.Pod); ok {
		now := time.Now()
		uid := string(p.UID)
		k.mu.Lock()
		if _, ok := k.received[uid]; !ok {
			k.received[uid] = now
		}
		if r := k.running[uid]; r != nil && r.bound != nil && r.boundSeen.IsZero() && p.Spec.NodeName == k.cfg.Node {
			r.boundSeen = now
			close(r.bound)
		}
		k.mu.Unlock()
	}
	return obj, nil
}

// boundSeenWait bounds the wait for the kubelet's watch to deliver a
// binding the API server acknowledged.
const boundSeenWait = 5 * time.Second

// boundAt returns when the watch delivered r's binding, or acked when it
// does not within boundSeenWait (or ctx ends).
func (k *Kubelet) boundAt(ctx context.Context, r *podRun, acked time.Time) time.Time {
	t := time.NewTimer(boundSeenWait)
	defer t.Stop()
	select {
	case <-r.bound:
		k.mu.Lock()
		defer k.mu.Unlock()
		return r.boundSeen
	case <-ctx.Done():
	case <-t.C:
	}
	return acked
}

// onPod starts a new unbound pod's walk, and finishes the deletion of a
// pod bound to this node (as a kubelet does after its containers stop).
func (k *Kubelet) onPod(obj any) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	uid := string(p.UID)
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.ctx.Err() != nil {
		return
	}
	r := k.running[uid]
	if p.DeletionTimestamp != nil {
		if p.Spec.NodeName == k.cfg.Node && (r == nil || !r.gone) {
			if r == nil {
				r = &podRun{pod: p, cancel: func() {}}
				k.running[uid] = r
			}
			r.gone = true
			r.cancel()
			k.wg.Add(1)
			go k.finishDelete(r, p)
		}
		return
	}
	if r != nil || p.Spec.NodeName != "" || condition(p, corev1.PodScheduled) != nil {
		return // already ours, or another scheduler's / kubelet's
	}
	seen, ok := k.received[uid]
	if !ok {
		seen = time.Now()
	}
	ctx, cancel := context.WithCancel(k.ctx)
	r = &podRun{cancel: cancel, pod: p, times: Timeline{Seen: seen}, bound: make(chan struct{})}
	k.running[uid] = r
	fault := k.pickFault()
	k.wg.Add(1)
	go k.walk(ctx, r, p, fault, r.times.Seen)
}

// forget drops a deleted pod, stopping its workload.
func (k *Kubelet) forget(p *corev1.Pod) {
	k.mu.Lock()
	r := k.running[string(p.UID)]
	delete(k.running, string(p.UID))
	delete(k.received, string(p.UID))
	stop := r != nil && r.started && !r.stopped
	if r != nil {
		r.stopped = true
		r.cancel()
	}
	k.mu.Unlock()
	if stop {
		k.cfg.Workloads.Stop(r.pod)
	}
}

func (k *Kubelet) finishDelete(r *podRun, p *corev1.Pod) {
	defer k.wg.Done()
	k.mu.Lock()
	stop := r.started && !r.stopped
	r.stopped = true
	k.mu.Unlock()
	if stop {
		k.cfg.Workloads.Stop(r.pod)
	}
	zero := int64(0)
	uid := p.UID
	err := k.cfg.Client.Pods(p.Namespace).Delete(k.ctx, p.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &uid},
	})
	_ = err // NotFound or a conflict: the pod is gone already
}

type fault int

const (
	noFault fault = iota
	faultUnschedulable
	faultImagePull
	faultCrash
)

func (k *Kubelet) pickFault() fault {
	f := k.cfg.Faults
	u := k.rnd.Float64()
	switch {
	case u < f.Unschedulable:
		return faultUnschedulable
	case u < f.Unschedulable+f.ImagePullBackOff:
		return faultImagePull
	case u < f.Unschedulable+f.ImagePullBackOff+f.Crash:
		return faultCrash
	}
	return noFault
}

// sleepUntil waits until t or ctx's end.
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// walk takes one pod from Pending to Ready (or to its fault).
func (k *Kubelet) walk(ctx context.Context, r *podRun, p *corev1.Pod, f fault, seen time.Time) {
	defer k.wg.Done()
	cfg := k.cfg
	pods := cfg.Client.Pods(p.Namespace)
	if sleepUntil(ctx, seen.Add(cfg.ScheduleDelay)) != nil {
		return
	}
	if f == faultUnschedulable {
		_ = k.setStatus(ctx, &p, func(s *corev1.PodStatus) {
			s.Phase = corev1.PodPending
			setCondition(s, corev1.PodScheduled, corev1.ConditionFalse, corev1.PodReasonUnschedulable,
				"0/1 nodes are available: 1 Insufficient cpu (lab kubelet fault).")
		})
		return
	}
	b := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, UID: p.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: cfg.Node},
	}
	if err := pods.Bind(ctx, b, metav1.CreateOptions{}); err != nil {
		return // deleted meanwhile, or bound by someone else
	}
	bound := k.boundAt(ctx, r, time.Now())
	k.mark(r, func(t *Timeline) { t.Bound = bound })
	// The binding changed the pod: the next status write is unconditional
	// (this kubelet is the only writer of its pods' status) rather than a
	// conflict, a get and a retry that would delay the walk.
	p = p.DeepCopy()
	p.ResourceVersion = ""
	name := "workload"
	if len(p.Spec.Containers) > 0 {
		name = p.Spec.Containers[0].Name
	}
	image := ""
	if len(p.Spec.Containers) > 0 {
		image = p.Spec.Containers[0].Image
	}
	// The workload starts while the "image" is pulled, so that a slow
	// workload start does not add to the configured latencies.
	type started struct {
		ip  string
		err error
	}
	var wl chan started
	if f == noFault && cfg.Workloads != nil {
		wl = make(chan started, 1)
		k.mu.Lock()
		r.started = true
		k.mu.Unlock()
		pod := p
		go func() {
			ip, err := cfg.Workloads.Start(ctx, pod)
			wl <- started{ip, err}
		}()
	}
	_ = k.setStatus(ctx, &p, func(s *corev1.PodStatus) {
		s.Phase = corev1.PodPending
		s.HostIP = "127.0.0.1"
		setCondition(s, corev1.PodScheduled, corev1.ConditionTrue, "", "")
		setCondition(s, corev1.PodInitialized, corev1.ConditionTrue, "", "")
		s.ContainerStatuses = []corev1.ContainerStatus{{Name: name, Image: image,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}}
	})
	if sleepUntil(ctx, bound.Add(cfg.PullDelay)) != nil {
		return
	}
	if f == faultImagePull {
		msg := fmt.Sprintf("Back-off pulling image %q (lab kubelet fault)", image)
		_ = k.setStatus(ctx, &p, func(s *corev1.PodStatus) {
			s.ContainerStatuses = []corev1.ContainerStatus{{Name: name, Image: image,
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: msg}}}}
		})
		return
	}
	if sleepUntil(ctx, bound.Add(cfg.PullDelay+cfg.StartDelay)) != nil {
		return
	}
	if f == faultCrash {
		_ = k.setStatus(ctx, &p, func(s *corev1.PodStatus) {
			s.ContainerStatuses = []corev1.ContainerStatus{{Name: name, Image: image, RestartCount: 1,
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
					Message: "back-off restarting failed container (lab kubelet fault)"}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}}}}
		})
		return
	}
	ip := cfg.PodIP
	if wl != nil {
		select {
		case <-ctx.Done():
			return
		case s := <-wl:
			if s.err != nil {
				_ = k.setStatus(ctx, &p, func(st *corev1.PodStatus) {
					st.ContainerStatuses = []corev1.ContainerStatus{{Name: name, Image: image, RestartCount: 1,
						State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
							Message: "lab workload: " + s.err.Error()}}}}
				})
				return
			}
			if s.ip != "" {
				ip = s.ip
			}
		}
	}
	now := metav1.Now()
	err := k.setStatus(ctx, &p, func(s *corev1.PodStatus) {
		s.Phase = corev1.PodRunning
		s.PodIP = ip
		s.PodIPs = []corev1.PodIP{{IP: ip}}
		s.StartTime = &now
		setCondition(s, corev1.ContainersReady, corev1.ConditionTrue, "", "")
		setCondition(s, corev1.PodReady, corev1.ConditionTrue, "", "")
		s.ContainerStatuses = []corev1.ContainerStatus{{Name: name, Image: image, Ready: true, Started: new(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}}}
	})
	if err == nil {
		k.mark(r, func(t *Timeline) { t.Ready = time.Now() })
	}
}

// setStatus applies change to the latest status of *p, writes it, and
// leaves the written pod in *p.
func (k *Kubelet) setStatus(ctx context.Context, p **corev1.Pod, change func(*corev1.PodStatus)) error {
	pods := k.cfg.Client.Pods((*p).Namespace)
	cur := (*p).DeepCopy()
	orig := *p
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		change(&cur.Status)
		out, err := pods.UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		if err == nil {
			*p = out
		}
		if apierrors.IsConflict(err) {
			latest, gerr := pods.Get(ctx, orig.Name, metav1.GetOptions{})
			if gerr != nil {
				return gerr
			}
			if latest.UID != orig.UID || latest.DeletionTimestamp != nil {
				return nil
			}
			cur = latest
		}
		return err
	})
}

// setCondition sets a pod condition, keeping its transition time when the
// status does not change.
func setCondition(s *corev1.PodStatus, t corev1.PodConditionType, status corev1.ConditionStatus, reason, msg string) {
	now := metav1.Now()
	for i := range s.Conditions {
		c := &s.Conditions[i]
		if c.Type == t {
			if c.Status != status {
				c.LastTransitionTime = now
			}
			c.Status, c.Reason, c.Message, c.LastProbeTime = status, reason, msg, metav1.Time{}
			return
		}
	}
	s.Conditions = append(s.Conditions, corev1.PodCondition{Type: t, Status: status, Reason: reason, Message: msg, LastTransitionTime: now})
}

func condition(p *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}
