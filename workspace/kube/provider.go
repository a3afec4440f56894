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
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/cdeload/cdeload/workspace"
)

// Labels the provider puts on each workspace pod.
const (
	// LabelRun is the run ID: cleanup selects the run's pods by it.
	LabelRun = "cdeload.dev/run"
	// LabelWorkspace is the workspace name (also the pod name).
	LabelWorkspace = "cdeload.dev/workspace"
)

// ProviderConfig configures a Provider.
type ProviderConfig struct {
	// Client is the core/v1 client (required).
	Client corev1client.CoreV1Interface
	// Pods is the shared informer of the namespace (required); the
	// provider's pods must match its selector.
	Pods *Watcher
	// RunID names this run's pods (scaletest-<runid>-<n>) and labels them.
	RunID string
	// Namer, if set, names the pods instead (its run ID wins over RunID):
	// providers of one run that share it never pick the same name.
	Namer *workspace.Namer
	// Template is the pod to create for each workspace; its name, namespace
	// and run labels are filled in (see ParsePodTemplate and ImagePod).
	Template *corev1.Pod
	// OwnerReferences, if set, make the pods dependents of an object (the
	// runner's pod): the garbage collector removes them with it.
	OwnerReferences []metav1.OwnerReference
	// Observer receives phase timings and failures (NopObserver when nil).
	Observer workspace.Observer
	// Address, if set, finds a ready pod's address instead of its pod IP
	// (e.g. its tailnet address once it joined); ctx is the ready wait's.
	// Its error fails the workspace.
	Address func(ctx context.Context, pod PodPhases) (string, error)
}

// Provider runs each workspace as one Pod. Its API requests per
// workspace are one create and one delete: readiness and deletion are
// seen through the shared informer.
type Provider struct {
	cfg   ProviderConfig
	namer *workspace.Namer
}

// ParsePodTemplate parses a Pod in YAML or JSON.
func ParsePodTemplate(data []byte) (*corev1.Pod, error) {
	var p corev1.Pod
	if err := yaml.UnmarshalStrict(data, &p); err != nil {
		return nil, fmt.Errorf("pod template: %w", err)
	}
	if p.Kind != "" && p.Kind != "Pod" {
		return nil, fmt.Errorf("pod template: kind %q: want Pod", p.Kind)
	}
	if len(p.Spec.Containers) == 0 {
		return nil, errors.New("pod template: spec.containers is empty: a Pod needs at least one container")
	}
	return &p, nil
}

// ImagePod is the template of a workspace pod running image.
func ImagePod(image string) *corev1.Pod {
	return &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "workspace", Image: image}}}}
}

// NewProvider returns a Provider.
func NewProvider(cfg ProviderConfig) (*Provider, error) {
	if cfg.Client == nil || cfg.Pods == nil || cfg.Template == nil {
		return nil, errors.New("kubernetes provider: client, pod watcher and template are required")
	}
	if cfg.Observer == nil {
		cfg.Observer = workspace.NopObserver{}
	}
	n := cfg.Namer
	if n == nil {
		var err error
		if n, err = workspace.NewNamer(cfg.RunID); err != nil {
			return nil, fmt.Errorf("kubernetes provider: %w", err)
		}
	}
	return &Provider{cfg: cfg, namer: n}, nil
}

// RunID returns the run ID the provider labels its pods with.
func (p *Provider) RunID() string { return p.namer.RunID() }

// Namespace returns the namespace of the workspace pods.
func (p *Provider) Namespace() string { return p.cfg.Pods.Namespace() }

// Create implements workspace.Provider: one create request.
func (p *Provider) Create(ctx context.Context, req workspace.CreateRequest) (workspace.Workspace, error) {
	name := req.Name
	if name == "" {
		name = p.namer.Name(p.namer.Next())
	}
	pod := p.cfg.Template.DeepCopy()
	pod.Name, pod.GenerateName, pod.Namespace = name, "", p.Namespace()
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[LabelRun] = p.RunID()
	pod.Labels[LabelWorkspace] = name
	pod.OwnerReferences = append(pod.OwnerReferences, p.cfg.OwnerReferences...)
	ws := workspace.Workspace{ID: name, Name: name, Template: req.Template, RequestedAt: time.Now()}
	out, err := p.cfg.Client.Pods(p.Namespace()).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		err = Forbidden(err, "create", "pods", p.Namespace())
		p.cfg.Observer.OnFailure(workspace.OpCreate, err)
		return ws, fmt.Errorf("workspace %s: %w", name, err)
	}
	ws.ID = string(out.UID)
	return ws, nil
}

// WaitReady implements workspace.Provider: it waits, through the shared
// informer, until the pod's containers are ready, then for its address
// (ProviderConfig.Address); the ready duration covers both.
func (p *Provider) WaitReady(ctx context.Context, ws workspace.Workspace) (workspace.Workspace, error) {
	st, err := p.cfg.Pods.Wait(ctx, ByName(ws.Name), PodPhases.Ready)
	if err != nil {
		if st.Reason != "" {
			err = fmt.Errorf("pod %s: %s: %s: %w", ws.Name, st.Reason, st.Message, err)
		} else {
			err = fmt.Errorf("pod %s not ready: %w", ws.Name, err)
		}
		p.cfg.Observer.OnFailure(workspace.OpCreate, err)
		return ws, err
	}
	ws.Address = st.IP
	if p.cfg.Address != nil {
		if ws.Address, err = p.cfg.Address(ctx, st); err != nil {
			err = fmt.Errorf("pod %s: %w", ws.Name, err)
			p.cfg.Observer.OnFailure(workspace.OpCreate, err)
			return ws, err
		}
	}
	if !ws.RequestedAt.IsZero() {
		ws.Timings.Ready = time.Since(ws.RequestedAt)
		p.cfg.Observer.OnPhase(workspace.PhaseReady, ws.Timings.Ready, ws)
	}
	return ws, nil
}

// PodPhases returns what the informer knows of the workspace's pod.
func (p *Provider) PodPhases(ws workspace.Workspace) (PodPhases, bool) {
	for _, st := range p.cfg.Pods.Lookup(ByName(ws.Name)) {
		return st, true
	}
	return PodPhases{}, false
}

var errNoStop = errors.New("a Kubernetes workspace is a Pod and cannot be stopped or started: delete it and create another")

// Stop implements workspace.Provider: a Pod cannot be stopped.
func (p *Provider) Stop(context.Context, workspace.Workspace) error { return errNoStop }

// Start implements workspace.Provider: a Pod cannot be started again.
func (p *Provider) Start(_ context.Context, ws workspace.Workspace) (workspace.Workspace, error) {
	return ws, errNoStop
}

// Delete implements workspace.Provider: one delete request (foreground
// propagation), then the informer tells when the pod is gone.
func (p *Provider) Delete(ctx context.Context, ws workspace.Workspace) error {
	start := time.Now()
	if err := p.delete(ctx, ws.Name); err != nil {
		p.cfg.Observer.OnFailure(workspace.OpDelete, err)
		return err
	}
	ws.Timings.Delete = time.Since(start)
	p.cfg.Observer.OnPhase(workspace.PhaseDelete, ws.Timings.Delete, ws)
	return nil
}

func (p *Provider) delete(ctx context.Context, name string) error {
	fg := metav1.DeletePropagationForeground
	err := p.cfg.Client.Pods(p.Namespace()).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &fg})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("workspace %s: %w", name, Forbidden(err, "delete", "pods", p.Namespace()))
	}
	if err := p.cfg.Pods.WaitGone(ctx, ByName(name)); err != nil {
		return fmt.Errorf("workspace %s: pod still there: %w", name, err)
	}
	return nil
}

// List implements workspace.Provider from the informer's cache.
func (p *Provider) List(context.Context) ([]workspace.Workspace, error) {
	var out []workspace.Workspace
	for _, st := range p.cfg.Pods.Lookup(ByLabel(LabelRun, p.RunID())) {
		out = append(out, workspace.Workspace{ID: st.UID, Name: st.Name, Address: st.IP})
	}
	return out, nil
}

// cleanupConcurrency bounds parallel deletes in Cleanup.
const cleanupConcurrency = 16

// Cleanup implements workspace.Provider: it deletes every pod labelled
// with the run (found in the informer's cache, so also those of a create
// whose answer was lost to an abort) and waits until they are gone.
func (p *Provider) Cleanup(ctx context.Context) error {
	pods := p.cfg.Pods.Lookup(ByLabel(LabelRun, p.RunID()))
	sem := make(chan struct{}, cleanupConcurrency)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, st := range pods {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := p.delete(ctx, st.Name); err != nil {
				p.cfg.Observer.OnFailure(workspace.OpCleanup, err)
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

var _ workspace.Provider = (*Provider)(nil)
