package lab

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	appsv1client "k8s.io/client-go/kubernetes/typed/apps/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"

	"github.com/cdeload/cdeload/lab/codersim"
	"github.com/cdeload/cdeload/lab/kubelet"
	"github.com/cdeload/cdeload/lab/workspaces"
	"github.com/cdeload/cdeload/workspace/kube"
)

// KubernetesConfig puts the lab's workspaces on a real Kubernetes API
// server: a lab kubelet runs the namespace's pods, the Coder simulator's
// builds create workspace Deployments (labelled as Coder's Kubernetes
// template labels them), and a pod labelled kube.LabelWorkspace (the
// cde.Kubernetes provider's pods) runs as a lab workspace (tailnet node and
// SSH server) of that name whose tailnet address is the pod IP. A pod that
// joins a tailnet itself, as a real pod does by running tailscale (a
// container with TS_AUTHKEY in its environment, see tailnetSidecar), joins
// the lab's tailnet under its own host name and keeps its node's IP as pod
// IP: it is reached at its tailnet address only.
type KubernetesConfig struct {
	// REST reaches the API server (required).
	REST *rest.Config
	// Namespace holds the workspace pods (required; it must exist).
	Namespace string
	// Node is the lab kubelet's Node ("cdeload-lab-<namespace>" when empty).
	Node string
	// ScheduleDelay, PullDelay and StartDelay are the lab kubelet's
	// latencies; Faults its failure rates; Seed seeds them.
	ScheduleDelay, PullDelay, StartDelay time.Duration
	Faults                               kubelet.Faults
	Seed                                 uint64
}

// KubernetesNamespace is the namespace of the lab's workspace pods, or ""
// when the lab runs without Kubernetes.
func (l *Lab) KubernetesNamespace() string {
	if l.kube == nil {
		return ""
	}
	return l.kube.pods.Namespace()
}

// kubeLab is the lab's Kubernetes side.
type kubeLab struct {
	kubelet *kubelet.Kubelet
	pods    *kube.Watcher
	apps    appsv1client.AppsV1Interface
}

// startKubernetes creates the namespace if needed and starts the lab
// kubelet and the watcher of Coder workspace pods.
func (l *Lab) startKubernetes(ctx context.Context, cfg *KubernetesConfig) error {
	if cfg.REST == nil || cfg.Namespace == "" {
		return errors.New("lab: Kubernetes needs a client configuration and a namespace")
	}
	core, err := corev1client.NewForConfig(cfg.REST)
	if err != nil {
		return fmt.Errorf("lab: Kubernetes client: %w", err)
	}
	apps, err := appsv1client.NewForConfig(cfg.REST)
	if err != nil {
		return fmt.Errorf("lab: Kubernetes client: %w", err)
	}
	node := cfg.Node
	if node == "" {
		node = "cdeload-lab-" + cfg.Namespace
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: cfg.Namespace}}
	if _, err := core.Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) && !apierrors.IsForbidden(err) {
		return fmt.Errorf("lab: create namespace %s: %w", cfg.Namespace, err)
	}
	kl, err := kubelet.Start(ctx, kubelet.Config{Client: core, Namespace: cfg.Namespace, Node: node,
		ScheduleDelay: cfg.ScheduleDelay, PullDelay: cfg.PullDelay, StartDelay: cfg.StartDelay,
		Faults: cfg.Faults, Seed: cfg.Seed, Workloads: labWorkloads{l.Workspaces}})
	if err != nil {
		return err
	}
	pods, err := kube.NewWatcher(ctx, kube.WatcherConfig{Client: core, Namespace: cfg.Namespace, Selector: kube.CoderSelector})
	if err != nil {
		kl.Close()
		return err
	}
	l.kube = &kubeLab{kubelet: kl, pods: pods, apps: apps}
	return nil
}

// coderBackend wraps the Coder simulator's backend so that its workspaces
// are Deployments.
func (k *kubeLab) coderBackend(be codersim.Backend) (codersim.Backend, error) {
	return kubelet.NewCoderBackend(kubelet.CoderBackendConfig{Inner: be, Apps: k.apps, Pods: k.pods})
}

// close stops the kubelet (after the Coder simulator removed its
// Deployments) and the watcher.
func (k *kubeLab) close() error {
	if k == nil {
		return nil
	}
	err := k.kubelet.Close()
	k.pods.Close()
	return err
}

// labWorkloads runs the pods labelled kube.LabelWorkspace as lab workspaces.
type labWorkloads struct{ m *workspaces.Manager }

func (w labWorkloads) Start(ctx context.Context, pod *corev1.Pod) (string, error) {
	name := pod.Labels[kube.LabelWorkspace]
	if name == "" {
		return "", nil // a Coder workspace pod: the Coder backend starts its machine
	}
	spec := workspaces.WorkspaceSpec{Name: name}
	hostname, joins := tailnetSidecar(pod)
	if joins {
		spec.Hostname = hostname
	}
	ws, err := w.m.Start(ctx, spec)
	if err != nil {
		return "", fmt.Errorf("lab workspace %s for pod %s: %w", name, pod.Name, err)
	}
	if joins {
		return "", nil // on the tailnet by itself: the pod IP is its node's
	}
	return ws.Addr().String(), nil
}

// Environment variables of tailscale's container image that tell the lab
// a pod joins a tailnet itself, and under which host name.
const (
	envTSAuthKey  = "TS_AUTHKEY"
	envTSHostname = "TS_HOSTNAME"
)

// tailnetSidecar reports whether the pod runs tailscale, as a real pod
// joins a tailnet: one of its containers (a sidecar, or a native sidecar
// init container) has TS_AUTHKEY in its environment (the lab joins with
// its own key, whatever the value). The host name is TS_HOSTNAME (a value,
// or the downward API's metadata.name), else the pod's host name
// (spec.hostname, else the pod name), which tailscale uses by default.
func tailnetSidecar(pod *corev1.Pod) (hostname string, ok bool) {
	hostname = pod.Name
	if pod.Spec.Hostname != "" {
		hostname = pod.Spec.Hostname
	}
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		joins, host := false, ""
		for _, e := range c.Env {
			switch e.Name {
			case envTSAuthKey:
				joins = true
			case envTSHostname:
				switch {
				case e.Value != "":
					host = e.Value
				case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name":
					host = pod.Name
				}
			}
		}
		if joins {
			if host != "" {
				hostname = host
			}
			return hostname, true
		}
	}
	return "", false
}

func (w labWorkloads) Stop(pod *corev1.Pod) {
	if name := pod.Labels[kube.LabelWorkspace]; name != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = w.m.Stop(ctx, name)
	}
}
