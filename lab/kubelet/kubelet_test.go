package kubelet_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/cdeload/cdeload/internal/kubetest"
	"github.com/cdeload/cdeload/lab/kubelet"
)

// workloads records the pods whose workload was started and stopped.
type workloads struct {
	ip               string
	mu               sync.Mutex
	started, stopped []string
}

func (w *workloads) Start(_ context.Context, p *corev1.Pod) (string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.started = append(w.started, p.Name)
	return w.ip, nil
}

func (w *workloads) Stop(p *corev1.Pod) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = append(w.stopped, p.Name)
}

func (w *workloads) seen() (started, stopped []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.started), slices.Clone(w.stopped)
}

// startKubelet starts a lab kubelet on env's namespace with a Node of its
// own, closed at the end of the test.
func startKubelet(t *testing.T, env *kubetest.Env, cfg kubelet.Config) (*kubelet.Kubelet, string) {
	t.Helper()
	cfg.Client, cfg.Namespace, cfg.Node = env.Core, env.Namespace, "lab-"+env.Namespace
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	k, err := kubelet.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.Close() }) // a second Close is harmless
	return k, cfg.Node
}

// createAndWatch creates a pod and returns its states as the watch
// delivered them, until stop says so.
func createAndWatch(t *testing.T, env *kubetest.Env, name string, stop func(*corev1.Pod) bool) []*corev1.Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := env.Core.Pods(env.Namespace).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if _, err := env.Core.Pods(env.Namespace).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "dev", Image: "codercom/enterprise-base"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var seen []*corev1.Pod
	for ev := range w.ResultChan() {
		p, ok := ev.Object.(*corev1.Pod)
		if !ok || ev.Type == watch.Error {
			t.Fatalf("watch of pod %s: %v", name, ev.Object)
		}
		seen = append(seen, p)
		if stop(p) {
			return seen
		}
	}
	t.Fatalf("pod %s: watch ended (%v) after %d events without reaching the expected state", name, ctx.Err(), len(seen))
	return nil
}

func conditionStatus(p *corev1.Pod, t corev1.PodConditionType) (corev1.ConditionStatus, string) {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status, c.Reason
		}
	}
	return "", ""
}

// The kubelet registers a Ready Node, binds a new pod to it and walks it
// through PodScheduled, Initialized, then ContainersReady and Ready with
// the configured latencies, reporting the workload's IP; deleting the pod
// stops its workload; Close deletes the Node.
func TestKubeletWalksPodConditions(t *testing.T) {
	env := kubetest.New(t)
	wl := &workloads{ip: "127.0.0.9"}
	const pull, start = 150 * time.Millisecond, 100 * time.Millisecond
	k, node := startKubelet(t, env, kubelet.Config{ScheduleDelay: 50 * time.Millisecond, PullDelay: pull, StartDelay: start, Workloads: wl})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	n, err := env.Core.Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the kubelet's node: %v", err)
	}
	ready := false
	for _, c := range n.Status.Conditions {
		ready = ready || c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue
	}
	if !ready {
		t.Errorf("node %s conditions %+v: want Ready=True", node, n.Status.Conditions)
	}

	seen := createAndWatch(t, env, "ws-1", func(p *corev1.Pod) bool {
		s, _ := conditionStatus(p, corev1.PodReady)
		return s == corev1.ConditionTrue
	})
	// The order of the states the watch delivered: each condition turns
	// True no earlier than the one before it in the walk.
	order := []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady}
	first := map[corev1.PodConditionType]int{}
	for i, p := range seen {
		for _, c := range order {
			if s, _ := conditionStatus(p, c); s == corev1.ConditionTrue {
				if _, ok := first[c]; !ok {
					first[c] = i
				}
			}
		}
	}
	for i := 1; i < len(order); i++ {
		if first[order[i]] < first[order[i-1]] {
			t.Errorf("%s True at event %d, before %s (event %d)", order[i], first[order[i]], order[i-1], first[order[i-1]])
		}
	}
	if first[corev1.ContainersReady] == first[corev1.PodScheduled] {
		t.Errorf("the pod went from created to ContainersReady in one update (events %v): want the bound, pulling state in between", first)
	}
	p := seen[len(seen)-1]
	if p.Spec.NodeName != node || p.Status.Phase != corev1.PodRunning || p.Status.PodIP != wl.ip {
		t.Errorf("ready pod: node %q, phase %s, IP %q; want node %s, Running, the workload's IP %s", p.Spec.NodeName, p.Status.Phase, p.Status.PodIP, node, wl.ip)
	}
	// The kubelet notes Ready once the API server acknowledged the write,
	// which may be just after the watch delivered it.
	tl, ok := k.Timeline(string(p.UID))
	for ok && tl.Ready.IsZero() && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
		tl, ok = k.Timeline(string(p.UID))
	}
	if !ok || tl.Bound.Before(tl.Seen) || tl.Ready.Sub(tl.Bound) < pull+start {
		t.Errorf("timeline %+v (known %v): want seen ≤ bound, bound + %v ≤ ready", tl, ok, pull+start)
	}
	if started, _ := wl.seen(); !slices.Equal(started, []string{"ws-1"}) {
		t.Errorf("workloads started %v, want [ws-1]", started)
	}

	// A graceful delete waits for the kubelet, which stops the workload
	// and finishes the deletion.
	if err := env.Core.Pods(env.Namespace).Delete(ctx, "ws-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := env.Core.Pods(env.Namespace).Get(ctx, "ws-1", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("pod ws-1 still there after its delete: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // polling the test's own check
	}
	if _, stopped := wl.seen(); !slices.Equal(stopped, []string{"ws-1"}) {
		t.Errorf("workloads stopped %v, want [ws-1]", stopped)
	}

	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Core.Nodes().Get(ctx, node, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("node %s after Close: %v, want NotFound", node, err)
	}
}

// With an Unschedulable rate of 1 every pod stays Pending, unbound, with
// PodScheduled=False and reason Unschedulable, and no workload starts.
func TestKubeletUnschedulableFault(t *testing.T) {
	env := kubetest.New(t)
	wl := &workloads{}
	startKubelet(t, env, kubelet.Config{ScheduleDelay: 20 * time.Millisecond, Faults: kubelet.Faults{Unschedulable: 1}, Workloads: wl})
	seen := createAndWatch(t, env, "ws-unschedulable", func(p *corev1.Pod) bool {
		s, _ := conditionStatus(p, corev1.PodScheduled)
		return s != ""
	})
	p := seen[len(seen)-1]
	s, reason := conditionStatus(p, corev1.PodScheduled)
	if s != corev1.ConditionFalse || reason != corev1.PodReasonUnschedulable {
		t.Errorf("PodScheduled = %s, reason %q; want False, %s", s, reason, corev1.PodReasonUnschedulable)
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && !strings.Contains(c.Message, "nodes are available") {
			t.Errorf("Unschedulable message %q: want the scheduler's form", c.Message)
		}
	}
	if p.Spec.NodeName != "" || p.Status.Phase != corev1.PodPending {
		t.Errorf("unschedulable pod: node %q, phase %s; want unbound and Pending", p.Spec.NodeName, p.Status.Phase)
	}
	if started, _ := wl.seen(); len(started) != 0 {
		t.Errorf("workloads started for an unschedulable pod: %v", started)
	}
}

// Fault rates outside 0..1, or summing above 1, are refused.
func TestKubeletRejectsBadFaultRates(t *testing.T) {
	env := kubetest.New(t)
	for _, f := range []kubelet.Faults{{Unschedulable: 1.5}, {Crash: -0.1}, {Unschedulable: 0.6, ImagePullBackOff: 0.5}} {
		_, err := kubelet.Start(context.Background(), kubelet.Config{Client: env.Core, Namespace: env.Namespace, Node: "unused", Faults: f})
		if err == nil || !strings.Contains(err.Error(), "fault rate") {
			t.Errorf("faults %+v: err %v, want a fault rate error", f, err)
		}
	}
}
