package coderproto

import (
	"reflect"
	"testing"
	"time"
)

func TestCoordinateRequestRoundTrip(t *testing.T) {
	id := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	node := &Node{ID: 7, AsOf: time.Unix(1700000000, 5).UTC(), Key: []byte("k"), Disco: "discokey:00",
		PreferredDERP: 1, Addresses: []string{"fd7a:115c:a1e0::1/128"}, AllowedIPs: []string{"fd7a:115c:a1e0::1/128"},
		Endpoints: []string{"127.0.0.1:41641"}}
	for _, in := range []CoordinateRequest{
		{UpdateSelf: node},
		{AddTunnel: id},
		{RemoveTunnel: id},
		{Disconnect: true},
	} {
		var out CoordinateRequest
		if err := out.Unmarshal(in.Marshal()); err != nil {
			t.Fatalf("unmarshal %+v: %v", in, err)
		}
		if out.UpdateSelf != nil {
			out.UpdateSelf.AsOf = out.UpdateSelf.AsOf.UTC()
		}
		if !reflect.DeepEqual(in, out) {
			t.Errorf("round trip:\n got %+v\nwant %+v", out, in)
		}
	}
}

func TestCoordinateResponseRoundTrip(t *testing.T) {
	in := CoordinateResponse{PeerUpdates: []PeerUpdate{
		{ID: []byte{1, 2}, Node: &Node{ID: 3, Key: []byte("key"), Disco: "d", PreferredDERP: 2}, Kind: KindNode},
		{ID: []byte{1, 2}, Kind: KindReadyForHandshake},
		{ID: []byte{1, 2}, Kind: KindLost, Reason: "agent left"},
	}}
	var out CoordinateResponse
	if err := out.Unmarshal(in.Marshal()); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip:\n got %+v\nwant %+v", out, in)
	}
	out = CoordinateResponse{}
	if err := out.Unmarshal((&CoordinateResponse{Error: "boom"}).Marshal()); err != nil || out.Error != "boom" {
		t.Errorf("error response: got %+v, %v", out, err)
	}
}

func TestDERPMapRoundTrip(t *testing.T) {
	in := &DERPMap{Regions: map[int64]DERPRegion{
		999: {RegionID: 999, EmbeddedRelay: true, RegionCode: "coder", RegionName: "Coder", Nodes: []DERPNode{
			{Name: "999a", RegionID: 999, HostName: "127.0.0.1", IPv4: "127.0.0.1", DERPPort: 8080, ForceHTTP: true, STUNPort: -1},
		}},
		2: {RegionID: 2, Avoid: true},
	}}
	var out DERPMap
	if err := out.Unmarshal(in.Marshal()); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, &out) {
		t.Errorf("round trip:\n got %+v\nwant %+v", out, *in)
	}
	back := in.JSON().Proto()
	want := in.Regions[999].Nodes[0]
	if got := back.Regions[999].Nodes[0]; got.HostName != want.HostName || got.DERPPort != want.DERPPort || !got.ForceHTTP || !back.Regions[999].EmbeddedRelay {
		t.Errorf("JSON round trip lost fields: %+v", back.Regions[999])
	}
}

func TestUnmarshalRejectsTruncated(t *testing.T) {
	b := (&CoordinateRequest{UpdateSelf: &Node{Key: []byte("0123456789")}}).Marshal()
	var r CoordinateRequest
	if err := r.Unmarshal(b[:len(b)-3]); err == nil {
		t.Error("truncated request decoded without error")
	}
}
