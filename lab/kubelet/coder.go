package kubelet

import (
	"context"
	"errors"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	appsv1client "k8s.io/client-go/kubernetes/typed/apps/v1"

	"github.com/cdeload/cdeload/lab/codersim"
	"github.com/cdeload/cdeload/workspace/kube"
)

// DefaultWorkspaceImage is the image of the lab's Coder workspace pods (a
// name only: the lab kubelet pulls nothing).
const DefaultWorkspaceImage = "codercom/enterprise-base:ubuntu"

// CoderBackendConfig configures a CoderBackend.
type CoderBackendConfig struct {
	// Inner runs the workspace machine once its pod is ready (required).
	Inner codersim.Backend
	// Apps creates the Deployments (required).
	Apps appsv1client.AppsV1Interface
	// Pods watches the workspace pods (required; its namespace is the
	// Deployments' and its selector must include the Coder pods).
	Pods *kube.Watcher
	// Image is the workspace container's image (DefaultWorkspaceImage).
	Image string
}

// CoderBackend is a codersim.Backend that runs each workspace as Coder's
// Kubernetes template does: a start build creates a Deployment labelled
// with the workspace and its owner, and the agent connects (the inner
// backend starts the machine) only once its pod is ready. A stop or delete
// build deletes the Deployment and waits until its pod is gone.
type CoderBackend struct {
	cfg CoderBackendConfig
}

// NewCoderBackend returns a CoderBackend.
func NewCoderBackend(cfg CoderBackendConfig) (*CoderBackend, error) {
	if cfg.Inner == nil || cfg.Apps == nil || cfg.Pods == nil {
		return nil, errors.New("lab Coder backend on Kubernetes: inner backend, apps client and pod watcher are required")
	}
	if cfg.Image == "" {
		cfg.Image = DefaultWorkspaceImage
	}
	return &CoderBackend{cfg: cfg}, nil
}

// DeploymentName is the name of the Deployment of a Coder workspace.
func DeploymentName(workspaceID string) string { return "coder-" + strings.ToLower(workspaceID) }

func (b *CoderBackend) labels(spec codersim.WorkspaceSpec) map[string]string {
	return map[string]string{
		kube.LabelAppName:            kube.AppCoderWorkspace,
		"app.kubernetes.io/instance": "coder-workspace-" + spec.WorkspaceID,
		"app.kubernetes.io/part-of":  "coder",
		"com.coder.resource":         "true",
		kube.LabelWorkspaceID:        spec.WorkspaceID,
		kube.LabelWorkspaceName:      spec.Name,
		kube.LabelUsername:           spec.Owner,
	}
}

// StartWorkspace implements codersim.Backend.
func (b *CoderBackend) StartWorkspace(ctx context.Context, spec codersim.WorkspaceSpec) (codersim.Agent, error) {
	ns := b.cfg.Pods.Namespace()
	labels := b.labels(spec)
	one := int32(1)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: DeploymentName(spec.WorkspaceID), Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{
				kube.LabelAppName: kube.AppCoderWorkspace, kube.LabelWorkspaceID: spec.WorkspaceID,
			}},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "dev", Image: b.cfg.Image, Command: []string{"sh", "-c", "exec coder agent"},
				}}},
			},
		},
	}
	if _, err := b.cfg.Apps.Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, kube.Forbidden(err, "create", "deployments", ns)
	}
	p, err := b.cfg.Pods.Wait(ctx, kube.ByLabel(kube.LabelWorkspaceID, spec.WorkspaceID), func(p kube.PodPhases) bool {
		return p.Ready() || p.Reason != ""
	})
	if err != nil {
		return nil, fmt.Errorf("workspace pod of %s/%s: %w", spec.Owner, spec.Name, err)
	}
	if !p.Ready() {
		return nil, fmt.Errorf("workspace pod %s of %s/%s: %s: %s", p.Name, spec.Owner, spec.Name, p.Reason, p.Message)
	}
	return b.cfg.Inner.StartWorkspace(ctx, spec)
}

// StopWorkspace implements codersim.Backend.
func (b *CoderBackend) StopWorkspace(ctx context.Context, spec codersim.WorkspaceSpec) error {
	innerErr := b.cfg.Inner.StopWorkspace(ctx, spec)
	ns := b.cfg.Pods.Namespace()
	fg := metav1.DeletePropagationForeground
	err := b.cfg.Apps.Deployments(ns).Delete(ctx, DeploymentName(spec.WorkspaceID), metav1.DeleteOptions{PropagationPolicy: &fg})
	if err != nil && !apierrors.IsNotFound(err) {
		return errors.Join(innerErr, kube.Forbidden(err, "delete", "deployments", ns))
	}
	if err := b.cfg.Pods.WaitGone(ctx, kube.ByLabel(kube.LabelWorkspaceID, spec.WorkspaceID)); err != nil {
		return errors.Join(innerErr, fmt.Errorf("workspace pod of %s/%s still there: %w", spec.Owner, spec.Name, err))
	}
	// The foreground deletion removes the Deployment itself only after its
	// pods: the build ends when it is gone, as Coder's Terraform provider
	// waits for it, so that nothing is left once the workspace is deleted.
	if err := b.waitDeploymentGone(ctx, ns, DeploymentName(spec.WorkspaceID)); err != nil {
		return errors.Join(innerErr, fmt.Errorf("workspace Deployment of %s/%s still there: %w", spec.Owner, spec.Name, err))
	}
	return innerErr
}

// waitDeploymentGone waits, bounded by ctx, until the Deployment name is
// deleted: a get, then a watch of that Deployment from the version read
// (re-read if the server ends the watch).
func (b *CoderBackend) waitDeploymentGone(ctx context.Context, ns, name string) error {
	deps := b.cfg.Apps.Deployments(ns)
	for {
		d, err := deps.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return kube.Forbidden(err, "get", "deployments", ns)
		}
		w, err := deps.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name, ResourceVersion: d.ResourceVersion})
		if err != nil {
			return kube.Forbidden(err, "watch", "deployments", ns)
		}
		deleted := false
		for ev := range w.ResultChan() {
			if ev.Type == watch.Deleted {
				deleted = true
				break
			}
		}
		w.Stop()
		if deleted {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// AgentConnected implements codersim.AgentEvents for an inner backend that does.
func (b *CoderBackend) AgentConnected(spec codersim.WorkspaceSpec) {
	if e, ok := b.cfg.Inner.(codersim.AgentEvents); ok {
		e.AgentConnected(spec)
	}
}

// AgentCrashed implements codersim.AgentEvents for an inner backend that does.
func (b *CoderBackend) AgentCrashed(spec codersim.WorkspaceSpec) {
	if e, ok := b.cfg.Inner.(codersim.AgentEvents); ok {
		e.AgentCrashed(spec)
	}
}
