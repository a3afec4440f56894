package codersim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/coder/websocket"
)

// handlePTY serves GET /api/v2/workspaceagents/{id}/pty: Coder's
// reconnecting-PTY websocket. Client frames are JSON
// {"data","height","width"}; server frames are raw terminal output. Each
// connection opens a new session on the agent (reattaching by reconnect ID
// to a live session is not simulated).
func (s *Server) handlePTY(w http.ResponseWriter, r *http.Request, caller *user) {
	q := r.URL.Query()
	if _, ok := parseUUID(q.Get("reconnect")); !ok {
		writeError(w, http.StatusBadRequest, `Query param "reconnect" must be a valid UUID.`, "",
			validationError{Field: "reconnect", Detail: `Query param "reconnect" must be a valid UUID.`})
		return
	}
	var size [2]uint16
	for i, name := range []string{"height", "width"} {
		v := q.Get(name)
		if v == "" {
			continue
		}
		n, err := strconv.ParseUint(v, 10, 16)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("Query param %q must be a valid 16-bit unsigned integer.", name), "",
				validationError{Field: name, Detail: err.Error()})
			return
		}
		size[i] = uint16(n)
	}
	switch bt := q.Get("backend_type"); bt {
	case "", "buffered", "screen":
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Query param \"backend_type\" must be one of buffered, screen; got %q.", bt), "")
		return
	}
	s.mu.Lock()
	a := s.agents[r.PathValue("workspaceagent")]
	if a == nil || !s.canAccess(caller, s.workspaces[a.workspaceID]) {
		s.mu.Unlock()
		notFound(w)
		return
	}
	if st := s.agentStatus(a, time.Now()); st != "connected" || a.impl == nil {
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Agent state is %q, it must be in the \"connected\" state.", st), "")
		return
	}
	impl := a.impl
	s.mu.Unlock()

	pty, err := impl.OpenPTY(r.Context(), PTYRequest{Command: q.Get("command"), Height: size[0], Width: size[1]})
	if err != nil {
		writeError(w, http.StatusBadGateway, "Failed to dial workspace agent.", err.Error())
		return
	}
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		_ = pty.Close()
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	done := make(chan struct{})
	go func() { // PTY output → websocket
		defer close(done)
		buf := make([]byte, 32<<10)
		for {
			n, err := pty.Read(buf)
			if n > 0 {
				if werr := conn.Write(ctx, websocket.MessageBinary, buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				_ = conn.Close(websocket.StatusNormalClosure, "")
				return
			}
		}
	}()
	for { // websocket → PTY input
		_, msg, err := conn.Read(ctx)
		if err != nil {
			break
		}
		var req struct {
			Data   string `json:"data"`
			Height uint16 `json:"height"`
			Width  uint16 `json:"width"`
		}
		if err := json.Unmarshal(msg, &req); err != nil {
			_ = conn.Close(websocket.StatusUnsupportedData, "invalid reconnecting-pty request")
			break
		}
		if req.Data != "" {
			if _, err := pty.Write([]byte(req.Data)); err != nil {
				break
			}
		}
	}
	_ = pty.Close()
	cancel()
	<-done
	_ = conn.CloseNow()
}
