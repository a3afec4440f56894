package coderproto

import (
	"fmt"

	"storj.io/drpc"
)

// RPC names of Coder's tailnet service (package coder.tailnet.v2).
const (
	RPCCoordinate     = "/coder.tailnet.v2.Tailnet/Coordinate"
	RPCStreamDERPMaps = "/coder.tailnet.v2.Tailnet/StreamDERPMaps"
)

// Raw is a protobuf message already encoded (to send) or to be decoded by
// its owner (received).
type Raw struct{ B []byte }

// Encoding is the dRPC encoding of [Raw] messages: it passes their bytes
// through; the types of this package encode and decode them.
type Encoding struct{}

// Marshal implements drpc.Encoding.
func (Encoding) Marshal(msg drpc.Message) ([]byte, error) {
	m, ok := msg.(*Raw)
	if !ok {
		return nil, fmt.Errorf("coder tailnet: cannot encode %T", msg)
	}
	return m.B, nil
}

// Unmarshal implements drpc.Encoding.
func (Encoding) Unmarshal(buf []byte, msg drpc.Message) error {
	m, ok := msg.(*Raw)
	if !ok {
		return fmt.Errorf("coder tailnet: cannot decode into %T", msg)
	}
	m.B = append(m.B[:0], buf...)
	return nil
}
