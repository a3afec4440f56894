package tailnet

// Why a node tunes its TCP stack and drains it before closing.
//
// A tsnet node's TCP/IP stack is gVisor's netstack. Outbound packets go
// into a 512-slot queue that one goroutine moves into WireGuard. When the
// node closes, tailscale's netstack.Impl.Close first stops that goroutine
// and then calls gVisor's Stack.Close, which aborts every endpoint; an
// endpoint in a connected state (ESTABLISHED, FIN-WAIT, CLOSE-WAIT,
// LAST-ACK, CLOSING, TIME-WAIT) sends a RST as it is aborted. With no
// reader, the 513th RST blocks forever in the full queue, so a node with
// more than ~500 connected endpoints never finishes closing. A load
// generator that dials per iteration closes first, so every connection it
// ever made sits in TIME-WAIT for gVisor's default 60 s: a few hundred
// dials per second is enough to hang Close.
//
// The node therefore (1) shortens TIME-WAIT and the FIN-WAIT-2 timeout of
// closed sockets, so endpoints that are done leave the stack within
// seconds, and (2) on Close, first closes the connections it handed out
// that are still open and waits, bounded, until fewer than
// quiesceConnected endpoints are connected, while the packet pump still
// runs; only then does it close the tsnet server. If the stack does not
// drain in time (connections to a peer that has gone keep retransmitting
// their FIN), Close drains the outbound queue itself while the server
// closes (outboundDrainer).

import (
	"context"
	"errors"
	"expvar"
	"fmt"
	"reflect"
	"time"
	"unsafe"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"tailscale.com/metrics"
	"tailscale.com/wgengine/netstack"
)

const (
	// timeWaitTimeout is how long a connection the node closed first stays
	// in TIME-WAIT (gVisor's default: 60 s). A second covers a lost final
	// ACK and late duplicates on a tailnet whose round trips are
	// milliseconds, and ephemeral ports are picked at random per dial.
	timeWaitTimeout = time.Second
	// finWait2Timeout bounds how long a socket the node closed waits in
	// FIN-WAIT-2 for the peer's FIN (gVisor's default: 60 s). It applies
	// only to closed sockets, never to a half-closed one still in use.
	finWait2Timeout = 2 * time.Second
	// quiesceConnected is the number of connected TCP endpoints below
	// which closing the stack is safe: at most one RST each, inside the
	// 512-packet outbound queue with room for packets already queued.
	quiesceConnected = 384
	// quiesceTimeout bounds Close's wait for the stack to drain: closed
	// sockets leave through FIN-WAIT-2 and TIME-WAIT, plus slack for the
	// peer to answer.
	quiesceTimeout = finWait2Timeout + timeWaitTimeout + 2*time.Second
)

// tuneNetstack sets the TIME-WAIT and FIN-WAIT-2 timeouts on the node's
// TCP stack and returns a function reporting how many TCP endpoints are in
// a connected state (nil if the stack does not export that gauge).
func tuneNetstack(ns any) (connected func() int64, err error) {
	impl, ok := ns.(*netstack.Impl)
	if !ok {
		return nil, fmt.Errorf("netstack is %T, want *netstack.Impl", ns)
	}
	tw := tcpip.TCPTimeWaitTimeoutOption(timeWaitTimeout)
	if e := impl.SetTransportProtocolOption(tcp.ProtocolNumber, &tw); e != nil {
		return nil, fmt.Errorf("set TCP TIME-WAIT timeout to %v: %s", timeWaitTimeout, e)
	}
	fw := tcpip.TCPLingerTimeoutOption(finWait2Timeout)
	if e := impl.SetTransportProtocolOption(tcp.ProtocolNumber, &fw); e != nil {
		return nil, fmt.Errorf("set TCP FIN-WAIT-2 timeout to %v: %s", finWait2Timeout, e)
	}
	set, ok := impl.ExpVar().(*metrics.Set)
	if !ok {
		return nil, nil
	}
	g, ok := set.Get("gauge_tcp_current_connected").(expvar.Func)
	if !ok {
		return nil, nil
	}
	return func() int64 {
		v, _ := g.Value().(int64)
		return v
	}, nil
}

// errNotQuiet is returned by quiesce when the stack still has too many
// connected endpoints at the deadline.
var errNotQuiet = errors.New("TCP stack still busy")

// outboundDrainer returns a function that discards the packets in the
// stack's outbound queue until the queue is closed (when the stack removes
// its NIC at the end of closing), or nil if this tailscale version's
// netstack.Impl does not have the expected shape. It reaches an unexported
// field, so it is only the last resort of Close: when the stack still has
// too many connected endpoints after quiesceTimeout (connections to a peer
// that is gone), draining lets the stack's shutdown RSTs, which would be
// dropped anyway, go nowhere instead of blocking forever.
func outboundDrainer(ns any) func() int {
	impl, ok := ns.(*netstack.Impl)
	if !ok || impl == nil {
		return nil
	}
	f := reflect.ValueOf(impl).Elem().FieldByName("linkEP")
	if !f.IsValid() || f.Kind() != reflect.Pointer || f.IsNil() {
		return nil
	}
	ep := reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Interface()
	d, ok := ep.(interface{ Drain() int })
	if !ok {
		return nil
	}
	return d.Drain
}

// quiesce waits until fewer than quiesceConnected TCP endpoints are in a
// connected state, or ctx ends. It polls; the common case (a quiet stack)
// returns at once.
func quiesce(ctx context.Context, connected func() int64) error {
	if connected == nil {
		return nil
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		c := connected()
		if c < quiesceConnected {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %d connected TCP endpoints (want < %d): %w", errNotQuiet, c, quiesceConnected, ctx.Err())
		case <-tick.C:
		}
	}
}
