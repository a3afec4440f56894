package cdeload

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/cdeload/cdeload/internal/kubetest"
	"github.com/cdeload/cdeload/lab"
	"github.com/cdeload/cdeload/workspace/kube"
)

// recordOwners watches env's namespace and records the owner references
// of each workspace pod as the API server stored it at creation.
func recordOwners(t *testing.T, env *kubetest.Env) (get func() map[string][]metav1.OwnerReference) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := env.Core.Pods(env.Namespace).Watch(ctx, metav1.ListOptions{LabelSelector: kube.LabelWorkspace})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[string][]metav1.OwnerReference{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			if p, ok := ev.Object.(*corev1.Pod); ok && ev.Type == watch.Added {
				mu.Lock()
				got[p.Name] = p.OwnerReferences
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { cancel(); w.Stop(); <-done })
	return func() map[string][]metav1.OwnerReference {
		mu.Lock()
		defer mu.Unlock()
		return got
	}
}

// Workspace pods are owned by the k6-operator runner pod named by the
// downward API (POD_NAME, POD_UID), or by the ownerReferences option,
// which replaces that default; a bad ownerReferences is a clear error.
func TestKubernetesProviderOwnerReferences(t *testing.T) {
	env := kubetest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	runner, err := env.Core.Pods(env.Namespace).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "runner"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "k6", Image: "runner"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm, err := env.Core.ConfigMaps(env.Namespace).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owner"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	vars := startKubeLab(t, env, lab.KubernetesConfig{})
	vars[envPodName], vars[envPodUID], vars[envPodNamespace] = runner.Name, string(runner.UID), env.Namespace
	vars["CM_UID"] = string(cm.UID)
	owners := recordOwners(t, env)
	r := runScript(t, header+`
import { Kubernetes } from 'k6/x/cdeload';
const opts = { namespace: __ENV.NS, kubeconfig: __ENV.KCFG, image: 'codercom/enterprise-base:ubuntu' };
const byRunner = new Kubernetes(opts);
const byCM = new Kubernetes(Object.assign({ ownerReferences: [
  { apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: __ENV.CM_UID, controller: true }] }, opts));
function msg(fn) { try { fn(); return 'no error'; } catch (e) { return e.message; } }
const bad = [
  msg(() => new Kubernetes(Object.assign({ ownerReferences: { kind: 'Pod' } }, opts))),
  msg(() => new Kubernetes(Object.assign({ ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: 'x' }] }, opts))),
  msg(() => new Kubernetes(Object.assign({ ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: 'x', uid: 'u', owner: 1 }] }, opts))),
];
export default async function () {
  report(TEST, 'bad', bad);
  report(TEST, 'names', [(await byRunner.createWorkspace()).name, (await byCM.createWorkspace()).name]);
  await byRunner.cleanup();
  await byCM.cleanup();
}
`, vars)
	var bad []string
	r.report("bad", &bad)
	for i, want := range []string{"ownerReferences", `[0].uid is required`, `unknown field "owner"`} {
		if i >= len(bad) || !strings.Contains(bad[i], want) {
			t.Errorf("bad ownerReferences %d: %q, want it to contain %q", i, bad, want)
		}
	}
	var names []string
	r.report("names", &names)
	if len(names) != 2 {
		t.Fatalf("workspaces %v", names)
	}
	got := owners()
	if o := got[names[0]]; len(o) != 1 || o[0].Kind != "Pod" || o[0].Name != "runner" || o[0].UID != runner.UID {
		t.Errorf("owners of %s: %+v, want the runner pod %s", names[0], o, runner.UID)
	}
	if o := got[names[1]]; len(o) != 1 || o[0].Kind != "ConfigMap" || o[0].UID != cm.UID || o[0].Controller == nil || !*o[0].Controller {
		t.Errorf("owners of %s: %+v, want only the ConfigMap %s as controller", names[1], o, cm.UID)
	}
	if err := env.Core.Pods(env.Namespace).Delete(ctx, runner.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	assertNamespaceEmpty(t, env)
}
