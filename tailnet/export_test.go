package tailnet

import "time"

// TCPConnected returns the number of TCP endpoints in a connected state
// (ESTABLISHED through TIME-WAIT) in n's stack, or -1 if unknown.
func TCPConnected(n *Node) int64 {
	n.mu.Lock()
	f := n.connected
	n.mu.Unlock()
	if f == nil {
		return -1
	}
	return f()
}

// OpenConns returns the number of open TCP connections n handed out.
func OpenConns(n *Node) int { return n.conns.len() }

// QuiesceConnected is the threshold Close waits for.
const QuiesceConnected = quiesceConnected

// SetQuiesceTimeout sets how long n's Close waits for its TCP stack to
// drain before falling back to discarding the shutdown packets.
func SetQuiesceTimeout(n *Node, d time.Duration) {
	n.mu.Lock()
	n.quiesceTO = d
	n.mu.Unlock()
}

// HasOutboundDrainer reports whether the fallback drainer finds the
// stack's outbound queue in this tailscale version.
func HasOutboundDrainer(n *Node) bool {
	ns, _ := n.srv.Sys().Netstack.GetOK()
	return outboundDrainer(ns) != nil
}

// SetProbeTimeout sets how long n's Up waits for the control server to
// answer its first request.
func SetProbeTimeout(n *Node, d time.Duration) {
	n.mu.Lock()
	n.probeTO = d
	n.mu.Unlock()
}
