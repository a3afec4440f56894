package tailnet

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
)

// NodeSocket is a kernel socket of a node, for tests.
type NodeSocket struct {
	Proto     string
	Local     netip.AddrPort
	FilterLen int // instructions of its socket filter, 0 for none
}

func (s NodeSocket) String() string {
	return fmt.Sprintf("%s %v (filter: %d instructions)", s.Proto, s.Local, s.FilterLen)
}

// NodeSockets lists n's kernel sockets: its magicsock UDP sockets and its
// peer API listeners.
func NodeSockets(ctx context.Context, n *Node) (magicsock, peerAPI []NodeSocket, err error) {
	ms, _ := n.srv.Sys().MagicSock.GetOK()
	msPort := ms.LocalPort()
	lc, err := n.srv.LocalClient()
	if err != nil {
		return nil, nil, err
	}
	st, err := lc.StatusWithoutPeers(ctx)
	if err != nil {
		return nil, nil, err
	}
	ports := map[uint16]bool{msPort: true}
	for _, u := range st.Self.PeerAPIURL {
		if ap, err := netip.ParseAddrPort(strings.TrimPrefix(u, "http://")); err == nil {
			ports[ap.Port()] = true
		}
	}
	socks, err := kernelSockets(ports)
	if err != nil {
		return nil, nil, err
	}
	for _, s := range socks {
		var fl int
		err := s.use(func(fd int) (err error) { fl, err = socketFilterLen(fd); return err })
		if err != nil {
			return nil, nil, fmt.Errorf("filter of %s %v: %w", s.proto, s.local, err)
		}
		ns := NodeSocket{Proto: s.proto, Local: s.local, FilterLen: fl}
		if strings.HasPrefix(s.proto, "udp") && s.local.Port() == msPort {
			magicsock = append(magicsock, ns)
		} else {
			peerAPI = append(peerAPI, ns)
		}
	}
	return magicsock, peerAPI, nil
}
