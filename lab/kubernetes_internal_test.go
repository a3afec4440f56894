package lab

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A pod joins the tailnet itself when one of its containers runs tailscale
// (TS_AUTHKEY in its environment), under the host name tailscale would
// use: TS_HOSTNAME, else the pod's host name, else its name.
func TestTailnetSidecar(t *testing.T) {
	authKey := corev1.EnvVar{Name: envTSAuthKey, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{Key: "authkey"}}}
	podName := corev1.EnvVar{Name: envTSHostname, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}
	pod := func(spec corev1.PodSpec) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "ws-1"}, Spec: spec}
	}
	dev := corev1.Container{Name: "dev", Env: []corev1.EnvVar{{Name: "HOME", Value: "/home/coder"}}}
	for name, tc := range map[string]struct {
		pod      *corev1.Pod
		hostname string
		joins    bool
	}{
		"no tailscale": {pod(corev1.PodSpec{Containers: []corev1.Container{dev}}), "", false},
		"sidecar, default host name": {pod(corev1.PodSpec{Containers: []corev1.Container{dev,
			{Name: "ts", Env: []corev1.EnvVar{authKey}}}}), "ws-1", true},
		"sidecar, spec.hostname": {pod(corev1.PodSpec{Hostname: "box", Containers: []corev1.Container{dev,
			{Name: "ts", Env: []corev1.EnvVar{authKey}}}}), "box", true},
		"TS_HOSTNAME value": {pod(corev1.PodSpec{Containers: []corev1.Container{
			{Name: "ts", Env: []corev1.EnvVar{authKey, {Name: envTSHostname, Value: "elsewhere"}}}}}), "elsewhere", true},
		"TS_HOSTNAME from metadata.name": {pod(corev1.PodSpec{Hostname: "box", Containers: []corev1.Container{
			{Name: "ts", Env: []corev1.EnvVar{podName, authKey}}}}), "ws-1", true},
		"native sidecar (init container)": {pod(corev1.PodSpec{InitContainers: []corev1.Container{
			{Name: "ts", Env: []corev1.EnvVar{authKey}}}, Containers: []corev1.Container{dev}}), "ws-1", true},
		"TS_HOSTNAME without a key": {pod(corev1.PodSpec{Containers: []corev1.Container{
			{Name: "ts", Env: []corev1.EnvVar{{Name: envTSHostname, Value: "elsewhere"}}}}}), "", false},
	} {
		if hostname, joins := tailnetSidecar(tc.pod); hostname != tc.hostname || joins != tc.joins {
			t.Errorf("%s: (%q, %v), want (%q, %v)", name, hostname, joins, tc.hostname, tc.joins)
		}
	}
}
