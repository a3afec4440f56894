package tailnet

import (
	"fmt"
	"net"
	"sync"
)

// connSet holds the TCP connections a node dialled or accepted that are
// still open, so that Close can close them while the node can still send
// (see netstack.go).
type connSet struct {
	mu     sync.Mutex
	closed bool
	conns  map[*trackedConn]struct{}
}

func newConnSet() *connSet { return &connSet{conns: map[*trackedConn]struct{}{}} }

// add tracks c and returns the wrapper to hand out. After closeAll it
// closes c and returns an error wrapping net.ErrClosed.
func (s *connSet) add(c net.Conn) (net.Conn, error) {
	tc := &trackedConn{Conn: c, set: s}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.Close()
		return nil, fmt.Errorf("node closing: %w", net.ErrClosed)
	}
	s.conns[tc] = struct{}{}
	s.mu.Unlock()
	return tc, nil
}

func (s *connSet) remove(tc *trackedConn) {
	s.mu.Lock()
	delete(s.conns, tc)
	s.mu.Unlock()
}

// len returns the number of open tracked connections.
func (s *connSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// closeAll closes every tracked connection and refuses new ones.
func (s *connSet) closeAll() {
	s.mu.Lock()
	s.closed = true
	conns := s.conns
	s.conns = map[*trackedConn]struct{}{}
	s.mu.Unlock()
	for tc := range conns {
		tc.Conn.Close()
	}
}

// trackedConn is a connection handed out by a node; closing it untracks
// it. It forwards CloseRead and CloseWrite (TCP half-close).
type trackedConn struct {
	net.Conn
	set *connSet
}

// Close closes the connection.
func (c *trackedConn) Close() error {
	c.set.remove(c)
	return c.Conn.Close()
}

// CloseWrite shuts down the sending side (sends FIN).
func (c *trackedConn) CloseWrite() error {
	if hc, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return hc.CloseWrite()
	}
	return fmt.Errorf("tailnet: %T has no CloseWrite", c.Conn)
}

// CloseRead shuts down the receiving side.
func (c *trackedConn) CloseRead() error {
	if hc, ok := c.Conn.(interface{ CloseRead() error }); ok {
		return hc.CloseRead()
	}
	return fmt.Errorf("tailnet: %T has no CloseRead", c.Conn)
}

// trackedListener tracks the connections it accepts.
type trackedListener struct {
	net.Listener
	set *connSet
}

// Accept waits for and returns the next connection.
func (l *trackedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.set.add(c)
}
