package cdeload

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/grafana/sobek"

	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/tailnet"
)

// Environment variables read by the Tailnet constructor.
const (
	envControlURL = "TS_CONTROL_URL"
	envAuthKey    = "TS_AUTHKEY"
	envNeverUDP   = "TS_DEBUG_NEVER_DIRECT_UDP"
)

// Tailnet defaults.
const (
	defaultUpTimeout   = 2 * time.Minute
	defaultDialTimeout = 30 * time.Second
	sharedHostname     = "cdeload"
)

// tailnetOpts are the resolved constructor options of a Tailnet.
type tailnetOpts struct {
	controlURL, authKey string // from the options or TS_CONTROL_URL / TS_AUTHKEY
	labURL              string // CDELOAD_LAB_URL when controlURL is empty
	labToken            string // its token (see instance.labToken)
	hostname            string
	shared              bool
	derpOnly            bool
	timeout             time.Duration
}

// tailnetSource is where a Tailnet joins: a control server, and the lab
// behind it when it is one (whose SSH credentials then apply).
type tailnetSource struct {
	controlURL, authKey string
	lab                 labTarget
}

// tailnetObj is the Go side of one JS Tailnet object. Its node is joined on
// the first network call and kept across iterations until close().
type tailnetObj struct {
	mi   *instance
	opts tailnetOpts
	sem  chan struct{} // serialises joining and closing

	// Guarded by sem.
	lease  *tailnet.Lease
	node   *tailnet.Node
	info   tailnet.UpInfo
	src    tailnetSource
	closed bool
}

// upResult is a joined node and whether this call joined it first.
type upResult struct {
	node  *tailnet.Node
	info  tailnet.UpInfo
	src   tailnetSource
	fresh bool // the node's up duration has not been emitted yet
}

// newTailnet implements `new Tailnet(options?)`. It does not touch the
// network, so it may run in the init context.
func (mi *instance) newTailnet(call sobek.ConstructorCall) *sobek.Object {
	t := mi.makeTailnet("new Tailnet", call.Argument(0))
	mi.bindTailnet(call.This, t)
	return nil
}

// makeTailnet parses Tailnet options (or none) into a tailnetObj.
func (mi *instance) makeTailnet(op string, options sobek.Value) *tailnetObj {
	o := tailnetOpts{shared: true, timeout: defaultUpTimeout}
	mi.parseOptions(op, options, false, fields{
		"controlURL": func(v sobek.Value) (err error) { o.controlURL, err = asNonEmpty(v); return err },
		"authKey":    func(v sobek.Value) (err error) { o.authKey, err = asNonEmpty(v); return err },
		"hostname": func(v sobek.Value) (err error) {
			o.hostname, err = asNonEmpty(v)
			if err == nil && !validHostname(o.hostname) {
				err = errors.New("want 1-63 characters of a-z, A-Z, 0-9 and '-', not starting or ending with '-'")
			}
			return err
		},
		"shared":   func(v sobek.Value) (err error) { o.shared, err = asBool(v); return err },
		"derpOnly": func(v sobek.Value) (err error) { o.derpOnly, err = asBool(v); return err },
		"timeout":  func(v sobek.Value) (err error) { o.timeout, err = asDuration(v); return err },
	})
	if o.controlURL == "" {
		o.controlURL = mi.getenv(envControlURL)
	}
	if o.authKey == "" {
		o.authKey = mi.getenv(envAuthKey)
	}
	if o.controlURL == "" {
		if o.authKey != "" {
			mi.throw(fmt.Errorf("%s: authKey (or %s) is set but no controlURL (or %s): set both, or neither to use the lab", op, envAuthKey, envControlURL))
		}
		o.labURL, o.labToken = mi.getenv(envLabURL), mi.labToken()
	}
	if o.derpOnly {
		// DERP-only is a process-wide tailscale knob read when a node
		// starts; it cannot differ between nodes of one process.
		if mi.root.nodeStarted.Load() && os.Getenv(envNeverUDP) != "1" {
			mi.throw(fmt.Errorf("%s: derpOnly: true must be set before any tailnet node of the process starts "+
				"(it applies to every node of the process); create this Tailnet in the init context", op))
		}
		tailnet.ForceDERPOnly()
	}
	if o.hostname == "" {
		o.hostname = sharedHostname
		if !o.shared {
			id := uint64(0)
			if st := mi.vu.State(); st != nil {
				id = st.VUID
			}
			o.hostname = fmt.Sprintf("cdeload-vu%d-%d", id, mi.root.seq.Add(1))
		}
	}
	return &tailnetObj{mi: mi, opts: o, sem: make(chan struct{}, 1)}
}

// bindTailnet puts the Tailnet methods on o.
func (mi *instance) bindTailnet(o *sobek.Object, t *tailnetObj) {
	mi.wrap(o, t)
	method(o, "up", t.jsUp)
	method(o, "dial", t.jsDial)
	method(o, "path", t.jsPath)
	method(o, "close", t.jsClose)
	set(o, "hostname", t.opts.hostname)
	set(o, "shared", t.opts.shared)
}

// validHostname reports whether s is a valid DNS label.
func validHostname(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// resolve finds the control server: the options / environment, or a lab.
func (t *tailnetObj) resolve(ctx context.Context) (tailnetSource, error) {
	if t.opts.controlURL != "" {
		return tailnetSource{controlURL: t.opts.controlURL, authKey: t.opts.authKey}, nil
	}
	l, err := t.mi.root.lab(ctx, t.opts.labURL, t.opts.labToken)
	if err != nil {
		return tailnetSource{}, err
	}
	inf := l.info()
	return tailnetSource{controlURL: inf.ControlURL, authKey: inf.AuthKey, lab: l}, nil
}

// up joins the tailnet once (shared through the root's pool, or a node of
// its own) and returns the node. ctx bounds the wait.
func (t *tailnetObj) up(ctx context.Context) (upResult, error) {
	select {
	case t.sem <- struct{}{}:
	case <-ctx.Done():
		return upResult{}, ctx.Err()
	}
	defer func() { <-t.sem }()
	if t.closed {
		return upResult{}, errors.New("this Tailnet was closed")
	}
	if t.node != nil {
		return upResult{node: t.node, info: t.info, src: t.src}, nil
	}
	src, err := t.resolve(ctx)
	if err != nil {
		return upResult{}, err
	}
	cfg := tailnet.Config{ControlURL: src.controlURL, AuthKey: src.authKey, Hostname: t.opts.hostname}
	ctx, cancel := context.WithTimeout(ctx, t.opts.timeout)
	defer cancel()
	root := t.mi.root
	root.nodeStarted.Store(true)
	res := upResult{src: src}
	if t.opts.shared {
		lease, err := root.pool.Acquire(ctx, cfg)
		if err != nil {
			return upResult{}, fmt.Errorf("join the tailnet at %s: %w", src.controlURL, err)
		}
		if err := root.addLease(lease); err != nil {
			lease.Release()
			return upResult{}, err
		}
		t.lease, t.node, t.info = lease, lease.Node(), lease.UpInfo()
		res.fresh = root.firstUp(t.node)
	} else {
		n, err := tailnet.New(cfg)
		if err != nil {
			return upResult{}, fmt.Errorf("create tailnet node: %w", err)
		}
		if err := root.addNode(n); err != nil {
			n.Close()
			return upResult{}, err
		}
		info, err := n.Up(ctx)
		if err != nil {
			root.dropNode(n)
			n.Close()
			return upResult{}, fmt.Errorf("join the tailnet at %s: %w", src.controlURL, err)
		}
		t.node, t.info = n, info
		res.fresh = true
	}
	t.src = src
	res.node, res.info = t.node, t.info
	return res, nil
}

// upAndReport joins and emits tailnet_up_duration the first time a node
// is seen.
func (t *tailnetObj) upAndReport(ctx context.Context, e *emitter) (upResult, error) {
	r, err := t.up(ctx)
	if err == nil && r.fresh {
		e.emit(func(s *metricSet) *metrics.Metric { return s.tailnetUp }, metrics.D(r.info.Duration))
	}
	return r, err
}

func (t *tailnetObj) jsUp(sobek.FunctionCall) sobek.Value {
	const op = "tailnet.up()"
	mi := t.mi
	mi.mustVU(op)
	e := mi.emitter(mi.vu.Context(), nil)
	return mi.async(op, func(ctx context.Context) (toJS, error) {
		r, err := t.upAndReport(ctx, e)
		if err != nil {
			return nil, err
		}
		return func(rt *sobek.Runtime) sobek.Value {
			o := rt.NewObject()
			set(o, "durationMs", ms(r.info.Duration))
			set(o, "homeDerp", r.info.HomeDERP)
			ips := make([]any, len(r.info.IPs))
			for i, ip := range r.info.IPs {
				ips[i] = ip.String()
			}
			set(o, "ips", rt.NewArray(ips...))
			set(o, "hostname", r.node.Hostname())
			return o
		}, nil
	})
}

// hostArg reads a non-empty host argument.
func (mi *instance) hostArg(op string, v sobek.Value) string {
	h, err := asNonEmpty(v)
	if err != nil {
		mi.throw(fmt.Errorf("%s: host %s: %w (a tailnet IP or a peer's name)", op, describe(v), err))
	}
	return h
}

// hostMeta is the sample metadata of a connection to host.
func (mi *instance) hostMeta(host string) map[string]string {
	m := map[string]string{"host": host}
	if ws := mi.root.workspaceName(host); ws != "" {
		m["workspace"] = ws
	}
	return m
}

func (t *tailnetObj) jsDial(call sobek.FunctionCall) sobek.Value {
	mi := t.mi
	op := "tailnet.dial(host, port)"
	mi.mustVU(op)
	host := mi.hostArg(op, call.Argument(0))
	p, err := asInt(call.Argument(1), 1, 65535)
	if err != nil {
		mi.throw(fmt.Errorf("%s: port %s: %w", op, describe(call.Argument(1)), err))
	}
	timeout := defaultDialTimeout
	mi.parseOptions(op, call.Argument(2), false, fields{
		"timeout": func(v sobek.Value) (err error) { timeout, err = asDuration(v); return err },
	})
	op = fmt.Sprintf("tailnet.dial(%q, %d)", host, p)
	e := mi.emitter(mi.vu.Context(), mi.hostMeta(host))
	return mi.async(op, func(ctx context.Context) (toJS, error) {
		r, err := t.upAndReport(ctx, e)
		if err != nil {
			return nil, err
		}
		dctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		conn, info, err := r.node.Dial(dctx, "tcp", net.JoinHostPort(host, strconv.Itoa(int(p))))
		if err != nil {
			return nil, dialError(err, timeout)
		}
		conn.Close()
		e.emit(func(s *metricSet) *metrics.Metric { return s.tailnetDial }, metrics.D(info.Duration), "path", string(info.Path))
		return func(rt *sobek.Runtime) sobek.Value {
			o := rt.NewObject()
			set(o, "path", string(info.Path))
			set(o, "durationMs", ms(info.Duration))
			set(o, "address", info.Peer.String())
			return o
		}, nil
	})
}

// dialError explains a failed tailnet dial.
func dialError(err error, timeout time.Duration) error {
	if errors.Is(err, tailnet.ErrNotPeer) {
		return fmt.Errorf("no such peer on the tailnet within %v (is the workspace running and on the same tailnet?): %w", timeout, err)
	}
	return err
}

func (t *tailnetObj) jsPath(call sobek.FunctionCall) sobek.Value {
	mi := t.mi
	op := "tailnet.path(host)"
	mi.mustVU(op)
	host := mi.hostArg(op, call.Argument(0))
	op = fmt.Sprintf("tailnet.path(%q)", host)
	e := mi.emitter(mi.vu.Context(), nil)
	return mi.async(op, func(ctx context.Context) (toJS, error) {
		r, err := t.upAndReport(ctx, e)
		if err != nil {
			return nil, err
		}
		p, err := r.node.Path(ctx, host)
		if err != nil {
			return nil, err
		}
		return func(rt *sobek.Runtime) sobek.Value { return rt.ToValue(string(p)) }, nil
	})
}

func (t *tailnetObj) jsClose(sobek.FunctionCall) sobek.Value {
	const op = "tailnet.close()"
	mi := t.mi
	mi.mustVU(op)
	return mi.async(op, func(ctx context.Context) (toJS, error) {
		return undefinedJS, t.close(ctx)
	})
}

// close releases the lease or closes the node; later calls fail. It is
// idempotent.
func (t *tailnetObj) close(ctx context.Context) error {
	select {
	case t.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-t.sem }()
	if t.closed {
		return nil
	}
	t.closed = true
	root := t.mi.root
	switch {
	case t.lease != nil:
		root.dropLease(t.lease)
		return t.lease.Release()
	case t.node != nil:
		root.dropNode(t.node)
		return t.node.Close()
	}
	return nil
}
