// Package kubetest gives tests a real Kubernetes API server: the one
// scripts/k8s-testenv.sh started (CI does it in .ci/run), found through
// $CDELOAD_TEST_KUBECONFIG. Without it tests skip with a message, and fail
// under CI=true.
package kubetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/cdeload/cdeload/workspace/kube"
)

// EnvKubeconfig names the kubeconfig of the test API server. It is not
// KUBECONFIG so that exporting it changes no other test's behaviour.
const EnvKubeconfig = "CDELOAD_TEST_KUBECONFIG"

// Contexts of the test kubeconfig (written by scripts/k8s-testenv.sh).
const (
	// AdminContext authenticates as a cluster admin.
	AdminContext = "testenv"
	// TesterContext authenticates as "tester", a user with no permissions.
	TesterContext = "tester"
)

// Env is a test's view of the API server: its own fresh namespace.
type Env struct {
	// Kubeconfig is the kubeconfig file (contexts AdminContext, TesterContext).
	Kubeconfig string
	// Admin and Tester are client configurations for the two users.
	Admin, Tester *rest.Config
	// Core is the admin's core/v1 client.
	Core corev1client.CoreV1Interface
	// Namespace was created for the test and is deleted after it.
	Namespace string
}

// New returns the test API server with a fresh namespace, or skips the
// test (fails it under CI=true) when none is configured.
func New(t testing.TB) *Env {
	t.Helper()
	path := os.Getenv(EnvKubeconfig)
	if path == "" {
		msg := "no Kubernetes API server: run `bash scripts/k8s-testenv.sh build && bash scripts/k8s-testenv.sh start` " +
			"with K8S_COMPONENTS=\"etcd kube-apiserver kube-controller-manager\" and set " + EnvKubeconfig + " to its kubeconfig"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	e := &Env{Kubeconfig: path}
	e.Admin = load(t, path, AdminContext)
	e.Tester = load(t, path, TesterContext)
	var err error
	if e.Core, err = corev1client.NewForConfig(e.Admin); err != nil {
		t.Fatalf("kubetest: core client: %v", err)
	}
	e.Namespace = uniqueName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := e.Core.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.Namespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("kubetest: create namespace %s: %v", e.Namespace, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.Core.Namespaces().Delete(ctx, e.Namespace, metav1.DeleteOptions{}); err != nil {
			t.Errorf("kubetest: delete namespace %s: %v", e.Namespace, err)
		}
	})
	return e
}

func load(t testing.TB, path, context string) *rest.Config {
	t.Helper()
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: path}
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: context}).ClientConfig()
	if err != nil {
		t.Fatalf("kubetest: kubeconfig %s, context %s: %v", path, context, err)
	}
	rc.QPS, rc.Burst = 500, 1000
	kube.UseProtobuf(rc) // as cdeload's own clients
	return rc
}

var notDNS = regexp.MustCompile(`[^a-z0-9-]+`)

// uniqueName turns a test name into a fresh DNS label.
func uniqueName(test string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	s := strings.Trim(notDNS.ReplaceAllString(strings.ToLower(test), "-"), "-")
	if len(s) > 40 {
		s = strings.TrimRight(s[:40], "-")
	}
	return "t-" + s + "-" + hex.EncodeToString(b)
}
