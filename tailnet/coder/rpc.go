package coder

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/coder/websocket"
	"github.com/hashicorp/yamux"
	"storj.io/drpc"
	"storj.io/drpc/drpcconn"
)

// apiVersion is the tailnet API version asked for: 2.0 has Coordinate and
// StreamDERPMaps, which is all a single-agent client needs (resume tokens,
// 2.3, are not used: a dropped coordination ends the agent's connections
// and the next dial coordinates afresh).
const apiVersion = "2.0"

// session is one tailnet API websocket: yamux over the websocket, one
// yamux stream (and dRPC connection) per RPC.
type session struct {
	ws  *websocket.Conn
	mux *yamux.Session
}

// dialSession opens the coordination websocket of agentID.
func dialSession(ctx context.Context, api *apiClient, agentID string) (*session, error) {
	u, err := api.base.Parse("/api/v2/workspaceagents/" + url.PathEscape(agentID) + "/coordinate")
	if err != nil {
		return nil, fmt.Errorf("coder tailnet: coordinate URL: %w", err)
	}
	q := u.Query()
	q.Set("version", apiVersion)
	u.RawQuery = q.Encode()
	h := http.Header{}
	h.Set(sessionTokenHeader, api.token)
	ws, res, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{
		HTTPClient:      api.http,
		HTTPHeader:      h,
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		if res != nil {
			return nil, fmt.Errorf("coder tailnet: coordinate with agent %s: %s: %w", agentID, readError(res), err)
		}
		return nil, fmt.Errorf("coder tailnet: coordinate with agent %s: %w", agentID, err)
	}
	ws.SetReadLimit(4 << 20)
	nc := websocket.NetConn(context.Background(), ws, websocket.MessageBinary)
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	mux, err := yamux.Client(nc, cfg)
	if err != nil {
		ws.Close(websocket.StatusInternalError, "yamux")
		return nil, fmt.Errorf("coder tailnet: yamux over the coordination websocket: %w", err)
	}
	return &session{ws: ws, mux: mux}, nil
}

// stream opens a dRPC stream for rpc on its own yamux stream. Closing the
// returned stream closes its transport.
func (s *session) stream(ctx context.Context, rpc string) (drpc.Stream, func(), error) {
	ys, err := s.mux.OpenStream()
	if err != nil {
		return nil, nil, fmt.Errorf("coder tailnet: open yamux stream for %s: %w", rpc, err)
	}
	conn := drpcconn.New(ys)
	st, err := conn.NewStream(ctx, rpc, rawEncoding{})
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("coder tailnet: %s: %w", rpc, err)
	}
	return st, func() { st.Close(); conn.Close() }, nil
}

// close ends the session.
func (s *session) close() {
	s.mux.Close()
	s.ws.Close(websocket.StatusNormalClosure, "")
}
