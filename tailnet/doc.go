// Package tailnet joins a Tailscale-protocol tailnet as an embedded node
// (tailscale.com/tsnet) and dials peers over it.
//
// A [Node] is one tsnet node: [New] builds it, [Node.Up] joins and waits
// until it is usable (running, has tailnet IPs, and has a home DERP it has
// received a frame from), [Node.Dial] connects to a peer by tailnet IP or
// host name, [Node.Path] reports whether traffic to a peer goes direct (UDP)
// or through a DERP relay, [Node.Listen] accepts connections (for simulated
// workspaces), and [Node.Close] leaves.
//
// # Nodes and VUs
//
// A node costs about 5 MB resident and ~56 goroutines, and joining takes
// hundreds of milliseconds of control-plane work. One node per VU is
// therefore fine for tens of VUs but not for a thousand. The default is one
// shared node per process and configuration: a [Pool] hands out reference
// counted [Lease]s keyed by the configuration (control URL, auth key,
// hostname, tags), so a thousand VUs dialling through one process share one
// WireGuard engine, and the node leaves when the last lease is released.
// Callers that want the per-VU cost model (for example to measure join time
// per VU) create their own [Node] with [New] instead.
//
// # Keeping traffic local
//
// [KeepLocal] (called by [New]) sets, once per process and before the first
// node starts, the tailscale knobs that stop a node from reaching off the
// machine when pointed at a local control server: log upload off
// (logtail.Disable, TS_NO_LOGS_NO_SUPPORT), no port mapping
// (TS_DISABLE_PORTMAPPER, TS_DISABLE_UPNP), local interface addresses not
// advertised (TS_DEBUG_OMIT_LOCAL_ADDRS), control client never paused for
// "no network" (TS_ASSUME_NETWORK_UP_FOR_TEST), a panic instead of silently
// contacting the public control plane (TS_PANIC_IF_HIT_MAIN_CONTROL), and
// sockets without SO_MARK (netns disabled). A [Config] without a ControlURL
// is refused, so a node never falls back to the public control plane, and
// the DERP map always comes from that control server. The cloud metadata
// probe can only be removed at build time (tag ts_omit_cloud).
//
// [Node.Dial] never touches the real network: the address must be a tailnet
// IP of a peer, or the name of a peer, present in the node's netmap. Dial
// waits (bounded by its context) for the peer to appear and to have a home
// DERP before dialling, because a packet sent to a tailnet address that is
// not yet in the netmap is otherwise lost (or sent to the real network).
//
// # Closing
//
// [Node.Close] closes the TCP connections dialled or accepted through the
// node that are still open, then waits (at most a few seconds) until the
// node's TCP stack has fewer than a few hundred connected endpoints before
// closing the tsnet server: tailscale's netstack, when closed, sends a RST
// per connected endpoint into a 512-packet queue that nobody reads any
// more, and hangs for good past ~500. To keep that count low, a node's TCP
// stack keeps connections it closed first in TIME-WAIT for 1 s (gVisor's
// default is 60 s) and times out closed sockets in FIN-WAIT-2 after 2 s.
// So Close is immediate on a quiet node and takes about one second right
// after heavy dialling; if connections to a vanished peer keep the stack
// busy, Close discards the stack's shutdown packets instead of hanging.
//
// # Forcing DERP
//
// Setting TS_DEBUG_NEVER_DIRECT_UDP=1 (see [ForceDERPOnly]) makes every node
// in the process relay through DERP. It is process-wide and read when a node
// starts, so tests that need it live in their own package.
package tailnet
