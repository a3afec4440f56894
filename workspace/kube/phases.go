package kube

import (
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Labels Coder's Kubernetes templates put on a workspace's pod (and
// Deployment); cdeload matches pods to workspaces by them.
const (
	LabelWorkspaceID   = "com.coder.workspace.id"
	LabelWorkspaceName = "com.coder.workspace.name"
	LabelUsername      = "com.coder.user.username"
	LabelAppName       = "app.kubernetes.io/name"
	// AppCoderWorkspace is the LabelAppName value of Coder workspace pods.
	AppCoderWorkspace = "coder-workspace"
)

// CoderSelector selects the pods of Coder workspaces.
const CoderSelector = LabelAppName + "=" + AppCoderWorkspace

// Reasons a workspace pod never became ready.
const (
	ReasonUnschedulable    = "Unschedulable"
	ReasonImagePullBackOff = "ImagePullBackOff"
	ReasonErrImagePull     = "ErrImagePull"
	ReasonCrashLoopBackOff = "CrashLoopBackOff"
	ReasonOOMKilled        = "OOMKilled"
)

// PodPhases is what the watcher knows about one pod: when it reached each
// phase, and why it is stuck if it is.
type PodPhases struct {
	// Name and Namespace identify the pod; UID tells a re-created pod apart.
	Name, Namespace, UID string
	// Labels are the pod's labels.
	Labels map[string]string
	// Created is when the pod was created, Scheduled when PodScheduled
	// became True, ContainersReady when ContainersReady became True (zero
	// when not reached). Each is the time the watch delivered the change
	// when the watcher saw it happen, else the API server's timestamp
	// (whole seconds).
	Created, Scheduled, ContainersReady time.Time
	// Pending is whether the pod's phase is Pending.
	Pending bool
	// IP is the pod's IP once it has one.
	IP string
	// Reason and Message say why the pod is not ready (Unschedulable,
	// ImagePullBackOff, CrashLoopBackOff, OOMKilled...), "" when nothing is
	// known to be wrong.
	Reason, Message string
	// Deleted is set on the last state of a pod that is gone.
	Deleted bool
}

// Ready reports whether the pod's containers are ready.
func (p PodPhases) Ready() bool { return !p.ContainersReady.IsZero() }

// ScheduleDuration is created → scheduled, 0 when not scheduled yet.
func (p PodPhases) ScheduleDuration() time.Duration {
	if p.Scheduled.IsZero() || p.Created.IsZero() {
		return 0
	}
	return nonNegative(p.Scheduled.Sub(p.Created))
}

// StartDuration is scheduled → containers ready (image pull included), 0
// when not ready yet.
func (p PodPhases) StartDuration() time.Duration {
	if p.ContainersReady.IsZero() || p.Scheduled.IsZero() {
		return 0
	}
	return nonNegative(p.ContainersReady.Sub(p.Scheduled))
}

func nonNegative(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	return d
}

// liveSlack is how far after an API timestamp (truncated to the second) a
// watch event may arrive and still count as observed live.
const liveSlack = 2 * time.Second

// pick returns the moment a change happened: observed, when the watch
// delivered it live (it is then precise to the watch latency), else the
// API server's timestamp.
func pick(observed, api time.Time, live bool) time.Time {
	if api.IsZero() {
		return observed
	}
	if live {
		if d := observed.Sub(api); d >= 0 && d < liveSlack {
			return observed
		}
	}
	return api
}

// condition returns the pod's condition of type t, or nil.
func condition(p *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// failureReason names what keeps the pod from becoming ready, if it is one
// of the known failures: an unschedulable pod, a container waiting in
// image-pull or crash back-off, or a container killed for memory.
func failureReason(p *corev1.Pod) (reason, message string) {
	if c := condition(p, corev1.PodScheduled); c != nil && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
		return ReasonUnschedulable, c.Message
	}
	statuses := append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
	for _, cs := range statuses {
		if t := cs.State.Terminated; t != nil && t.Reason == ReasonOOMKilled {
			return ReasonOOMKilled, t.Message
		}
		if w := cs.State.Waiting; w != nil {
			switch w.Reason {
			case ReasonImagePullBackOff, ReasonErrImagePull:
				return ReasonImagePullBackOff, w.Message
			case ReasonCrashLoopBackOff:
				if t := cs.LastTerminationState.Terminated; t != nil && t.Reason == ReasonOOMKilled {
					return ReasonOOMKilled, t.Message
				}
				return ReasonCrashLoopBackOff, w.Message
			}
		}
	}
	return "", ""
}
