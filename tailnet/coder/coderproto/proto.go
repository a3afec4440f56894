// Package coderproto holds the messages of Coder's tailnet API v2
// (protobuf package coder.tailnet.v2), encoded and decoded by hand with
// protowire from the field numbers, the dRPC names and encoding that carry
// them, and the JSON connection info coderd serves. Both cdeload's Coder
// tailnet client (tailnet/coder) and the lab's Coder simulator
// (lab/codersim) use it. Only the fields cdeload uses are decoded; unknown
// fields are skipped, as protobuf requires.
package coderproto

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// Node is a tailnet node as exchanged with the coordinator.
type Node struct {
	ID            int64     // 1
	AsOf          time.Time // 2 (google.protobuf.Timestamp)
	Key           []byte    // 3: key.NodePublic.MarshalBinary
	Disco         string    // 4: "discokey:<hex>"
	PreferredDERP int32     // 5
	Addresses     []string  // 8: prefixes
	AllowedIPs    []string  // 9: prefixes
	Endpoints     []string  // 10: "ip:port"
}

// Marshal appends the encoded node to b.
func (n *Node) Marshal(b []byte) []byte {
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

// Unmarshal decodes an encoded node into n.
func (n *Node) Unmarshal(b []byte) error {
	return eachField(b, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		switch {
		case num == 1 && typ == protowire.VarintType:
			n.ID = int64(v)
		case num == 2 && typ == protowire.BytesType:
			var sec, nsec int64
			err := eachField(raw, func(num protowire.Number, typ protowire.Type, v uint64, _ []byte) error {
				switch {
				case num == 1 && typ == protowire.VarintType:
					sec = int64(v)
				case num == 2 && typ == protowire.VarintType:
					nsec = int64(v)
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("as_of: %w", err)
			}
			n.AsOf = time.Unix(sec, nsec)
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

// CoordinateRequest is one message a client sends on the Coordinate stream.
type CoordinateRequest struct {
	UpdateSelf   *Node  // 1: UpdateSelf{node = 1}
	Disconnect   bool   // 2: Disconnect{}
	AddTunnel    []byte // 3: Tunnel{id = 1}, a 16-byte UUID
	RemoveTunnel []byte // 4: Tunnel{id = 1}
}

// Marshal encodes the request.
func (r *CoordinateRequest) Marshal() []byte {
	var b []byte
	if r.UpdateSelf != nil {
		b = appendBytes(b, 1, appendBytes(nil, 1, r.UpdateSelf.Marshal(nil)))
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

// Unmarshal decodes an encoded request into r.
func (r *CoordinateRequest) Unmarshal(b []byte) error {
	tunnel := func(raw []byte) ([]byte, error) {
		var id []byte
		err := eachField(raw, func(num protowire.Number, typ protowire.Type, _ uint64, raw []byte) error {
			if num == 1 && typ == protowire.BytesType {
				id = append([]byte{}, raw...)
			}
			return nil
		})
		if id == nil {
			id = []byte{}
		}
		return id, err
	}
	return eachField(b, func(num protowire.Number, typ protowire.Type, _ uint64, raw []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		var err error
		switch num {
		case 1:
			err = eachField(raw, func(num protowire.Number, typ protowire.Type, _ uint64, raw []byte) error {
				if num == 1 && typ == protowire.BytesType {
					r.UpdateSelf = new(Node)
					return r.UpdateSelf.Unmarshal(raw)
				}
				return nil
			})
			if err != nil {
				err = fmt.Errorf("update_self: %w", err)
			}
		case 2:
			r.Disconnect = true
		case 3:
			if r.AddTunnel, err = tunnel(raw); err != nil {
				err = fmt.Errorf("add_tunnel: %w", err)
			}
		case 4:
			if r.RemoveTunnel, err = tunnel(raw); err != nil {
				err = fmt.Errorf("remove_tunnel: %w", err)
			}
		}
		return err
	})
}

// Kind is CoordinateResponse.PeerUpdate.Kind.
type Kind int32

// Peer update kinds.
const (
	KindUnspecified       Kind = 0
	KindNode              Kind = 1
	KindDisconnected      Kind = 2
	KindLost              Kind = 3
	KindReadyForHandshake Kind = 4
)

// String is the kind's protobuf enum name.
func (k Kind) String() string {
	switch k {
	case KindNode:
		return "NODE"
	case KindDisconnected:
		return "DISCONNECTED"
	case KindLost:
		return "LOST"
	case KindReadyForHandshake:
		return "READY_FOR_HANDSHAKE"
	}
	return fmt.Sprintf("KIND(%d)", int32(k))
}

// PeerUpdate is CoordinateResponse.PeerUpdate.
type PeerUpdate struct {
	ID     []byte // 1
	Node   *Node  // 2
	Kind   Kind   // 3
	Reason string // 4
}

// CoordinateResponse is one message the coordinator sends.
type CoordinateResponse struct {
	PeerUpdates []PeerUpdate // 1
	Error       string       // 2
}

// Marshal encodes the response.
func (r *CoordinateResponse) Marshal() []byte {
	var b []byte
	for _, u := range r.PeerUpdates {
		var pu []byte
		pu = appendBytes(pu, 1, u.ID)
		if u.Node != nil {
			pu = appendBytes(pu, 2, u.Node.Marshal([]byte{}))
		}
		if u.Kind != 0 {
			pu = protowire.AppendTag(pu, 3, protowire.VarintType)
			pu = protowire.AppendVarint(pu, uint64(u.Kind))
		}
		pu = appendString(pu, 4, u.Reason)
		if pu == nil {
			pu = []byte{}
		}
		b = appendBytes(b, 1, pu)
	}
	return appendString(b, 2, r.Error)
}

// Unmarshal decodes an encoded response into r.
func (r *CoordinateResponse) Unmarshal(b []byte) error {
	return eachField(b, func(num protowire.Number, typ protowire.Type, _ uint64, raw []byte) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			var pu PeerUpdate
			err := eachField(raw, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
				switch {
				case num == 1 && typ == protowire.BytesType:
					pu.ID = append([]byte(nil), raw...)
				case num == 2 && typ == protowire.BytesType:
					pu.Node = new(Node)
					return pu.Node.Unmarshal(raw)
				case num == 3 && typ == protowire.VarintType:
					pu.Kind = Kind(int32(v))
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

// DERPNode is DERPMap.Region.Node.
type DERPNode struct {
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

// DERPRegion is DERPMap.Region.
type DERPRegion struct {
	RegionID      int64  // 1
	EmbeddedRelay bool   // 2
	RegionCode    string // 3
	RegionName    string // 4
	Avoid         bool   // 5
	Nodes         []DERPNode
}

// DERPMap is DERPMap (home_params are not used).
type DERPMap struct {
	Regions map[int64]DERPRegion // 2
}

// Marshal encodes the map.
func (m *DERPMap) Marshal() []byte {
	var b []byte
	ids := make([]int64, 0, len(m.Regions))
	for id := range m.Regions {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		var entry []byte
		entry = appendVarint(entry, 1, uint64(id))
		r := m.Regions[id]
		entry = appendBytes(entry, 2, r.marshal())
		b = appendBytes(b, 2, entry)
	}
	return b
}

func (r *DERPRegion) marshal() []byte {
	b := []byte{}
	b = appendVarint(b, 1, uint64(r.RegionID))
	b = appendVarint(b, 2, boolInt(r.EmbeddedRelay))
	b = appendString(b, 3, r.RegionCode)
	b = appendString(b, 4, r.RegionName)
	b = appendVarint(b, 5, boolInt(r.Avoid))
	for _, n := range r.Nodes {
		b = appendBytes(b, 6, n.marshal())
	}
	return b
}

func (n *DERPNode) marshal() []byte {
	b := []byte{}
	b = appendString(b, 1, n.Name)
	b = appendVarint(b, 2, uint64(n.RegionID))
	b = appendString(b, 3, n.HostName)
	b = appendString(b, 4, n.CertName)
	b = appendString(b, 5, n.IPv4)
	b = appendString(b, 6, n.IPv6)
	b = appendVarint(b, 7, uint64(n.STUNPort))
	b = appendVarint(b, 8, boolInt(n.STUNOnly))
	b = appendVarint(b, 9, uint64(n.DERPPort))
	b = appendVarint(b, 10, boolInt(n.InsecureForTests))
	b = appendVarint(b, 11, boolInt(n.ForceHTTP))
	return b
}

// Unmarshal decodes an encoded map into m.
func (m *DERPMap) Unmarshal(b []byte) error {
	m.Regions = map[int64]DERPRegion{}
	return eachField(b, func(num protowire.Number, typ protowire.Type, _ uint64, raw []byte) error {
		if num != 2 || typ != protowire.BytesType {
			return nil
		}
		var id int64
		var reg DERPRegion
		err := eachField(raw, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
			switch {
			case num == 1 && typ == protowire.VarintType:
				id = int64(v)
			case num == 2 && typ == protowire.BytesType:
				return reg.Unmarshal(raw)
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

// Unmarshal decodes an encoded region into r.
func (r *DERPRegion) Unmarshal(b []byte) error {
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
			var n DERPNode
			if err := n.Unmarshal(raw); err != nil {
				return err
			}
			r.Nodes = append(r.Nodes, n)
		}
		return nil
	})
}

// Unmarshal decodes an encoded relay node into n.
func (n *DERPNode) Unmarshal(b []byte) error {
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

// appendVarint appends a varint field unless v is 0 (proto3's default).
func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func boolInt(v bool) uint64 {
	if v {
		return 1
	}
	return 0
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
