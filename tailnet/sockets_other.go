//go:build !linux

package tailnet

// restrictSockets is a no-op outside Linux (see sockets_linux.go).
func (n *Node) restrictSockets([]uint16) error { return nil }
