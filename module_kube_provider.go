package cdeload

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/grafana/sobek"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/cdeload/cdeload/tailnet"
	"github.com/cdeload/cdeload/workspace"
	"github.com/cdeload/cdeload/workspace/kube"
)

// kubeProviderObj is the Go side of a JS Kubernetes object: plain
// Kubernetes workspaces, one Pod each, through the process's shared
// informer of the namespace.
type kubeProviderObj struct {
	mi       *instance
	opts     kubeOptions
	template *corev1.Pod
	ssh      kubeSSH // sshUser, sshKey
	owners   []metav1.OwnerReference
	labURL   string // CDELOAD_LAB_URL when the object was made
	labToken string // its token (see instance.labToken)
	obs      *coderObserver
	net      *tailnetObj // the tailnet option: the pods' addresses are on it

	mu   sync.Mutex
	prov *kube.Provider
	sw   *sharedWatcher
}

// newKubernetes implements `new Kubernetes(options)`; it does not touch
// the network.
func (mi *instance) newKubernetes(call sobek.ConstructorCall) *sobek.Object {
	const op = "new Kubernetes"
	k := &kubeProviderObj{mi: mi, obs: &coderObserver{}}
	f := kubeFields(&k.opts)
	delete(f, "selector") // the provider selects its run's pods itself
	var image string
	f["image"] = func(v sobek.Value) (err error) { image, err = asNonEmpty(v); return err }
	f["podTemplate"] = func(v sobek.Value) error {
		var src []byte
		if s, ok := v.Export().(string); ok {
			src = []byte(s)
		} else {
			b, err := json.Marshal(v.Export())
			if err != nil {
				return fmt.Errorf("want a Pod as YAML/JSON text or an object: %w", err)
			}
			src = b
		}
		p, err := kube.ParsePodTemplate(src)
		k.template = p
		return err
	}
	f["sshUser"] = func(v sobek.Value) (err error) { k.ssh.user, err = asNonEmpty(v); return err }
	f["sshKey"] = func(v sobek.Value) (err error) { k.ssh.key, err = asPrivateKey(v); return err }
	f["tailnet"] = func(v sobek.Value) error {
		t, ok := mi.unwrap(v).(*tailnetObj)
		if !ok {
			return errors.New("want a Tailnet made with new Tailnet(...) by this VU")
		}
		k.net = t
		return nil
	}
	ownersSet := false
	f["ownerReferences"] = func(v sobek.Value) (err error) {
		k.owners, err = parseOwnerReferences(v.Export())
		ownersSet = true
		return err
	}
	mi.parseOptions(op, call.Argument(0), true, f)
	if k.opts.namespace == "" {
		mi.throw(fmt.Errorf("%s: option namespace is required", op))
	}
	if !ownersSet {
		k.owners = runnerPodOwner(mi.getenv, k.opts.namespace)
	}
	switch {
	case k.template != nil && image != "":
		mi.throw(fmt.Errorf("%s: set podTemplate or image, not both", op))
	case k.template == nil && image == "":
		mi.throw(fmt.Errorf("%s: set podTemplate (a Pod as YAML/JSON) or image", op))
	case image != "":
		k.template = kube.ImagePod(image)
	}
	k.labURL, k.labToken = mi.getenv(envLabURL), mi.labToken()
	o := call.This
	method(o, "createWorkspace", k.jsCreate)
	method(o, "cleanup", k.jsCleanup)
	return nil
}

// provider returns the object's provider, starting the shared informer on
// first use.
func (k *kubeProviderObj) provider(ctx context.Context) (*kube.Provider, *sharedWatcher, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.prov != nil {
		return k.prov, k.sw, nil
	}
	sw, err := k.mi.root.kubeWatcher(ctx, k.opts)
	if err != nil {
		return nil, nil, err
	}
	cfg := kube.ProviderConfig{Client: sw.core, Pods: sw.w, Namer: sw.namer, Template: k.template, OwnerReferences: k.owners, Observer: k.obs}
	if k.net != nil {
		cfg.Address = k.tailnetAddress
	}
	p, err := kube.NewProvider(cfg)
	if err != nil {
		return nil, nil, err
	}
	sw.useProvider(p)
	k.prov, k.sw = p, sw
	return p, sw, nil
}

// tailnetAddress waits, bounded by ctx (the ready wait's), until the ready
// pod is a peer of the tailnet option's tailnet under its name, and
// returns its tailnet address.
func (k *kubeProviderObj) tailnetAddress(ctx context.Context, pod kube.PodPhases) (string, error) {
	r, err := k.net.up(ctx)
	if err != nil {
		return "", fmt.Errorf("join the tailnet: %w", err)
	}
	ip, err := r.node.WaitPeer(ctx, pod.Name)
	if err != nil {
		if errors.Is(err, tailnet.ErrNotPeer) && ctx.Err() != nil {
			return "", fmt.Errorf("ready, but did not join the tailnet (as host %s) within the timeout: "+
				"a pod joins by running tailscale with its pod name as host name (see the README's Kubernetes section): %w", pod.Name, err)
		}
		return "", fmt.Errorf("tailnet address: %w", err)
	}
	return ip.String(), nil
}

func (k *kubeProviderObj) jsCreate(call sobek.FunctionCall) sobek.Value {
	mi := k.mi
	op := "kubernetes.createWorkspace"
	mi.mustVU(op)
	var req workspace.CreateRequest
	timeout := defaultCreateTimeout
	mi.parseOptions(op, call.Argument(0), false, fields{
		"name":    func(v sobek.Value) (err error) { req.Name, err = asNonEmpty(v); return err },
		"timeout": func(v sobek.Value) (err error) { timeout, err = asDuration(v); return err },
	})
	e := mi.emitter(mi.vu.Context(), nil)
	k.obs.begin(e, workspace.OpCreate)
	return mi.async(op, func(ctx context.Context) (toJS, error) {
		p, sw, err := k.provider(ctx)
		if err != nil {
			return nil, err
		}
		end := sw.begin(e)
		defer end()
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		if k.net != nil {
			// Join before the pod exists: the node then learns of the pod's
			// peer as it joins, and tailnet_up_duration is this call's.
			if _, err := k.net.upAndReport(ctx, e); err != nil {
				return nil, fmt.Errorf("join the tailnet of the workspaces: %w", err)
			}
		}
		ws, err := p.Create(ctx, req)
		if err != nil {
			return nil, err
		}
		pod := kube.ByName(ws.Name)
		sw.track(pod)
		reason := func() string { r, _ := sw.podReason(pod); return r }
		k.obs.reason.Store(&reason)
		defer k.obs.reason.Store(nil)
		ws, err = p.WaitReady(ctx, ws)
		st, _ := p.PodPhases(ws)
		emitPodPhases(e.withMeta(map[string]string{"workspace": ws.Name}), st)
		if err != nil {
			return nil, fmt.Errorf("workspace %s: %w", ws.Name, err)
		}
		mi.root.rememberWorkspace(ws.Address, ws.Name)
		mi.root.rememberKubeSSH(ws.Address, ws.Name, k.ssh)
		if k.labURL != "" {
			// `cdeload lab --kubernetes` runs each pod as one of its
			// workspaces: its tailnet and SSH credentials apply.
			if l, err := mi.root.lab(ctx, k.labURL, k.labToken); err == nil {
				mi.root.rememberCoderWorkspace(ws.Address, ws.Name, "", coderTarget{lab: l})
			}
		}
		w := &kubeWorkspace{k: k, ws: ws, phases: st}
		return func(rt *sobek.Runtime) sobek.Value { return w.object() }, nil
	})
}

func (k *kubeProviderObj) jsCleanup(sobek.FunctionCall) sobek.Value {
	mi := k.mi
	const op = "kubernetes.cleanup()"
	mi.mustVU(op)
	k.obs.begin(mi.emitter(mi.vu.Context(), nil), workspace.OpCleanup)
	return mi.async(op, func(ctx context.Context) (toJS, error) {
		p, _, err := k.provider(ctx)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(ctx, defaultCleanupTimeout)
		defer cancel()
		if err := p.Cleanup(ctx); err != nil {
			return nil, err
		}
		mi.root.forgetKubeWorkspaces(nil) // the run's pods are all gone
		return undefinedJS, nil
	})
}

// kubeWorkspace is the Go side of a JS Kubernetes workspace.
type kubeWorkspace struct {
	k      *kubeProviderObj
	ws     workspace.Workspace
	phases kube.PodPhases
}

func (w *kubeWorkspace) object() *sobek.Object {
	o := w.k.mi.vu.Runtime().NewObject()
	set(o, "name", w.ws.Name)
	set(o, "id", w.ws.ID)
	set(o, "address", w.ws.Address)
	set(o, "podIP", w.phases.IP)
	set(o, "sshUser", w.k.ssh.user)
	t := w.k.mi.vu.Runtime().NewObject()
	set(t, "readyMs", ms(w.ws.Timings.Ready))
	set(t, "podScheduleMs", ms(w.phases.ScheduleDuration()))
	set(t, "podStartMs", ms(w.phases.StartDuration()))
	set(o, "timings", t)
	method(o, "delete", w.jsDelete)
	return o
}

func (w *kubeWorkspace) jsDelete(call sobek.FunctionCall) sobek.Value {
	mi := w.k.mi
	op := "workspace.delete() of " + w.ws.Name
	mi.mustVU(op)
	timeout := defaultCreateTimeout
	mi.parseOptions(op, call.Argument(0), false, fields{
		"timeout": func(v sobek.Value) (err error) { timeout, err = asDuration(v); return err },
	})
	w.k.obs.begin(mi.emitter(mi.vu.Context(), nil), workspace.OpCleanup)
	return mi.async(op, func(ctx context.Context) (toJS, error) {
		p, _, err := w.k.provider(ctx)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		if err := p.Delete(ctx, w.ws); err != nil {
			return nil, err
		}
		mi.root.forgetKubeWorkspaces([]string{w.ws.Name})
		return undefinedJS, nil
	})
}

// useProvider remembers a provider of this run so that closing the module
// removes the pods a script left behind (an abort, no cleanup()).
func (sw *sharedWatcher) useProvider(p *kube.Provider) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.prov == nil {
		sw.prov = p
	}
}

// cleanupOnClose deletes the run's pods still there.
func (sw *sharedWatcher) cleanupOnClose() error {
	sw.mu.Lock()
	p := sw.prov
	sw.mu.Unlock()
	if p == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeCleanupTimeout)
	defer cancel()
	if err := p.Cleanup(ctx); err != nil {
		return fmt.Errorf("cdeload: clean up the Kubernetes workspaces of run %s in %s: %w", p.RunID(), p.Namespace(), err)
	}
	return nil
}

// parseOwnerReferences parses the ownerReferences option: an array of
// {apiVersion, kind, name, uid, controller?, blockOwnerDeletion?}, strictly
// (an unknown key is an error).
func parseOwnerReferences(v any) ([]metav1.OwnerReference, error) {
	if _, ok := v.([]any); !ok {
		return nil, errors.New("want an array of {apiVersion, kind, name, uid, controller?, blockOwnerDeletion?}")
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("want an array of owner references: %w", err)
	}
	var refs []metav1.OwnerReference
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&refs); err != nil {
		return nil, fmt.Errorf("want an array of {apiVersion, kind, name, uid, controller?, blockOwnerDeletion?}: %w", err)
	}
	for i, r := range refs {
		for _, f := range []struct{ key, val string }{{"apiVersion", r.APIVersion}, {"kind", r.Kind}, {"name", r.Name}, {"uid", string(r.UID)}} {
			if f.val == "" {
				return nil, fmt.Errorf("[%d].%s is required", i, f.key)
			}
		}
	}
	return refs, nil
}

// Downward-API variables of a k6-operator runner pod (see the README).
const (
	envPodName      = "POD_NAME"
	envPodUID       = "POD_UID"
	envPodNamespace = "POD_NAMESPACE"
)

// runnerPodOwner returns the runner's own pod as the owner of workspace
// pods in namespace, when POD_NAME and POD_UID say which pod the run is
// in: the garbage collector then deletes the workspaces with the runner.
// A pod of another namespace (POD_NAMESPACE set and different) cannot own
// them: the garbage collector would delete them at once.
func runnerPodOwner(getenv func(string) string, namespace string) []metav1.OwnerReference {
	name, uid := getenv(envPodName), getenv(envPodUID)
	if name == "" || uid == "" {
		return nil
	}
	if ns := getenv(envPodNamespace); ns != "" && ns != namespace {
		return nil
	}
	return []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: name, UID: types.UID(uid)}}
}
