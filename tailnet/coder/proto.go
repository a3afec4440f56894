package coder

import "github.com/cdeload/cdeload/tailnet/coder/coderproto"

// The messages of Coder's tailnet API live in package coderproto, shared
// with the lab's Coder simulator; these are their names in this package.
type (
	protoNode          = coderproto.Node
	coordinateRequest  = coderproto.CoordinateRequest
	coordinateResponse = coderproto.CoordinateResponse
	protoDERPMap       = coderproto.DERPMap
	connectionInfo     = coderproto.ConnectionInfo
	jsonDERPMap        = coderproto.JSONDERPMap
	jsonDERPRegion     = coderproto.JSONDERPRegion
	jsonDERPNode       = coderproto.JSONDERPNode
	rawMessage         = coderproto.Raw
	rawEncoding        = coderproto.Encoding
)

// Peer update kinds.
const (
	kindNode              = coderproto.KindNode
	kindDisconnected      = coderproto.KindDisconnected
	kindLost              = coderproto.KindLost
	kindReadyForHandshake = coderproto.KindReadyForHandshake
)

// RPC names of Coder's tailnet service.
const (
	rpcCoordinate     = coderproto.RPCCoordinate
	rpcStreamDERPMaps = coderproto.RPCStreamDERPMaps
)
