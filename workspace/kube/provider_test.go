package kube_test

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/cdeload/cdeload/internal/kubetest"
	"github.com/cdeload/cdeload/lab/kubelet"
	"github.com/cdeload/cdeload/workspace"
	"github.com/cdeload/cdeload/workspace/kube"
)

const podYAML = `
apiVersion: v1
kind: Pod
metadata:
  labels: {team: load}
spec:
  containers:
  - name: dev
    image: example.invalid/dev:1
`

func newProvider(t *testing.T, c corev1client.CoreV1Interface, w *kube.Watcher) *kube.Provider {
	t.Helper()
	tpl, err := kube.ParsePodTemplate([]byte(podYAML))
	if err != nil {
		t.Fatal(err)
	}
	p, err := kube.NewProvider(kube.ProviderConfig{Client: c, Pods: w, RunID: workspace.NewRunID(), Template: tpl})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The provider creates a pod per workspace from the template, sees it
// ready through the informer, deletes it and cleans the rest up: nothing
// is left in the namespace.
func TestProviderLifecycle(t *testing.T) {
	env := kubetest.New(t)
	w, err := kube.NewWatcher(context.Background(), kube.WatcherConfig{Client: env.Core, Namespace: env.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	startKubelet(t, env, kubelet.Config{ScheduleDelay: 50 * time.Millisecond, PodIP: "127.0.0.7"})
	p := newProvider(t, env.Core, w)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var made []workspace.Workspace
	for range 3 {
		ws, err := p.Create(ctx, workspace.CreateRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if ws, err = p.WaitReady(ctx, ws); err != nil {
			t.Fatal(err)
		}
		if ws.Address != "127.0.0.7" || ws.Timings.Ready <= 0 || !strings.HasPrefix(ws.Name, "scaletest-"+p.RunID()) {
			t.Errorf("ready workspace %+v", ws)
		}
		made = append(made, ws)
	}
	pod, err := env.Core.Pods(env.Namespace).Get(ctx, made[0].Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pod.Labels["team"] != "load" || pod.Labels[kube.LabelRun] != p.RunID() || pod.Spec.Containers[0].Image != "example.invalid/dev:1" {
		t.Errorf("pod labels %v, image %s: want the template's plus the run's", pod.Labels, pod.Spec.Containers[0].Image)
	}
	if err := p.Delete(ctx, made[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Core.Pods(env.Namespace).Get(ctx, made[0].Name, metav1.GetOptions{}); err == nil {
		t.Errorf("pod %s still exists after Delete returned", made[0].Name)
	}
	if l, _ := p.List(ctx); len(l) != 2 {
		t.Errorf("List after one delete: %d workspaces, want 2", len(l))
	}
	if err := p.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	pods, err := env.Core.Pods(env.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 0 {
		t.Errorf("%d pods left after Cleanup", len(pods.Items))
	}
}

// A user without the Role gets an error naming the missing permission at
// once.
func TestProviderForbidden(t *testing.T) {
	env := kubetest.New(t)
	w, err := kube.NewWatcher(context.Background(), kube.WatcherConfig{Client: env.Core, Namespace: env.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	tester, err := corev1client.NewForConfig(env.Tester)
	if err != nil {
		t.Fatal(err)
	}
	p := newProvider(t, tester, w)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = p.Create(ctx, workspace.CreateRequest{})
	want := "forbidden: needs create on pods in " + env.Namespace
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Create as tester: %v, want it to contain %q", err, want)
	}
}

func TestParsePodTemplateErrors(t *testing.T) {
	for src, want := range map[string]string{
		"kind: Deployment\nspec: {containers: [{name: a, image: b}]}": `kind "Deployment": want Pod`,
		"spec: {}":               "spec.containers is empty",
		"spec: {containerz: []}": `unknown field "containerz"`,
	} {
		if _, err := kube.ParsePodTemplate([]byte(src)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParsePodTemplate(%q) = %v, want %q", src, err, want)
		}
	}
}
