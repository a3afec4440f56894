package kube

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestFailureReason(t *testing.T) {
	waiting := func(reason string) corev1.ContainerState {
		return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "m"}}
	}
	oom := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "OOMKilled", ExitCode: 137}}
	for name, tc := range map[string]struct {
		status corev1.PodStatus
		want   string
	}{
		"unschedulable":                      {corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable"}}}, ReasonUnschedulable},
		"err image pull":                     {corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{State: waiting("ErrImagePull")}}}, ReasonImagePullBackOff},
		"pull back-off in an init container": {corev1.PodStatus{InitContainerStatuses: []corev1.ContainerStatus{{State: waiting("ImagePullBackOff")}}}, ReasonImagePullBackOff},
		"crash loop":                         {corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{State: waiting("CrashLoopBackOff")}}}, ReasonCrashLoopBackOff},
		"crash loop after an OOM kill":       {corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{State: waiting("CrashLoopBackOff"), LastTerminationState: oom}}}, ReasonOOMKilled},
		"OOM killed":                         {corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{State: oom}}}, ReasonOOMKilled},
		"creating":                           {corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{State: waiting("ContainerCreating")}}}, ""},
		"waiting for a node":                 {corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "SchedulerError"}}}, ""},
	} {
		if got, _ := failureReason(&corev1.Pod{Status: tc.status}); got != tc.want {
			t.Errorf("%s: reason %q, want %q", name, got, tc.want)
		}
	}
}

// A change seen live is timed when the watch delivered it; one that
// predates the watch, or arrives implausibly late, by the API's timestamp.
func TestPick(t *testing.T) {
	api := time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		observed time.Time
		live     bool
		want     time.Time
	}{
		{api.Add(300 * time.Millisecond), true, api.Add(300 * time.Millisecond)},
		{api.Add(300 * time.Millisecond), false, api},
		{api.Add(5 * time.Second), true, api},
		{api.Add(-time.Second), true, api}, // the server's clock is ahead
	} {
		if got := pick(tc.observed, api, tc.live); !got.Equal(tc.want) {
			t.Errorf("pick(%v, live=%v) = %v, want %v", tc.observed.Sub(api), tc.live, got.Sub(api), tc.want.Sub(api))
		}
	}
	if got := pick(api, time.Time{}, false); !got.Equal(api) {
		t.Errorf("no API timestamp: %v, want the observed time", got)
	}
}
