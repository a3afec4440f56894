// Package kube connects cdeload to a Kubernetes API server: one shared pod
// informer per namespace that times the phases of workspace pods (scheduled,
// containers ready) and names the reason of a pod that never becomes ready,
// and a Pod-per-workspace provider for CDEs that are plain Kubernetes.
package kube

import (
	"errors"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/runtime"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Client rate limits: client-go's defaults (5 requests/s, burst 10) would
// throttle a load test; the API server's own priority and fairness limits
// apply above these.
const (
	DefaultQPS   = 200
	DefaultBurst = 400
)

// ClientConfig says how to reach an API server.
type ClientConfig struct {
	// Kubeconfig is a kubeconfig file; "" uses $KUBECONFIG, then
	// ~/.kube/config, then the in-cluster service account (a runner pod).
	Kubeconfig string
	// Context is the kubeconfig context; "" uses its current context.
	Context string
	// QPS and Burst bound the client's request rate (DefaultQPS, DefaultBurst
	// when zero).
	QPS   float32
	Burst int
}

// RESTConfig loads the client configuration cfg names.
func (cfg ClientConfig) RESTConfig() (*rest.Config, error) {
	var rc *rest.Config
	var err error
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if cfg.Kubeconfig != "" {
		rules.ExplicitPath = cfg.Kubeconfig
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: cfg.Context}
	rc, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil && cfg.Kubeconfig == "" && cfg.Context == "" && os.Getenv("KUBECONFIG") == "" {
		// No kubeconfig at all: a pod in the cluster.
		if ic, icErr := rest.InClusterConfig(); icErr == nil {
			rc, err = ic, nil
		} else {
			err = errors.Join(err, fmt.Errorf("not in a cluster either: %w", icErr))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client config (kubeconfig %q, context %q): %w", cfg.Kubeconfig, cfg.Context, err)
	}
	rc.QPS, rc.Burst = cfg.QPS, cfg.Burst
	if rc.QPS == 0 {
		rc.QPS = DefaultQPS
	}
	if rc.Burst == 0 {
		rc.Burst = DefaultBurst
	}
	rc.UserAgent = "cdeload"
	UseProtobuf(rc)
	return rc, nil
}

// UseProtobuf makes rc's typed clients talk protobuf, as Kubernetes' own
// components do: decoding pods from a watch costs several times less CPU
// than JSON, which keeps the informer light and its timestamps close to
// the delivery on a busy machine. JSON stays accepted.
func UseProtobuf(rc *rest.Config) {
	rc.ContentType = runtime.ContentTypeProtobuf
	rc.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
}

// CoreClient returns the typed core/v1 client for cfg.
func (cfg ClientConfig) CoreClient() (corev1client.CoreV1Interface, error) {
	rc, err := cfg.RESTConfig()
	if err != nil {
		return nil, err
	}
	c, err := corev1client.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client for %s: %w", rc.Host, err)
	}
	return c, nil
}
