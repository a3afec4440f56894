package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/cdeload/cdeload/lab"
	"github.com/cdeload/cdeload/lab/kubelet"
	"github.com/cdeload/cdeload/workspace/kube"
)

// Default namespace of `cdeload lab --kubernetes`.
const defaultLabNamespace = "cdeload-lab"

// labKubeFlags adds the --kubernetes flags of `cdeload lab` and returns
// the function that turns them into the lab's Kubernetes configuration
// (nil without --kubernetes).
func labKubeFlags(fs *pflag.FlagSet) func() (*lab.KubernetesConfig, error) {
	on := fs.Bool("kubernetes", false, "run the workspaces as pods of a real Kubernetes API server (a lab kubelet runs them; Coder builds create Deployments)")
	kubeconfig := fs.String("kubeconfig", "", "Kubernetes: kubeconfig file (default $KUBECONFIG, then ~/.kube/config, then in-cluster)")
	kctx := fs.String("kube-context", "", "Kubernetes: kubeconfig context (default: its current context)")
	ns := fs.String("kube-namespace", defaultLabNamespace, "Kubernetes: namespace of the workspace pods (created if missing)")
	sched := fs.Duration("pod-schedule-delay", 0, "Kubernetes: pod created → scheduled (e.g. 500ms)")
	pull := fs.Duration("pod-pull-delay", 0, "Kubernetes: scheduled → image pulled")
	start := fs.Duration("pod-start-delay", 0, "Kubernetes: image pulled → containers ready")
	unsched := fs.Float64("pod-unschedulable-rate", 0, "Kubernetes: probability (0-1) that a pod stays Unschedulable")
	pullErr := fs.Float64("pod-image-pull-backoff-rate", 0, "Kubernetes: probability (0-1) that a pod stays in ImagePullBackOff")
	crash := fs.Float64("pod-crash-rate", 0, "Kubernetes: probability (0-1) that a pod's container stays in CrashLoopBackOff")
	seed := fs.Uint64("pod-seed", 0, "Kubernetes: seed of the pod fault choice (0: random)")
	return func() (*lab.KubernetesConfig, error) {
		if !*on {
			var set []string
			fs.Visit(func(f *pflag.Flag) {
				switch f.Name {
				case "kubeconfig", "kube-context", "kube-namespace", "pod-schedule-delay", "pod-pull-delay", "pod-start-delay",
					"pod-unschedulable-rate", "pod-image-pull-backoff-rate", "pod-crash-rate", "pod-seed":
					set = append(set, "--"+f.Name)
				}
			})
			if len(set) > 0 {
				return nil, fmt.Errorf("%s: needs --kubernetes", set[0])
			}
			return nil, nil
		}
		for name, d := range map[string]*float64{"pod-unschedulable-rate": unsched, "pod-image-pull-backoff-rate": pullErr, "pod-crash-rate": crash} {
			if !(*d >= 0 && *d <= 1) {
				return nil, fmt.Errorf("--%s %v: must be a probability between 0 and 1", name, *d)
			}
		}
		if s := *unsched + *pullErr + *crash; s > 1 {
			return nil, fmt.Errorf("--pod-unschedulable-rate, --pod-image-pull-backoff-rate and --pod-crash-rate sum to %v: must be at most 1", s)
		}
		for name, d := range map[string]float64{"pod-schedule-delay": sched.Seconds(), "pod-pull-delay": pull.Seconds(), "pod-start-delay": start.Seconds()} {
			if d < 0 {
				return nil, fmt.Errorf("--%s: must not be negative", name)
			}
		}
		rc, err := kube.ClientConfig{Kubeconfig: *kubeconfig, Context: *kctx}.RESTConfig()
		if err != nil {
			return nil, err
		}
		return &lab.KubernetesConfig{REST: rc, Namespace: *ns, ScheduleDelay: *sched, PullDelay: *pull, StartDelay: *start,
			Faults: kubelet.Faults{Unschedulable: *unsched, ImagePullBackOff: *pullErr, Crash: *crash}, Seed: *seed}, nil
	}
}
