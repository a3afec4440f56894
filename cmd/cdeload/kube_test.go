package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	appsv1client "k8s.io/client-go/kubernetes/typed/apps/v1"

	"github.com/cdeload/cdeload/engine/output/prometheusrw/promtest"
	"github.com/cdeload/cdeload/internal/kubetest"
)

// k8sExample is examples/k8s.js, run from this package's directory.
var k8sExample = filepath.Join("..", "..", "examples", "k8s.js")

// built is the cdeload binary, built once per test process by buildBin
// into binDir (removed by TestMain).
var (
	buildOnce sync.Once
	binDir    string
	binErr    error
)

// buildBin returns the cdeload binary, building it on first use.
func buildBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "cdeload-bin-"); binErr != nil {
			return
		}
		if out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, "cdeload"), ".").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return filepath.Join(binDir, "cdeload")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// startKubeLab runs `cdeload lab --kubernetes` on env's namespace with
// args, and returns its exports plus the KUBECONFIG of the API server.
func startKubeLab(t *testing.T, bin string, env *kubetest.Env, args ...string) map[string]string {
	t.Helper()
	vars := startLab(t, bin, append([]string{"--kubernetes", "--kubeconfig", env.Kubeconfig, "--kube-context", kubetest.AdminContext,
		"--kube-namespace", env.Namespace}, args...)...)
	if vars["CDELOAD_K8S_NAMESPACE"] != env.Namespace {
		t.Fatalf("lab exports CDELOAD_K8S_NAMESPACE=%q, want %s", vars["CDELOAD_K8S_NAMESPACE"], env.Namespace)
	}
	vars["KUBECONFIG"] = env.Kubeconfig // its current context is the admin's
	return vars
}

// holdKubeScript creates one plain Kubernetes workspace per VU and holds
// it until interrupted, leaving the clean-up to cdeload.
const holdKubeScript = `
import cde from 'k6/x/cdeload';
const N = Number(__ENV.WORKSPACES);
export const options = { scenarios: { s: { executor: 'per-vu-iterations', vus: N, iterations: 1, maxDuration: '5m' } } };
const k8s = new cde.Kubernetes({ namespace: __ENV.CDELOAD_K8S_NAMESPACE, image: 'codercom/enterprise-base:ubuntu' });
export default async function () {
  await k8s.createWorkspace({ timeout: '3m' });
  await new Promise((r) => setTimeout(r, 180000));
}
`

// waitPods waits (the test's own check, through the API) until the
// namespace holds n pods, some Running and some Pending.
func waitPods(t *testing.T, env *kubetest.Env, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		pods, _ := namespaceContents(t, env)
		var running, pending int
		for _, pod := range pods {
			switch pod.Status.Phase {
			case corev1.PodRunning:
				running++
			case corev1.PodPending:
				pending++
			}
		}
		if running > 0 && pending > 0 && running+pending == n {
			t.Logf("%d pods running, %d pending: interrupting", running, pending)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pods %d running, %d pending after 2 minutes; want both, %d in all", running, pending, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// failedReasons counts the workspace_failed failures (value 1) of a
// --out json file by their reason tag.
func failedReasons(t *testing.T, path string) map[string]int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, line := range strings.Split(string(b), "\n") {
		var p struct {
			Type, Metric string
			Data         struct {
				Value float64
				Tags  map[string]string
			}
		}
		if line == "" {
			continue
		}
		if err := json.Unmarshal([]byte(line), &p); err != nil {
			t.Fatalf("--out json line %q: %v", line, err)
		}
		if p.Type == "Point" && p.Metric == "workspace_failed" && p.Data.Value == 1 {
			n[p.Data.Tags["reason"]]++
		}
	}
	return n
}

// namespaceContents lists, through the API, the pods and Deployments left
// in env's namespace.
func namespaceContents(t *testing.T, env *kubetest.Env) (pods []corev1.Pod, deployments int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list, err := env.Core.Pods(env.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	apps, err := appsv1client.NewForConfig(env.Admin)
	if err != nil {
		t.Fatal(err)
	}
	deps, err := apps.Deployments(env.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items, len(deps.Items)
}

// The examples against `cdeload lab --kubernetes` on the real API server,
// through the binary: a SIGINT while workspaces are starting and others are
// ready (echoing over SSH) exits 105 and leaves no pod in the namespace,
// also when the script itself deletes nothing; scale.js in Kubernetes mode
// runs green with the phase metrics; the kubelet's faults fail workspaces
// with their reason; a run exports the phase metrics to the real
// Prometheus.
func TestKubernetesLabThroughTheBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs labs")
	}
	bin := buildBin(t)

	// holdKube leaves its workspaces to cdeload: no delete, no teardown.
	hold := filepath.Join(t.TempDir(), "hold.js")
	if err := os.WriteFile(hold, []byte(holdKubeScript), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, script := range map[string]string{"examples/k8s.js": k8sExample, "a script that never deletes": hold} {
		t.Run("SIGINT leaves no pod: "+name, func(t *testing.T) {
			env := kubetest.New(t)
			// Half the pods stay Unschedulable (still starting when the
			// signal comes), the others become ready (and echo, in k8s.js).
			vars := startKubeLab(t, bin, env, "--pod-schedule-delay", "100ms", "--pod-pull-delay", "200ms",
				"--pod-unschedulable-rate", "0.5", "--pod-seed", "7")
			p := startBin(t, bin, vars, "run", "-q", "-e", "WORKSPACES=6", "-e", "TRAFFIC_DURATION=3m", "-e", "READY_TIMEOUT=3m", script)
			waitPods(t, env, 6)
			time.Sleep(time.Second) // the ready ones' SSH echo is under way
			_ = p.cmd.Process.Signal(os.Interrupt)
			r := p.wait(t)
			if r.code != 105 {
				t.Fatalf("exit %d after SIGINT, want 105: %s", r.code, r)
			}
			pods, deps := namespaceContents(t, env)
			if len(pods) != 0 || deps != 0 {
				names := make([]string, len(pods))
				for i, pod := range pods {
					names[i] = pod.Name + " (" + string(pod.Status.Phase) + ")"
				}
				t.Fatalf("left in %s after the interrupted run: pods %v, %d deployments\n%s", env.Namespace, names, deps, r)
			}
		})
	}

	t.Run("scale.js in Kubernetes mode", func(t *testing.T) {
		env := kubetest.New(t)
		vars := startKubeLab(t, bin, env, "--pod-schedule-delay", "200ms", "--pod-pull-delay", "200ms")
		r := runBin(t, bin, vars, 3*time.Minute, "run", "-e", "WORKSPACES=3", "-e", "TRAFFIC_DURATION=1s",
			filepath.Join("..", "..", "examples", "scale.js"))
		if r.code != 0 {
			t.Fatalf("examples/scale.js on Kubernetes: %s", r)
		}
		for _, m := range []string{"workspace_pod_schedule_duration", "workspace_pod_start_duration", "workspace_failed"} {
			if !strings.Contains(r.stdout, m+".") {
				t.Errorf("summary without %s:\n%s", m, r.stdout)
			}
		}
		if pods, deps := namespaceContents(t, env); len(pods) != 0 || deps != 0 {
			t.Errorf("left after the run: %d pods, %d deployments", len(pods), deps)
		}
	})

	t.Run("k8s.js with its pods on the tailnet", func(t *testing.T) {
		env := kubetest.New(t)
		vars := startKubeLab(t, bin, env, "--pod-schedule-delay", "100ms")
		r := runBin(t, bin, vars, 3*time.Minute, "run", "-e", "WORKSPACES=2", "-e", "TRAFFIC_DURATION=1s", "-e", "TAILNET=1", k8sExample)
		if r.code != 0 || !strings.Contains(r.stdout, "✓ every frame came back") || strings.Contains(r.stderr, "level=error") {
			t.Fatalf("examples/k8s.js with TAILNET=1: %s", r)
		}
		if pods, deps := namespaceContents(t, env); len(pods) != 0 || deps != 0 {
			t.Errorf("left after the run: %d pods, %d deployments", len(pods), deps)
		}
	})

	t.Run("kubelet faults fail workspaces with their reason", func(t *testing.T) {
		env := kubetest.New(t)
		vars := startKubeLab(t, bin, env, "--pod-schedule-delay", "100ms",
			"--pod-unschedulable-rate", "0.2", "--pod-image-pull-backoff-rate", "0.1", "--pod-seed", "4") // 2 and 1 of 10
		out := filepath.Join(t.TempDir(), "out.json")
		r := runBin(t, bin, vars, 3*time.Minute, "run", "-q", "-e", "WORKSPACES=10", "-e", "TRAFFIC_DURATION=1s",
			"-e", "READY_TIMEOUT=8s", "--out", "json="+out, k8sExample)
		if r.code != 0 {
			t.Fatalf("examples/k8s.js with faults: %s", r)
		}
		reasons := failedReasons(t, out)
		logged := map[string]int{}
		for _, line := range strings.Split(r.stderr, "\n") {
			for _, reason := range []string{"Unschedulable", "ImagePullBackOff"} {
				if strings.Contains(line, "level=error") && strings.Contains(line, "pod scaletest-") && strings.Contains(line, ": "+reason+": ") {
					logged[reason]++
				}
			}
		}
		t.Logf("workspace_failed by reason %v; errors logged %v", reasons, logged)
		if reasons["Unschedulable"] != 2 || reasons["ImagePullBackOff"] != 1 || len(reasons) != 2 {
			t.Errorf("workspace_failed by reason %v: want the kubelet's faults, 2 Unschedulable and 1 ImagePullBackOff", reasons)
		}
		for reason, n := range reasons {
			if logged[reason] != n {
				t.Errorf("%d workspaces failed with %s, but %d errors name a pod and that reason:\n%s", n, reason, logged[reason], r.stderr)
			}
		}
		if pods, deps := namespaceContents(t, env); len(pods) != 0 || deps != 0 {
			t.Errorf("left after the run: %d pods, %d deployments", len(pods), deps)
		}
	})

	t.Run("phase metrics reach Prometheus", func(t *testing.T) {
		env := kubetest.New(t)
		prom := promtest.Start(t)
		// Over a second to ready: workspace_pods_pending is sampled every
		// second while a create is in flight.
		const sched, pull, start = 700 * time.Millisecond, 300 * time.Millisecond, 200 * time.Millisecond
		vars := startKubeLab(t, bin, env, "--pod-schedule-delay", sched.String(), "--pod-pull-delay", pull.String(),
			"--pod-start-delay", start.String())
		testid := fmt.Sprintf("kube-%d", time.Now().UnixNano())
		vars["K6_PROMETHEUS_RW_SERVER_URL"] = prom.URL + "/api/v1/write"
		vars["K6_PROMETHEUS_RW_PUSH_INTERVAL"] = "1s"
		vars["K6_PROMETHEUS_RW_TREND_STATS"] = "p(95),count"
		r := runBin(t, bin, vars, 3*time.Minute, "run", "-e", "WORKSPACES=2", "-e", "TRAFFIC_DURATION=1s",
			"-o", "experimental-prometheus-rw", "--tag", "testid="+testid, k8sExample)
		if r.code != 0 {
			t.Fatalf("examples/k8s.js: %s", r)
		}
		for _, m := range []string{"workspace_pod_schedule_duration", "workspace_pod_start_duration", "workspace_pods_pending"} {
			if !strings.Contains(r.stdout, m) {
				t.Errorf("summary without %s:\n%s", m, r.stdout)
			}
		}
		sel := fmt.Sprintf(`{testid=%q}`, testid)
		for _, m := range []struct {
			name string
			want time.Duration
		}{{"k6_workspace_pod_schedule_duration", sched}, {"k6_workspace_pod_start_duration", pull + start}} {
			if n := prom.One(t, m.name+"_count"+sel).Value; n != 2 {
				t.Errorf("%s_count = %v, want 2 (one per workspace)", m.name, n)
			}
			// Seconds in Prometheus; the precision itself (50 ms) is
			// workspace/kube's test: here, at most what a busy machine adds.
			lo, hi := m.want-50*time.Millisecond, m.want+500*time.Millisecond
			if v := prom.One(t, m.name+"_p95"+sel).Value; v < lo.Seconds() || v > hi.Seconds() {
				t.Errorf("%s_p95 = %v s, want %v to %v", m.name, v, lo, hi)
			}
		}
		if v := prom.One(t, "k6_workspace_pods_pending"+sel).Value; v < 0 || v > 2 {
			t.Errorf("k6_workspace_pods_pending = %v, want 0 to 2", v)
		}
		if pods, deps := namespaceContents(t, env); len(pods) != 0 || deps != 0 {
			t.Errorf("left after the run: %d pods, %d deployments", len(pods), deps)
		}
	})
}
