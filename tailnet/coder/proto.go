package coder

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// This file holds the messages of Coder's tailnet API v2 (protobuf package
// coder.tailnet.v2), encoded and decoded by hand with protowire from the
// field numbers. Only the fields cdeload uses are decoded; unknown fields
// are skipped, as protobuf requires.

// protoNode is a tailnet node as exchanged with the coordinator.
type protoNode struct {
	ID            int64     // 1
	AsOf          time.Time // 2 (google.protobuf.Timestamp)
	Key           []byte    // 3: key.NodePublic.MarshalBinary
	Disco         string    // 4: "discokey:<hex>"
	PreferredDERP int32     // 5
	Addresses     []string  // 8: prefixes
	AllowedIPs    []string  // 9: prefixes
	Endpoints     []string  // 10: "ip:port"
}

func (n *protoNode) marshal(b []byte) []byte {
	if n.ID != 0 {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(n.ID))
	}
	if !n.AsOf.IsZero() {
		var ts []byte
		ts = protowire.AppendTag(ts, 1, protowire.VarintType)
		ts = protowire.AppendVarint(ts, uint64(n.AsOf.Unix()))
		if ns := n.AsOf.Nanosecond(); ns != 0 {
			ts = protowire.AppendTag(ts, 2, protowire.VarintType)
			ts = protowire.AppendVarint(ts, uint64(ns))
		}
		b = appendBytes(b, 2, ts)
	}
	b = appendBytes(b, 3, n.Key)
	b = appendString(b, 4, n.Disco)
	if n.PreferredDERP != 0 {
		b = protowire.AppendTag(b, 5, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(n.PreferredDERP))
	}
	for _, s := range n.Addresses {
		b = appendString(b, 8, s)
	}
	for _, s := range n.AllowedIPs {
		b = appendString(b, 9, s)
	}
	for _, s := range n.Endpoints {
		b = appendString(b, 10, s)
	}
	return b
}

func (n *protoNode) unmarshal(b []byte) error {
	return eachField(b, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		switch {
		case num == 1 && typ == protowire.VarintType:
			n.ID = int64(v)
		case num == 3 && typ == protowire.BytesType:
			n.Key = append([]byte(nil), raw...)
		case num == 4 && typ == protowire.BytesType:
			n.Disco = string(raw)
		case num == 5 && typ == protowire.VarintType:
			n.PreferredDERP = int32(v)
		case num == 8 && typ == protowire.BytesType:
			n.Addresses = append(n.Addresses, string(raw))
		case num == 9 && typ == protowire.BytesType:
			n.AllowedIPs = append(n.AllowedIPs, string(raw))
		case num == 10 && typ == protowire.BytesType:
			n.Endpoints = append(n.Endpoints, string(raw))
		}
		return nil
	})
}

// coordinateRequest is one message a client sends on the Coordinate stream.
type coordinateRequest struct {
	UpdateSelf   *protoNode // 1: UpdateSelf{node = 1}
	Disconnect   bool       // 2: Disconnect{}
	AddTunnel    []byte     // 3: Tunnel{id = 1}, a 16-byte UUID
	RemoveTunnel []byte     // 4: Tunnel{id = 1}
}

func (r *coordinateRequest) marshal() []byte {
	var b []byte
	if r.UpdateSelf != nil {
		b = appendBytes(b, 1, appendBytes(nil, 1, r.UpdateSelf.marshal(nil)))
	}
	if r.Disconnect {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, nil)
	}
	if r.AddTunnel != nil {
		b = appendBytes(b, 3, appendBytes(nil, 1, r.AddTunnel))
	}
	if r.RemoveTunnel != nil {
		b = appendBytes(b, 4, appendBytes(nil, 1, r.RemoveTunnel))
	}
	return b
}

// peerUpdateKind is CoordinateResponse.PeerUpdate.Kind.
type peerUpdateKind int32

// Peer update kinds.
const (
	kindUnspecified       peerUpdateKind = 0
	kindNode              peerUpdateKind = 1
	kindDisconnected      peerUpdateKind = 2
	kindLost              peerUpdateKind = 3
	kindReadyForHandshake peerUpdateKind = 4
)

func (k peerUpdateKind) String() string {
	switch k {
	case kindNode:
		return "NODE"
	case kindDisconnected:
		return "DISCONNECTED"
	case kindLost:
		return "LOST"
	case kindReadyForHandshake:
		return "READY_FOR_HANDSHAKE"
	}
	return fmt.Sprintf("KIND(%d)", int32(k))
}

// peerUpdate is CoordinateResponse.PeerUpdate.
type peerUpdate struct {
	ID     []byte         // 1
	Node   *protoNode     // 2
	Kind   peerUpdateKind // 3
	Reason string         // 4
}

// coordinateResponse is one message the coordinator sends.
type coordinateResponse struct {
	PeerUpdates []peerUpdate // 1
	Error       string       // 2
}

func (r *coordinateResponse) unmarshal(b []byte) error {
	return eachField(b, func(num protowire.Number, typ protowire.Type, _ uint64, raw []byte) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			var pu peerUpdate
			err := eachField(raw, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
				switch {
				case num == 1 && typ == protowire.BytesType:
					pu.ID = append([]byte(nil), raw...)
				case num == 2 && typ == protowire.BytesType:
					pu.Node = new(protoNode)
					return pu.Node.unmarshal(raw)
				case num == 3 && typ == protowire.VarintType:
					pu.Kind = peerUpdateKind(int32(v))
				case num == 4 && typ == protowire.BytesType:
					pu.Reason = string(raw)
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("peer_updates: %w", err)
			}
			r.PeerUpdates = append(r.PeerUpdates, pu)
		case num == 2 && typ == protowire.BytesType:
			r.Error = string(raw)
		}
		return nil
	})
}

// protoDERPNode is DERPMap.Region.Node.
type protoDERPNode struct {
	Name             string // 1
	RegionID         int64  // 2
	HostName         string // 3
	CertName         string // 4
	IPv4             string // 5
	IPv6             string // 6
	STUNPort         int32  // 7
	STUNOnly         bool   // 8
	DERPPort         int32  // 9
	InsecureForTests bool   // 10
	ForceHTTP        bool   // 11
}

// protoDERPRegion is DERPMap.Region.
type protoDERPRegion struct {
	RegionID      int64  // 1
	EmbeddedRelay bool   // 2
	RegionCode    string // 3
	RegionName    string // 4
	Avoid         bool   // 5
	Nodes         []protoDERPNode
}

// protoDERPMap is DERPMap (home_params are not used).
type protoDERPMap struct {
	Regions map[int64]protoDERPRegion // 2
}

func (m *protoDERPMap) unmarshal(b []byte) error {
	m.Regions = map[int64]protoDERPRegion{}
	return eachField(b, func(num protowire.Number, typ protowire.Type, _ uint64, raw []byte) error {
		if num != 2 || typ != protowire.BytesType {
			return nil
		}
		var id int64
		var reg protoDERPRegion
		err := eachField(raw, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
			switch {
			case num == 1 && typ == protowire.VarintType:
				id = int64(v)
			case num == 2 && typ == protowire.BytesType:
				return reg.unmarshal(raw)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("regions: %w", err)
		}
		m.Regions[id] = reg
		return nil
	})
}

func (r *protoDERPRegion) unmarshal(b []byte) error {
	return eachField(b, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		switch {
		case num == 1 && typ == protowire.VarintType:
			r.RegionID = int64(v)
		case num == 2 && typ == protowire.VarintType:
			r.EmbeddedRelay = v != 0
		case num == 3 && typ == protowire.BytesType:
			r.RegionCode = string(raw)
		case num == 4 && typ == protowire.BytesType:
			r.RegionName = string(raw)
		case num == 5 && typ == protowire.VarintType:
			r.Avoid = v != 0
		case num == 6 && typ == protowire.BytesType:
			var n protoDERPNode
			if err := n.unmarshal(raw); err != nil {
				return err
			}
			r.Nodes = append(r.Nodes, n)
		}
		return nil
	})
}

func (n *protoDERPNode) unmarshal(b []byte) error {
	return eachField(b, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			n.Name = string(raw)
		case num == 2 && typ == protowire.VarintType:
			n.RegionID = int64(v)
		case num == 3 && typ == protowire.BytesType:
			n.HostName = string(raw)
		case num == 4 && typ == protowire.BytesType:
			n.CertName = string(raw)
		case num == 5 && typ == protowire.BytesType:
			n.IPv4 = string(raw)
		case num == 6 && typ == protowire.BytesType:
			n.IPv6 = string(raw)
		case num == 7 && typ == protowire.VarintType:
			n.STUNPort = int32(v)
		case num == 8 && typ == protowire.VarintType:
			n.STUNOnly = v != 0
		case num == 9 && typ == protowire.VarintType:
			n.DERPPort = int32(v)
		case num == 10 && typ == protowire.VarintType:
			n.InsecureForTests = v != 0
		case num == 11 && typ == protowire.VarintType:
			n.ForceHTTP = v != 0
		}
		return nil
	})
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	if v == nil {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

var errBadProto = errors.New("malformed protobuf")

// eachField calls fn for every field of the encoded message b: v holds a
// varint's (or fixed field's) value, raw a length-delimited field's bytes.
func eachField(b []byte, fn func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: tag: %w", errBadProto, protowire.ParseError(n))
		}
		b = b[n:]
		var v uint64
		var raw []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var x uint32
			x, n = protowire.ConsumeFixed32(b)
			v = uint64(x)
		case protowire.Fixed64Type:
			v, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			raw, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("%w: field %d: %w", errBadProto, num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := fn(num, typ, v, raw); err != nil {
			return err
		}
	}
	return nil
}
