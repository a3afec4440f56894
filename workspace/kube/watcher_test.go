package kube_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/cdeload/cdeload/internal/kubetest"
	"github.com/cdeload/cdeload/lab/kubelet"
	"github.com/cdeload/cdeload/workspace/kube"
)

// startKubelet runs a lab kubelet on env's namespace until the test ends.
func startKubelet(t *testing.T, env *kubetest.Env, cfg kubelet.Config) *kubelet.Kubelet {
	t.Helper()
	cfg.Client, cfg.Namespace = env.Core, env.Namespace
	if cfg.Node == "" {
		cfg.Node = "node-" + env.Namespace
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	k, err := kubelet.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := k.Close(); err != nil {
			t.Error(err)
		}
	})
	return k
}

func startWatcher(t *testing.T, env *kubetest.Env) *kube.Watcher {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := kube.NewWatcher(ctx, kube.WatcherConfig{Client: env.Core, Namespace: env.Namespace, Selector: kube.CoderSelector})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return w
}

// createCoderPod creates a pod labelled as Coder's Kubernetes template
// labels a workspace's pod.
func createCoderPod(t *testing.T, c corev1client.CoreV1Interface, ns, workspace string) *corev1.Pod {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "coder-" + workspace, Labels: map[string]string{
			kube.LabelAppName:       kube.AppCoderWorkspace,
			kube.LabelWorkspaceID:   "id-" + workspace,
			kube.LabelWorkspaceName: workspace,
			kube.LabelUsername:      "scaletest-user",
		}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "dev", Image: "codercom/enterprise-base:ubuntu"}}},
	}
	p, err := c.Pods(ns).Create(context.Background(), p, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func within(t *testing.T, what string, got, want, tol time.Duration) {
	t.Helper()
	if got < want-tol || got > want+tol {
		t.Errorf("%s = %v, want %v ± %v", what, got, want, tol)
	}
}

// The phase timings follow the lab kubelet's sub-second latencies to
// within 50 ms of the configured latency, although the API server's
// condition timestamps have whole seconds. The watcher times each change
// when its watch delivered it, and the kubelet runs its delays from when
// its own watch delivered the pod and from its binding: what remains is one
// watch delivery, one API write and the timers' lateness.
//
// On a busy machine an API write of the kubelet's can take hundreds of
// milliseconds; its own clock then shows the phase took that much longer,
// and the watcher rightly measures it long. Such a phase says nothing about
// cdeload's timing, so it is logged and not compared, and more pods are
// made (bounded) until three of each phase come from an on-time kubelet.
func TestWatcherPhaseTimings(t *testing.T) {
	env := kubetest.New(t)
	w := startWatcher(t, env)
	const sched, pull, start = 300 * time.Millisecond, 200 * time.Millisecond, 150 * time.Millisecond
	const tolerance = 50 * time.Millisecond
	const kubeletLate = 20 * time.Millisecond // beyond this, the kubelet missed its own target
	const want, maxPods = 3, 10
	kl := startKubelet(t, env, kubelet.Config{ScheduleDelay: sched, PullDelay: pull, StartDelay: start})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var schedCompared, startCompared int
	for i := 0; i < maxPods && (schedCompared < want || startCompared < want); i++ {
		name := fmt.Sprintf("ws-%d", i)
		pod := createCoderPod(t, env.Core, env.Namespace, name)
		p, err := w.Wait(ctx, kube.ByLabel(kube.LabelWorkspaceID, "id-"+name), kube.PodPhases.Ready)
		if err != nil {
			t.Fatalf("%s: %v (last state %+v)", name, err, p)
		}
		if p.Reason != "" || p.IP == "" || p.Labels[kube.LabelWorkspaceName] != name {
			t.Errorf("%s: ready pod %+v: want no reason, an IP and the workspace label", name, p)
		}
		// What the kubelet's own clock says it achieved. The watch may
		// deliver the ready status before the kubelet's write returns:
		// wait (bounded) for the kubelet to record it.
		var tl kubelet.Timeline
		for end := time.Now().Add(5 * time.Second); tl.Ready.IsZero() && time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
			tl, _ = kl.Timeline(string(pod.UID))
		}
		if tl.Ready.IsZero() {
			t.Fatalf("%s: the kubelet recorded no ready time", name)
		}
		for _, ph := range []struct {
			what                      string
			measured, configured, got time.Duration
			compared                  *int
		}{
			{"schedule", p.ScheduleDuration(), sched, tl.Bound.Sub(tl.Seen), &schedCompared},
			{"start", p.StartDuration(), pull + start, tl.Ready.Sub(tl.Bound), &startCompared},
		} {
			if ph.got > ph.configured+kubeletLate {
				t.Logf("%s: %s phase %v, configured %v, but the kubelet's own clock says %v: not compared", name, ph.what, ph.measured, ph.configured, ph.got)
				continue
			}
			within(t, name+" "+ph.what+" duration", ph.measured, ph.configured, tolerance)
			*ph.compared++
		}
	}
	if schedCompared < want || startCompared < want {
		t.Fatalf("the kubelet was on time for %d schedule and %d start phases of %d pods, want %d of each: the machine was too busy to check the timings", schedCompared, startCompared, maxPods, want)
	}
	if n := w.Count(func(p kube.PodPhases) bool { return p.Pending }); n != 0 {
		t.Errorf("pending pods after all became ready: %d, want 0", n)
	}
}

// A pod that never becomes ready carries the reason a cluster gives.
func TestWatcherFailureReasons(t *testing.T) {
	for _, tc := range []struct {
		faults kubelet.Faults
		reason string
	}{
		{kubelet.Faults{Unschedulable: 1}, kube.ReasonUnschedulable},
		{kubelet.Faults{ImagePullBackOff: 1}, kube.ReasonImagePullBackOff},
		{kubelet.Faults{Crash: 1}, kube.ReasonCrashLoopBackOff},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			env := kubetest.New(t)
			w := startWatcher(t, env)
			startKubelet(t, env, kubelet.Config{Faults: tc.faults, ScheduleDelay: 50 * time.Millisecond})
			createCoderPod(t, env.Core, env.Namespace, "ws")
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			p, err := w.Wait(ctx, kube.ByLabel(kube.LabelWorkspaceName, "ws"), func(p kube.PodPhases) bool { return p.Reason != "" || p.Ready() })
			if err != nil {
				t.Fatalf("%v (last state %+v)", err, p)
			}
			if p.Reason != tc.reason || p.Ready() {
				t.Errorf("pod state %+v: want reason %s and not ready", p, tc.reason)
			}
			if !p.Pending {
				t.Errorf("pod with %s is not Pending: %+v", tc.reason, p)
			}
		})
	}
}

// A user without RBAC permissions gets an error naming the permission,
// quickly, rather than an informer retrying forever.
func TestWatcherForbidden(t *testing.T) {
	env := kubetest.New(t)
	c, err := corev1client.NewForConfig(env.Tester)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	_, err = kube.NewWatcher(ctx, kube.WatcherConfig{Client: c, Namespace: env.Namespace})
	want := "forbidden: needs list on pods in " + env.Namespace
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("NewWatcher as tester: err = %v, want it to contain %q", err, want)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("forbidden error took %v", d)
	}
}
