package coderproto

// ConnectionInfo is GET /api/v2/workspaceagents/{id}/connection.
type ConnectionInfo struct {
	DERPMap                  JSONDERPMap `json:"derp_map"`
	DERPForceWebsockets      bool        `json:"derp_force_websockets"`
	DisableDirectConnections bool        `json:"disable_direct_connections"`
	HostnameSuffix           string      `json:"hostname_suffix"`
}

// JSONDERPMap is the DERP map as coderd renders it (tailcfg's JSON plus
// the fields of Coder's fork that upstream tailcfg does not know).
type JSONDERPMap struct {
	Regions map[int]*JSONDERPRegion `json:"Regions"`
}

// JSONDERPRegion is one region of a [JSONDERPMap].
type JSONDERPRegion struct {
	EmbeddedRelay bool            `json:"EmbeddedRelay"`
	RegionID      int             `json:"RegionID"`
	RegionCode    string          `json:"RegionCode"`
	RegionName    string          `json:"RegionName"`
	Avoid         bool            `json:"Avoid"`
	Nodes         []*JSONDERPNode `json:"Nodes"`
}

// JSONDERPNode is one relay node of a [JSONDERPRegion].
type JSONDERPNode struct {
	Name      string `json:"Name"`
	RegionID  int    `json:"RegionID"`
	HostName  string `json:"HostName"`
	IPv4      string `json:"IPv4"`
	STUNOnly  bool   `json:"STUNOnly"`
	DERPPort  int    `json:"DERPPort"`
	ForceHTTP bool   `json:"ForceHTTP"`
}

// JSON converts a streamed DERP map to the connection-info form.
func (m *DERPMap) JSON() JSONDERPMap {
	out := JSONDERPMap{Regions: map[int]*JSONDERPRegion{}}
	for id, r := range m.Regions {
		jr := &JSONDERPRegion{EmbeddedRelay: r.EmbeddedRelay, RegionID: int(id), RegionCode: r.RegionCode, RegionName: r.RegionName, Avoid: r.Avoid}
		for _, n := range r.Nodes {
			jr.Nodes = append(jr.Nodes, &JSONDERPNode{
				Name: n.Name, RegionID: int(n.RegionID), HostName: n.HostName, IPv4: n.IPv4, STUNOnly: n.STUNOnly,
				DERPPort: int(n.DERPPort), ForceHTTP: n.ForceHTTP,
			})
		}
		out.Regions[int(id)] = jr
	}
	return out
}

// Proto converts a connection-info DERP map to the streamed form.
func (m JSONDERPMap) Proto() *DERPMap {
	out := &DERPMap{Regions: map[int64]DERPRegion{}}
	for id, r := range m.Regions {
		if r == nil {
			continue
		}
		pr := DERPRegion{RegionID: int64(id), EmbeddedRelay: r.EmbeddedRelay, RegionCode: r.RegionCode, RegionName: r.RegionName, Avoid: r.Avoid}
		for _, n := range r.Nodes {
			if n == nil {
				continue
			}
			pr.Nodes = append(pr.Nodes, DERPNode{
				Name: n.Name, RegionID: int64(n.RegionID), HostName: n.HostName, IPv4: n.IPv4, STUNOnly: n.STUNOnly,
				DERPPort: int32(n.DERPPort), ForceHTTP: n.ForceHTTP,
			})
		}
		out.Regions[int64(id)] = pr
	}
	return out
}
