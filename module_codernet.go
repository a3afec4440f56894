package cdeload

import (
	"context"
	"errors"
	"fmt"

	"sync/atomic"
	"time"

	"github.com/cdeload/cdeload/engine/metrics"
	tailnetcoder "github.com/cdeload/cdeload/tailnet/coder"
)

// coderNet is the process's node on one Coder deployment's tailnet: every
// VU and every workspace of that deployment share it (Coder's own scale
// test opens one per workspace).
type coderNet struct {
	client   *tailnetcoder.Client
	reported atomic.Bool // tailnet_up_duration emitted
}

// coderNetFor returns the deployment's Coder-mode node, creating it on
// first use; it is closed when the run ends.
func (r *RootModule) coderNetFor(dep coderTarget) (*coderNet, error) {
	key := dep.url + "\x00" + dep.token
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errors.New("the run is over")
	}
	if n, ok := r.coderNets[key]; ok {
		return n, nil
	}
	c, err := tailnetcoder.New(tailnetcoder.Config{URL: dep.url, Token: dep.token})
	if err != nil {
		return nil, err
	}
	n := &coderNet{client: c}
	r.coderNets[key] = n
	r.closers = append(r.closers, func() error {
		if err := c.Close(); err != nil {
			return fmt.Errorf("cdeload: leave the tailnet of %s: %w", dep.url, err)
		}
		return nil
	})
	r.nodeStarted.Store(true)
	return n, nil
}

// connectCoder opens an SSH session to a Coder workspace's agent over the
// deployment's tailnet. The agent's SSH server (tailnet port 1 unless
// the script set a port) authenticates nobody: the tailnet is the
// authentication, so user, key and host key policy are optional.
func (mi *instance) connectCoder(ctx context.Context, e *emitter, o sshOpts, a coderAddr) (*sshSession, error) {
	if a.agentID == "" {
		return nil, fmt.Errorf("workspace %s (%s) has no agent to connect to", a.name, o.host)
	}
	cn, err := mi.root.coderNetFor(a.dep)
	if err != nil {
		return nil, err
	}
	uctx, ucancel := context.WithTimeout(ctx, defaultUpTimeout)
	info, err := cn.client.Up(uctx, a.agentID)
	ucancel()
	if err != nil {
		return nil, fmt.Errorf("workspace %s: %w", a.name, err)
	}
	if cn.reported.CompareAndSwap(false, true) {
		e.emit(func(s *metricSet) *metrics.Metric { return s.tailnetUp }, metrics.D(info.Duration))
	}
	cfg := o.cfg
	if cfg.User == "" {
		cfg.User = "coder"
	}
	if len(cfg.PrivateKeyPEM) == 0 && cfg.Password == "" {
		cfg.NoClientAuth = true
	}
	if !o.policy {
		cfg.InsecureIgnoreHostKey = true // the agent's key is vouched for by the tailnet
	}
	port := int(o.port)
	if !o.portSet {
		port = tailnetcoder.SSHPort
	}
	cfg.Timeout = o.timeout
	cctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	start := time.Now()
	conn, dinfo, err := cn.client.Dial(cctx, a.agentID, port)
	if err != nil {
		return nil, fmt.Errorf("workspace %s: %w", a.name, err)
	}
	return mi.finishConnect(cctx, e, o, cfg, conn, dinfo, start)
}

// coderHost returns the Coder workspace behind host when it is reached
// over its deployment's own tailnet: every real Coder workspace, and a
// lab's when the lab's Coder simulator serves Coder's tailnet endpoints
// (its agents then join through its coordinator, so the same client code
// runs as against a real Coder). A lab workspace without an agent (a
// Kubernetes pod of the lab's) stays on the lab's tailnet.
func (r *RootModule) coderHost(host string) (coderAddr, bool) {
	a, ok := r.coderAddrOf(host)
	return a, ok && (a.lab == nil || (a.agentID != "" && a.lab.info().CoderTailnet))
}
