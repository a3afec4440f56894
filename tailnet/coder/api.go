package coder

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// sessionTokenHeader carries a Coder session token.
const sessionTokenHeader = "Coder-Session-Token"

// apiClient makes the REST calls the tailnet client needs.
type apiClient struct {
	base  *url.URL
	token string
	http  *http.Client
}

// connectionInfo fetches the tailnet connection info for agentID.
func (a *apiClient) connectionInfo(ctx context.Context, agentID string) (*connectionInfo, error) {
	u, err := a.base.Parse("/api/v2/workspaceagents/" + url.PathEscape(agentID) + "/connection")
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set(sessionTokenHeader, a.token)
	res, err := a.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("coder tailnet: connection info of agent %s: %w", agentID, err)
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("coder tailnet: %s does not serve the tailnet connection info of agent %s (%s): "+
			"not a Coder deployment with a tailnet, or no such agent; Coder's web terminal (ws.terminal()) needs no tailnet",
			a.base.Redacted(), agentID, readError(res))
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("coder tailnet: connection info of agent %s: %s", agentID, readError(res))
	}
	var ci connectionInfo
	if err := json.NewDecoder(io.LimitReader(res.Body, 4<<20)).Decode(&ci); err != nil {
		return nil, fmt.Errorf("coder tailnet: decode connection info of agent %s: %w", agentID, err)
	}
	if len(ci.DERPMap.Regions) == 0 {
		return nil, fmt.Errorf("coder tailnet: connection info of agent %s has an empty DERP map", agentID)
	}
	return &ci, nil
}

// readError renders a non-2xx response: its status and Coder's message.
func readError(res *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	var e struct {
		Message string `json:"message"`
		Detail  string `json:"detail"`
	}
	if json.Unmarshal(b, &e) == nil && e.Message != "" {
		msg := res.Status + ": " + e.Message
		if e.Detail != "" {
			msg += " (" + e.Detail + ")"
		}
		return msg
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	if s == "" {
		return res.Status
	}
	return res.Status + ": " + s
}
