package tailnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"tailscale.com/client/local"
	"tailscale.com/ipn/store/mem"
	"tailscale.com/tsnet"
)

// Config configures one tailnet node.
type Config struct {
	// ControlURL is the coordination server (required; a node never falls
	// back to the public control plane).
	ControlURL string
	// AuthKey is the pre-authorised key presented when the node registers.
	AuthKey string
	// Hostname is the name the node presents to control and to peers.
	// Empty means "cdeload".
	Hostname string
	// Persistent registers a non-ephemeral node. The default (false) is an
	// ephemeral node, which control may forget once it goes away.
	Persistent bool
	// Dir is the parent directory for the node's private state directory,
	// which is created on New and removed on Close. Empty means the
	// process's directory under os.TempDir(), which RemoveStateDirs removes.
	Dir string
	// AdvertiseTags are ACL tags the node asks for (the lab's control uses
	// them to tell workspaces from load generators).
	AdvertiseTags []string
	// Logf, if set, receives the node's verbose backend logs. Nil discards.
	Logf func(format string, args ...any)
	// ListenOnly makes a node that only accepts connections, like a lab
	// workspace: it does not keep an index of its peers (no IPN bus watch,
	// which costs every node a LocalAPI connection, its goroutines and
	// buffers, and a JSON round trip on every netmap change). Dial and Path
	// fail with ErrListenOnly; NumPeers asks the node's backend each time.
	// It is still a full tailnet peer with its own keys and WireGuard.
	ListenOnly bool
}

// ErrListenOnly is returned (wrapped) by Dial and Path on a node created
// with Config.ListenOnly.
var ErrListenOnly = errors.New("node is listen-only (Config.ListenOnly): it does not track its peers")

// validate checks the configuration.
func (c Config) validate() error {
	if c.ControlURL == "" {
		return errors.New("tailnet: Config.ControlURL is required (refusing to use the public control plane)")
	}
	u, err := url.Parse(c.ControlURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("tailnet: Config.ControlURL %q: want an http:// or https:// URL", c.ControlURL)
	}
	if strings.Contains(u.Host, "controlplane.tailscale.com") || strings.Contains(u.Host, "login.tailscale.com") {
		return fmt.Errorf("tailnet: Config.ControlURL %q: the public control plane is not allowed", c.ControlURL)
	}
	return nil
}

// UpInfo describes a node that has joined.
type UpInfo struct {
	// Duration is the time from the start of Up until the node was usable.
	Duration time.Duration
	// HomeDERP is the region ID of the node's home DERP.
	HomeDERP int
	// IPs are the node's tailnet addresses.
	IPs []netip.Addr
}

// node lifecycle states.
const (
	stateNew = iota
	stateStarting
	stateUp
	stateFailed
	stateClosed
)

// Node is one tailnet node. Its methods are safe for concurrent use.
type Node struct {
	cfg  Config
	dir  string
	srv  *tsnet.Server
	logf func(string, ...any)

	closeCtx    context.Context // cancelled by Close
	closeCancel context.CancelFunc

	mu      sync.Mutex
	state   int
	started bool          // srv.Start succeeded; srv must be closed
	upDone  chan struct{} // closed when the Up in progress returns
	upInfo  UpInfo

	peers     *peerIndex
	conns     *connSet     // open TCP connections handed out
	connected func() int64 // connected TCP endpoints in the stack; set by up
	quiesceTO time.Duration
	probeTO   time.Duration // bounds the control server check
	watchStop context.CancelFunc
	watchDone chan struct{}
}

// New creates a node (not yet joined; see [Node.Up]). It calls [KeepLocal].
func New(cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	KeepLocal()
	if cfg.Hostname == "" {
		cfg.Hostname = "cdeload"
	}
	cfg.AdvertiseTags = slices.Clone(cfg.AdvertiseTags)
	parent := cfg.Dir
	if parent == "" {
		root, err := stateRoot()
		if err != nil {
			return nil, fmt.Errorf("tailnet: create state directory: %w", err)
		}
		parent = root
	}
	dir, err := os.MkdirTemp(parent, "node-")
	if err != nil {
		return nil, fmt.Errorf("tailnet: create state directory: %w", err)
	}
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	n := &Node{
		cfg:       cfg,
		dir:       dir,
		logf:      logf,
		peers:     newPeerIndex(),
		conns:     newConnSet(),
		quiesceTO: quiesceTimeout,
		probeTO:   controlProbeTimeout,
		srv: &tsnet.Server{
			Dir:           dir,
			Store:         new(mem.Store),
			Hostname:      cfg.Hostname,
			ControlURL:    cfg.ControlURL,
			AuthKey:       cfg.AuthKey,
			Ephemeral:     !cfg.Persistent,
			AdvertiseTags: cfg.AdvertiseTags,
			UserLogf:      logf,
			Logf:          cfg.Logf,
		},
	}
	n.closeCtx, n.closeCancel = context.WithCancel(context.Background())
	return n, nil
}

// Hostname returns the node's host name.
func (n *Node) Hostname() string { return n.cfg.Hostname }

// Up joins the tailnet and waits until the node is usable: running, with
// tailnet IPs, and with a home DERP from which it has received a frame.
// Calling Up again after success returns the first result.
func (n *Node) Up(ctx context.Context) (UpInfo, error) {
	n.mu.Lock()
	switch n.state {
	case stateUp:
		info := n.upInfo
		n.mu.Unlock()
		return info, nil
	case stateStarting:
		n.mu.Unlock()
		return UpInfo{}, errors.New("tailnet: Up already in progress")
	case stateFailed:
		n.mu.Unlock()
		return UpInfo{}, errors.New("tailnet: node failed to start; create a new one")
	case stateClosed:
		n.mu.Unlock()
		return UpInfo{}, fmt.Errorf("tailnet: Up: %w", net.ErrClosed)
	}
	n.state = stateStarting
	n.upDone = make(chan struct{})
	n.mu.Unlock()

	info, err := n.up(ctx)

	n.mu.Lock()
	defer n.mu.Unlock()
	defer close(n.upDone)
	if err != nil {
		if n.state != stateClosed {
			n.state = stateFailed
		}
		return UpInfo{}, err
	}
	if n.state == stateClosed {
		return UpInfo{}, fmt.Errorf("tailnet: Up: %w", net.ErrClosed)
	}
	n.state = stateUp
	n.upInfo = info
	return info, nil
}

func (n *Node) up(ctx context.Context) (UpInfo, error) {
	start := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(n.closeCtx, cancel)
	defer stop()

	// A wrong control URL fails here at once, with its cause.
	if err := probeControl(ctx, n.cfg.ControlURL, n.probeTO); err != nil {
		return UpInfo{}, fmt.Errorf("tailnet: join %s as %q: %w", n.cfg.ControlURL, n.cfg.Hostname, err)
	}
	if err := n.srv.Start(); err != nil {
		return UpInfo{}, fmt.Errorf("tailnet: start node %q: %w", n.cfg.Hostname, err)
	}
	n.mu.Lock()
	n.started = true
	n.mu.Unlock()
	ns, _ := n.srv.Sys().Netstack.GetOK()
	connected, err := tuneNetstack(ns)
	if err != nil {
		return UpInfo{}, fmt.Errorf("tailnet: node %q: tune TCP stack: %w", n.cfg.Hostname, err)
	}
	n.mu.Lock()
	n.connected = connected
	n.mu.Unlock()

	// Wait for the netmap (tailnet IPs) and a home DERP by polling
	// in-process state rather than through tsnet.Server.Up: Up's LocalAPI
	// watch, if cancelled in flight by Close, makes the node's Close wait
	// 5 s for the LocalAPI server to shut down.
	ips, err := n.waitIPs(ctx)
	if err != nil {
		return UpInfo{}, fmt.Errorf("tailnet: join %s as %q: %w", n.cfg.ControlURL, n.cfg.Hostname, err)
	}
	home, err := n.waitHomeDERP(ctx)
	if err != nil {
		return UpInfo{}, fmt.Errorf("tailnet: node %q: wait for home DERP: %w", n.cfg.Hostname, err)
	}
	lc, err := n.srv.LocalClient()
	if err != nil {
		return UpInfo{}, fmt.Errorf("tailnet: node %q: local client: %w", n.cfg.Hostname, err)
	}
	if !n.cfg.ListenOnly {
		if err := n.startPeerWatch(ctx, lc); err != nil {
			return UpInfo{}, err
		}
	}
	st, err := lc.StatusWithoutPeers(ctx)
	if err != nil {
		return UpInfo{}, fmt.Errorf("tailnet: node %q: status: %w", n.cfg.Hostname, err)
	}
	var peerAPIPorts []uint16
	if st.Self != nil {
		for _, u := range st.Self.PeerAPIURL {
			if ap, err := netip.ParseAddrPort(strings.TrimPrefix(u, "http://")); err == nil {
				peerAPIPorts = append(peerAPIPorts, ap.Port())
			}
		}
	}
	if err := n.restrictSockets(peerAPIPorts); err != nil {
		return UpInfo{}, fmt.Errorf("tailnet: node %q: keep outside packets out: %w", n.cfg.Hostname, err)
	}
	return UpInfo{Duration: time.Since(start), HomeDERP: home, IPs: ips}, nil
}

// startPeerWatch starts the goroutine that keeps the node's peer index in
// sync with its netmap, and returns once it has the first netmap: Dial
// right after Up then sees every peer, and Close never cancels the
// LocalAPI request in flight (which would stall Close for 5 s).
func (n *Node) startPeerWatch(ctx context.Context, lc *local.Client) error {
	wctx, wcancel := context.WithCancel(context.Background())
	n.mu.Lock()
	n.watchStop = wcancel
	n.watchDone = make(chan struct{})
	done := n.watchDone
	n.mu.Unlock()
	go func() {
		defer close(done)
		n.peers.watch(wctx, lc, n.logf)
	}()
	select {
	case <-n.peers.primed:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("tailnet: node %q: wait for netmap: %w", n.cfg.Hostname, ctx.Err())
	}
}

// waitIPs polls until the node has its netmap and tailnet addresses. It
// fails at once when the control server rejects the auth key; when ctx
// ends first, the error includes the node's health warnings.
func (n *Node) waitIPs(ctx context.Context) ([]netip.Addr, error) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ip4, ip6 := n.srv.TailscaleIPs()
		if err := n.loginRejected(); err != nil {
			return nil, err
		}
		if ip4.IsValid() || ip6.IsValid() {
			var ips []netip.Addr
			for _, ip := range []netip.Addr{ip4, ip6} {
				if ip.IsValid() {
					ips = append(ips, ip)
				}
			}
			return ips, nil
		}
		select {
		case <-ctx.Done():
			var health []string
			if ht, ok := n.srv.Sys().HealthTracker.GetOK(); ok {
				health = ht.Strings()
			}
			if len(health) > 0 {
				return nil, fmt.Errorf("no tailnet address yet (health: %s): %w", strings.Join(health, "; "), ctx.Err())
			}
			return nil, fmt.Errorf("no tailnet address yet: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// waitHomeDERP polls until magicsock's netcheck has picked a preferred DERP
// region and a frame has been received from that region.
func (n *Node) waitHomeDERP(ctx context.Context) (int, error) {
	sys := n.srv.Sys()
	ms, ok := sys.MagicSock.GetOK()
	if !ok {
		return 0, errors.New("no magicsock")
	}
	ht, ok := sys.HealthTracker.GetOK()
	if !ok {
		return 0, errors.New("no health tracker")
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if rep := ms.GetLastNetcheckReport(ctx); rep != nil && rep.PreferredDERP != 0 {
			if !ht.GetDERPRegionReceivedTime(rep.PreferredDERP).IsZero() {
				return rep.PreferredDERP, nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-tick.C:
		}
	}
}

// loopbackURL reports whether rawURL's host is a loopback address.
func loopbackURL(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	if u.Hostname() == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(u.Hostname())
	return err == nil && ip.IsLoopback()
}

// upNode returns nil if the node is up, else an error naming op.
func (n *Node) checkUp(op string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch n.state {
	case stateUp:
		return nil
	case stateClosed:
		return fmt.Errorf("tailnet: %s: %w", op, net.ErrClosed)
	default:
		return fmt.Errorf("tailnet: %s: node %q is not up (call Up first)", op, n.cfg.Hostname)
	}
}

// Listen listens on the node's tailnet addresses, e.g. Listen("tcp", ":22").
// Accepted TCP connections still open when the node closes are closed by
// [Node.Close].
func (n *Node) Listen(network, addr string) (net.Listener, error) {
	if err := n.checkUp("listen"); err != nil {
		return nil, err
	}
	ln, err := n.srv.Listen(network, addr)
	if err != nil {
		return nil, fmt.Errorf("tailnet: listen %s %s on %q: %w", network, addr, n.cfg.Hostname, err)
	}
	if strings.HasPrefix(network, "tcp") {
		ln = &trackedListener{Listener: ln, set: n.conns}
	}
	return ln, nil
}

// Addr returns the node's first tailnet IPv4 address (invalid before Up).
func (n *Node) Addr() netip.Addr {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, ip := range n.upInfo.IPs {
		if ip.Is4() {
			return ip
		}
	}
	if len(n.upInfo.IPs) > 0 {
		return n.upInfo.IPs[0]
	}
	return netip.Addr{}
}

// NumPeers returns the number of peers in the node's netmap (0 before Up).
// A listen-only node asks its backend, bounded by numPeersTimeout.
func (n *Node) NumPeers() int {
	if !n.cfg.ListenOnly {
		return n.peers.count()
	}
	if n.checkUp("count peers") != nil {
		return 0
	}
	lc, err := n.srv.LocalClient()
	if err != nil {
		return 0
	}
	ctx, cancel := context.WithTimeout(n.closeCtx, numPeersTimeout)
	defer cancel()
	st, err := lc.Status(ctx)
	if err != nil {
		n.logf("tailnet: node %q: count peers: %v", n.cfg.Hostname, err)
		return 0
	}
	return len(st.Peer)
}

// numPeersTimeout bounds a listen-only node's NumPeers.
const numPeersTimeout = 5 * time.Second

// Close leaves the tailnet and removes the node's state directory. TCP
// connections dialled or accepted through the node that are still open are
// closed first, and Close waits (a few seconds at most) until the node's
// TCP stack has few connected endpoints left, since closing a stack with
// hundreds of them would hang (see netstack.go). If Up is in progress it is
// cancelled and Close waits for it to return first (a tsnet node must not
// be closed while it is starting). Close is idempotent.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.state == stateClosed {
		n.mu.Unlock()
		return nil
	}
	n.state = stateClosed
	upDone := n.upDone
	n.mu.Unlock()

	n.closeCancel()
	if upDone != nil {
		<-upDone
	}
	n.mu.Lock()
	started, watchStop, watchDone := n.started, n.watchStop, n.watchDone
	n.mu.Unlock()
	// The bus watcher holds a LocalAPI request open; end it first or the
	// LocalAPI server's shutdown waits 5 s for it.
	if watchStop != nil {
		watchStop()
		<-watchDone
	}
	n.conns.closeAll()
	var errs []error
	if started {
		if err := n.closeServer(); err != nil {
			errs = append(errs, fmt.Errorf("tailnet: close node %q: %w", n.cfg.Hostname, err))
		}
	}
	if err := os.RemoveAll(n.dir); err != nil {
		errs = append(errs, fmt.Errorf("tailnet: remove state directory: %w", err))
	}
	return errors.Join(errs...)
}

// closeServer closes the tsnet server once its TCP stack is quiet enough
// to close without hanging (see netstack.go), or, after the node's quiesce
// timeout, while draining the stack's outbound queue.
func (n *Node) closeServer() error {
	n.mu.Lock()
	connected, timeout := n.connected, n.quiesceTO
	n.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	qerr := quiesce(ctx, connected)
	cancel()
	if qerr == nil {
		return n.srv.Close()
	}
	ns, _ := n.srv.Sys().Netstack.GetOK()
	drain := outboundDrainer(ns)
	if drain == nil {
		n.logf("tailnet: close node %q: %v; closing may hang", n.cfg.Hostname, qerr)
		return n.srv.Close()
	}
	n.logf("tailnet: close node %q: %v; discarding the stack's shutdown packets", n.cfg.Hostname, qerr)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		drain() // returns when the stack closes its outbound queue
	}()
	err := n.srv.Close()
	<-drained
	return err
}
