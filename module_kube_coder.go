package cdeload

import (
	"context"
	"fmt"

	"github.com/cdeload/cdeload/workspace"
	"github.com/cdeload/cdeload/workspace/kube"
)

// coderKube is the `kubernetes` option of a Coder object: the namespace
// where the deployment's workspace pods run. Through the shared informer it
// times each workspace's pod (workspace_pod_schedule_duration,
// workspace_pod_start_duration, workspace_pods_pending) and names the
// reason of a pod that never became ready.
type coderKube struct {
	opts kubeOptions
}

// newCoderKube returns the Coder object's Kubernetes view (nil without the
// option); the selector defaults to Coder's workspace pods.
func newCoderKube(o *kubeOptions) *coderKube {
	if o == nil {
		return nil
	}
	k := &coderKube{opts: *o}
	if k.opts.selector == "" {
		k.opts.selector = kube.CoderSelector
	}
	return k
}

// start returns the shared informer, started before the workspace is
// created so that its pod's phases are seen as they happen, and registers
// e for workspace_pods_pending until end is called.
func (k *coderKube) start(ctx context.Context, r *RootModule, e *emitter) (sw *sharedWatcher, end func(), err error) {
	if k == nil {
		return nil, func() {}, nil
	}
	sw, err = r.kubeWatcher(ctx, k.opts)
	if err != nil {
		return nil, nil, fmt.Errorf("kubernetes pod phases of Coder workspaces: %w", err)
	}
	return sw, sw.begin(e), nil
}

func coderPod(ws workspace.Workspace) kube.Match { return kube.ByLabel(kube.LabelWorkspaceID, ws.ID) }

// created tracks the new workspace's pod and lets a failure of the
// workspace carry its pod's reason.
func (k *coderKube) created(sw *sharedWatcher, ws workspace.Workspace, obs *coderObserver) {
	if k == nil || sw == nil {
		return
	}
	sw.track(coderPod(ws))
	reason := func() string {
		r, _ := sw.podReason(coderPod(ws))
		return r
	}
	obs.reason.Store(&reason)
}

// ready emits the pod's phases once the workspace is ready, or adds the
// reason its pod never became ready to err.
func (k *coderKube) ready(ctx context.Context, sw *sharedWatcher, ws workspace.Workspace, err error, e *emitter, obs *coderObserver) error {
	if k == nil || sw == nil {
		return err
	}
	defer obs.reason.Store(nil)
	e = e.withMeta(map[string]string{"workspace": ws.Name})
	if err != nil {
		for _, p := range sw.w.Lookup(coderPod(ws)) {
			emitPodPhases(e, p)
		}
		if _, detail := sw.podReason(coderPod(ws)); detail != "" {
			return fmt.Errorf("%s: %w", detail, err)
		}
		return err
	}
	// The agent connects after the pod is ready; the informer may be a
	// moment behind the Coder API.
	ctx, cancel := context.WithTimeout(ctx, kubePhaseLag)
	defer cancel()
	if p, werr := sw.w.Wait(ctx, coderPod(ws), kube.PodPhases.Ready); werr == nil {
		emitPodPhases(e, p)
	}
	return nil
}

// failTags returns the reason tag of a failure whose workspace pod is
// stuck (see coderKube.created).
func (o *coderObserver) failTags() []string {
	f := o.reason.Load()
	if f == nil {
		return nil
	}
	if r := (*f)(); r != "" {
		return []string{"reason", r}
	}
	return nil
}
