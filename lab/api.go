package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/cdeload/cdeload/lab/workspaces"
)

// WorkspaceInfo is a workspace as the HTTP API returns it.
type WorkspaceInfo struct {
	Name          string `json:"name"`
	Address       string `json:"address"`
	SSHAddress    string `json:"sshAddress"`
	User          string `json:"user"`
	PrivateKeyPEM string `json:"privateKeyPEM"`
	HostKey       string `json:"hostKey"`
	KnownHosts    string `json:"knownHosts"`
}

// Info is the lab's connection information as the HTTP API returns it.
type Info struct {
	ControlURL    string `json:"controlURL"`
	AuthKey       string `json:"authKey"`
	User          string `json:"user"`
	PrivateKeyPEM string `json:"privateKeyPEM"`
	HostKey       string `json:"hostKey"`
	// CoderURL and CoderSessionToken reach the lab's Coder API simulator
	// (empty when the lab runs without it).
	CoderURL          string `json:"coderURL,omitempty"`
	CoderSessionToken string `json:"coderSessionToken,omitempty"`
	// CoderTailnet is set when the Coder simulator serves Coder's tailnet
	// endpoints (connection info, coordination, DERP): its workspaces'
	// agents are then reached the way a real Coder's are.
	CoderTailnet bool `json:"coderTailnet,omitempty"`
}

// CoderAgent is a running Coder agent of the lab's simulator as
// GET /lab/v1/coder/agents/{id} returns it.
type CoderAgent struct {
	// AgentID is the agent's ID in the Coder API.
	AgentID string `json:"agentID"`
	// Workspace is the name of the lab workspace that runs the agent.
	Workspace string `json:"workspace"`
	// Address is the workspace's tailnet address.
	Address string `json:"address"`
}

// CreateWorkspaceRequest is the body of POST /lab/v1/workspaces.
type CreateWorkspaceRequest struct {
	Name string `json:"name"`
}

// startTimeout bounds one workspace start requested over HTTP.
const startTimeout = 2 * time.Minute

func (l *Lab) routes() {
	l.mux.HandleFunc("GET /lab/v1/info", func(w http.ResponseWriter, r *http.Request) {
		if !l.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="cdeload lab"`)
			writeError(w, http.StatusUnauthorized, errors.New("the lab's info holds its secrets: send the lab's token "+
				"(CDELOAD_LAB_TOKEN, printed by cdeload lab) as \"Authorization: Bearer <token>\""))
			return
		}
		writeJSON(w, http.StatusOK, l.Info())
	})
	l.mux.HandleFunc("GET /lab/v1/coder/agents/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		var ws *workspaces.Workspace
		ok := false
		if l.backend != nil {
			ws, ok = l.backend.AgentWorkspace(id)
		}
		if !ok {
			writeError(w, http.StatusNotFound, fmt.Errorf("no running Coder agent %q in this lab", id))
			return
		}
		writeJSON(w, http.StatusOK, CoderAgent{AgentID: id, Workspace: ws.Name(), Address: ws.Addr().String()})
	})
	l.mux.HandleFunc("POST /lab/v1/workspaces", l.handleCreate)
	l.mux.HandleFunc("GET /lab/v1/workspaces", func(w http.ResponseWriter, r *http.Request) {
		out := []WorkspaceInfo{}
		for _, ws := range l.Workspaces.List() {
			out = append(out, l.infoFor(r, ws))
		}
		writeJSON(w, http.StatusOK, map[string]any{"workspaces": out})
	})
	l.mux.HandleFunc("GET /lab/v1/workspaces/{name}", func(w http.ResponseWriter, r *http.Request) {
		ws, ok := l.Workspaces.Get(r.PathValue("name"))
		if !ok {
			writeError(w, http.StatusNotFound, fmt.Errorf("workspace %q not found", r.PathValue("name")))
			return
		}
		writeJSON(w, http.StatusOK, l.infoFor(r, ws))
	})
	l.mux.HandleFunc("DELETE /lab/v1/workspaces/{name}", l.handleDelete)
}

// Info returns the lab's connection information (what GET /lab/v1/info
// answers).
func (l *Lab) Info() Info {
	c := l.Credentials()
	return Info{ControlURL: l.ControlURL(), AuthKey: l.AuthKey(), User: c.User,
		PrivateKeyPEM: string(c.PrivateKeyPEM), HostKey: c.HostKeyLine(),
		CoderURL: l.CoderURL(), CoderSessionToken: l.CoderToken(), CoderTailnet: l.coder != nil}
}

// infoFor is ws's info for the client of r: without the SSH private key
// unless r carries the lab's token.
func (l *Lab) infoFor(r *http.Request, ws *workspaces.Workspace) WorkspaceInfo {
	inf := l.info(ws)
	if !l.authorized(r) {
		inf.PrivateKeyPEM = ""
	}
	return inf
}

func (l *Lab) info(ws *workspaces.Workspace) WorkspaceInfo {
	c := l.Credentials()
	return WorkspaceInfo{
		Name: ws.Name(), Address: ws.Addr().String(), SSHAddress: ws.SSHAddr(), User: c.User,
		PrivateKeyPEM: string(c.PrivateKeyPEM), HostKey: c.HostKeyLine(),
		KnownHosts: c.KnownHostsLine(ws.Addr().String(), ws.Name()),
	}
}

func (l *Lab) handleCreate(w http.ResponseWriter, r *http.Request) {
	var req CreateWorkspaceRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("request body: %w (allowed keys: name)", err))
		return
	}
	if err := workspaces.ValidateName(req.Name); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), startTimeout)
	defer cancel()
	ws, err := l.Workspaces.Start(ctx, workspaces.WorkspaceSpec{Name: req.Name})
	switch {
	case errors.Is(err, workspaces.ErrExists):
		writeError(w, http.StatusConflict, err)
	case err != nil:
		writeError(w, http.StatusInternalServerError, err)
	default:
		writeJSON(w, http.StatusCreated, l.infoFor(r, ws))
	}
}

func (l *Lab) handleDelete(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	crash := false
	if v := r.URL.Query().Get("crash"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("query parameter crash=%q: want true or false", v))
			return
		}
		crash = b
	}
	var err error
	if crash {
		err = l.Workspaces.Crash(name)
	} else {
		err = l.Workspaces.Stop(r.Context(), name)
	}
	switch {
	case errors.Is(err, workspaces.ErrNotFound):
		writeError(w, http.StatusNotFound, err)
	case err != nil:
		writeError(w, http.StatusInternalServerError, err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}
