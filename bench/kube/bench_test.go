// Package kube_test benchmarks cdeload's load on a Kubernetes API server
// and the cost of its shared pod informer, against the real API server of
// scripts/k8s-testenv.sh (CDELOAD_TEST_KUBECONFIG). Run through
// bench/kube.sh; plain `go test` runs no benchmark.
package kube_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"

	"github.com/cdeload/cdeload/internal/kubetest"
	"github.com/cdeload/cdeload/lab/kubelet"
	"github.com/cdeload/cdeload/workspace"
	"github.com/cdeload/cdeload/workspace/kube"
)

// benchN is the number of workspaces (BENCH_N, default 1000).
func benchN() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_N")); err == nil && n > 0 {
		return n
	}
	return 1000
}

// counting counts the requests a client sends, by "VERB path-kind".
type counting struct {
	rt http.RoundTripper
	n  atomic.Int64
}

func (c *counting) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.rt.RoundTrip(r)
}

// requestTotals scrapes apiserver_request_total, summed by verb, resource
// and subresource.
func requestTotals(t testing.TB, c corev1client.CoreV1Interface) map[string]float64 {
	t.Helper()
	body, err := c.RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		end := strings.LastIndex(line, "}")
		labels := map[string]string{}
		for _, kv := range strings.Split(line[len("apiserver_request_total{"):end], ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				labels[k] = strings.Trim(v, `"`)
			}
		}
		v, _ := strconv.ParseFloat(strings.TrimSpace(line[end+1:]), 64)
		key := labels["verb"] + " " + labels["resource"]
		if labels["subresource"] != "" {
			key += "/" + labels["subresource"]
		}
		out[key] += v
	}
	return out
}

// BenchmarkAPIRequestsPerWorkspace runs N workspace lifecycles (create,
// ready, delete) through the Pod provider with the lab kubelet, and
// reports the requests cdeload sent per workspace (counted at its client
// and from the API server's apiserver_request_total).
func BenchmarkAPIRequestsPerWorkspace(b *testing.B) {
	env := kubetest.New(b)
	n := benchN()
	cnt := &counting{}
	rc := rest.CopyConfig(env.Admin)
	rc.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { cnt.rt = rt; return cnt }
	core, err := corev1client.NewForConfig(rc)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	kl, err := kubelet.Start(ctx, kubelet.Config{Client: env.Core, Namespace: env.Namespace, Node: "bench-" + env.Namespace})
	if err != nil {
		b.Fatal(err)
	}
	defer kl.Close()
	before := requestTotals(b, env.Core)
	cnt.n.Store(0)
	w, err := kube.NewWatcher(ctx, kube.WatcherConfig{Client: core, Namespace: env.Namespace})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	tpl := kube.ImagePod("example.invalid/dev:1")
	p, err := kube.NewProvider(kube.ProviderConfig{Client: core, Pods: w, RunID: workspace.NewRunID(), Template: tpl})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	sem := make(chan struct{}, 50)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ws, err := p.Create(ctx, workspace.CreateRequest{})
			if err == nil {
				ws, err = p.WaitReady(ctx, ws)
			}
			if err == nil {
				err = p.Delete(ctx, ws)
			}
			if err != nil {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	client := cnt.n.Load()
	time.Sleep(2 * time.Second) // let the last kubelet deletes land
	after := requestTotals(b, env.Core)
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d lifecycles failed", f, n)
	}
	keys := make([]string, 0, len(after))
	for k := range after {
		if after[k]-before[k] > 0 && strings.Contains(k, "pods") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	fmt.Printf("%d workspace lifecycles in %v (%.0f/s), the lab kubelet on the same API server\n", n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
	fmt.Printf("cdeload's client sent %d requests: %.2f per workspace (incl. the shared list + watch, and watch re-opens)\n", client, float64(client)/float64(n))
	fmt.Println("apiserver_request_total deltas on pods (all clients; the lab kubelet sends the bindings, status updates and one DELETE per pod):")
	for _, k := range keys {
		d := after[k] - before[k]
		fmt.Printf("  %-28s %7.0f  %.2f per workspace\n", k, d, d/float64(n))
	}
	cdeloadServer := (after["POST pods"] - before["POST pods"]) + (after["DELETE pods"] - before["DELETE pods"]) - float64(n)
	fmt.Printf("cdeload per workspace from the server's counts (POST + DELETE pods − the kubelet's DELETE): %.2f (target ≤ 3)\n", cdeloadServer/float64(n))
	b.ReportMetric(float64(client)/float64(n), "requests/workspace")
}

// BenchmarkInformer1000Pods measures what the shared informer costs for N
// pods: heap after the first list, and CPU at steady state (no changes) over
// 10 s.
func BenchmarkInformer1000Pods(b *testing.B) {
	env := kubetest.New(b)
	n := benchN()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	sem := make(chan struct{}, 50)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ws-%d", i), Labels: map[string]string{
					kube.LabelAppName: kube.AppCoderWorkspace, kube.LabelWorkspaceID: fmt.Sprintf("id-%d", i),
					kube.LabelWorkspaceName: fmt.Sprintf("ws-%d", i), kube.LabelUsername: "scaletest-user",
				}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "dev", Image: "codercom/enterprise-base:ubuntu",
					Command: []string{"sh", "-c", "exec coder agent"}, Env: []corev1.EnvVar{{Name: "CODER_AGENT_URL", Value: "https://coder.example"}}}}},
			}
			if _, err := env.Core.Pods(env.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	h0 := heap()
	b.ResetTimer()
	w, err := kube.NewWatcher(ctx, kube.WatcherConfig{Client: env.Core, Namespace: env.Namespace, Selector: kube.CoderSelector})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	b.StopTimer()
	h1 := heap()
	if got := w.Count(func(kube.PodPhases) bool { return true }); got != n {
		b.Fatalf("informer holds %d pods, want %d", got, n)
	}
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	c0, t0 := cpu(), time.Now()
	time.Sleep(10 * time.Second)
	c1, t1 := cpu(), time.Now()
	fmt.Printf("informer with %d pods: heap +%.1f MB (%.1f KB per pod; target ≤ 20 MB), steady-state CPU %.2f%% of one core over %v (target ≤ 5%%)\n",
		n, float64(h1-h0)/(1<<20), float64(h1-h0)/1024/float64(n), 100*float64(c1-c0)/float64(t1.Sub(t0)), t1.Sub(t0).Round(time.Second))
	b.ReportMetric(float64(h1-h0)/(1<<20), "MB")
}
