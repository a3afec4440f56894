package tailnet

import (
	"net"
	"sync/atomic"
)

// CountingConn wraps a net.Conn and counts the bytes read and written
// through it (for the data_sent / data_received metrics). OnRead and
// OnWrite, if set before use, are called with each successful transfer's
// byte count, from the reading or writing goroutine.
type CountingConn struct {
	net.Conn
	OnRead  func(n int)
	OnWrite func(n int)

	sent     atomic.Int64
	received atomic.Int64
}

// NewCountingConn wraps c.
func NewCountingConn(c net.Conn) *CountingConn { return &CountingConn{Conn: c} }

// Read reads from the connection and counts the bytes.
func (c *CountingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.received.Add(int64(n))
		if c.OnRead != nil {
			c.OnRead(n)
		}
	}
	return n, err
}

// Write writes to the connection and counts the bytes.
func (c *CountingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.sent.Add(int64(n))
		if c.OnWrite != nil {
			c.OnWrite(n)
		}
	}
	return n, err
}

// BytesSent returns the number of bytes written so far.
func (c *CountingConn) BytesSent() int64 { return c.sent.Load() }

// BytesReceived returns the number of bytes read so far.
func (c *CountingConn) BytesReceived() int64 { return c.received.Load() }
