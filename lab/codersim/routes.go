package codersim

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

type callerKey struct{}

func callerOf(r *http.Request) *user { return r.Context().Value(callerKey{}).(*user) }

type authedHandler func(w http.ResponseWriter, r *http.Request, caller *user)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	api := func(pattern string, h authedHandler) { mux.Handle(pattern, s.authed(h, false)) }

	mux.HandleFunc("GET /api/v2/buildinfo", s.handleBuildInfo)
	mux.HandleFunc("POST /api/v2/users/login", s.handleLogin)

	api("GET /api/v2/users", s.handleListUsers)
	api("POST /api/v2/users", s.handleCreateUser)
	api("GET /api/v2/users/{user}", s.handleGetUser)
	api("DELETE /api/v2/users/{user}", s.handleDeleteUser)
	api("GET /api/v2/users/{user}/workspace/{workspacename}", s.handleWorkspaceByOwnerAndName)
	api("POST /api/v2/users/{user}/workspaces", s.handleCreateWorkspace)

	api("GET /api/v2/organizations", s.handleListOrgs)
	api("GET /api/v2/organizations/{organization}", s.handleGetOrg)
	api("GET /api/v2/organizations/{organization}/templates", s.handleListTemplates)
	api("GET /api/v2/organizations/{organization}/templates/{templatename}", s.handleTemplateByName)
	api("POST /api/v2/organizations/{organization}/members/{user}/workspaces", s.handleCreateWorkspace)

	api("GET /api/v2/templates/{template}", s.handleGetTemplate)
	api("GET /api/v2/templateversions/{templateversion}", s.handleGetVersion)
	api("GET /api/v2/templateversions/{templateversion}/rich-parameters", s.handleRichParameters)

	api("GET /api/v2/workspaces", s.handleListWorkspaces)
	api("GET /api/v2/workspaces/{workspace}", s.handleGetWorkspace)
	api("POST /api/v2/workspaces/{workspace}/builds", s.handleCreateBuild)
	api("GET /api/v2/workspacebuilds/{workspacebuild}", s.handleGetBuild)
	api("GET /api/v2/workspacebuilds/{workspacebuild}/parameters", s.handleBuildParameters)
	api("PATCH /api/v2/workspacebuilds/{workspacebuild}/cancel", s.handleCancelBuild)
	api("GET /api/v2/workspaceagents/{workspaceagent}", s.handleGetAgent)
	mux.Handle("GET /api/v2/workspaceagents/{workspaceagent}/pty", s.authed(s.handlePTY, true))
	api("GET /api/v2/workspaceagents/{workspaceagent}/connection", s.handleConnectionInfo)
	mux.Handle("GET /api/v2/workspaceagents/{workspaceagent}/coordinate", s.authed(s.handleCoordinate, true))
	if s.cfg.Tailnet != nil {
		mux.Handle("/derp", s.cfg.Tailnet.DERPHandler())
		mux.Handle("/derp/", s.cfg.Tailnet.DERPHandler())
	}

	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "Route not found.", "")
	})
	return mux
}

// authed authenticates the session token (header, cookie or query), then
// applies rate limiting and error injection.
func (s *Server) authed(h authedHandler, websocket bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := r.Header.Get("Coder-Session-Token")
		if token == "" {
			if c, err := r.Cookie("coder_session_token"); err == nil {
				token = c.Value
			}
		}
		if token == "" {
			token = r.URL.Query().Get("coder_session_token")
		}
		if token == "" {
			writeError(w, http.StatusUnauthorized, signedOut, `Cookie "coder_session_token" or query parameter must be provided.`)
			return
		}
		if detail := apiKeyFormatError(token); detail != "" {
			writeError(w, http.StatusUnauthorized, signedOut, detail)
			return
		}
		s.mu.Lock()
		u := s.users[s.sessions[token]]
		if u == nil || u.deleted {
			s.mu.Unlock()
			writeError(w, http.StatusUnauthorized, signedOut, "API key is invalid.")
			return
		}
		f := s.faults
		if f.RateLimit > 0 && !(u.owner && !f.IgnoreBypassHeader && r.Header.Get("X-Coder-Bypass-Ratelimit") == "true") {
			// Like coderd: one budget per user and endpoint (the path,
			// whatever the method), whichever session the user sends, with
			// the X-Ratelimit-* headers on every answer.
			now := time.Now()
			key := u.id + " " + r.URL.Path
			win := s.windows[key]
			if win == nil || now.Sub(win.start) >= time.Second {
				win = &rateWindow{start: now}
				s.windows[key] = win
			}
			win.count++
			reset := win.start.Add(time.Second)
			w.Header().Set("X-Ratelimit-Limit", strconv.Itoa(f.RateLimit))
			w.Header().Set("X-Ratelimit-Remaining", strconv.Itoa(max(0, f.RateLimit-win.count)))
			w.Header().Set("X-Ratelimit-Reset", strconv.FormatInt(reset.Unix(), 10))
			if win.count > f.RateLimit {
				s.mu.Unlock()
				secs := int(time.Until(reset)/time.Second) + 1
				w.Header().Set("Retry-After", strconv.Itoa(secs))
				writeError(w, http.StatusTooManyRequests,
					"You've been rate limited for sending more than "+strconv.Itoa(f.RateLimit)+" requests in 1s.", "")
				return
			}
		}
		s.mu.Unlock()
		if !websocket && f.APIErrorRate > 0 && s.float() < f.APIErrorRate {
			writeError(w, http.StatusInternalServerError, "Internal error.", "codersim: injected API error")
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, u)), u)
	})
}

// signedOut is coderd's message for every 401 of its API key check; the
// detail says why.
const signedOut = "You are signed out or your session has expired. Please sign in again to continue."

// apiKeyFormatError returns coderd's detail for a session token that is not
// of the form <10-character id>-<22-character secret>, or "".
func apiKeyFormatError(token string) string {
	parts := strings.Split(token, "-")
	switch {
	case len(parts) != 2:
		return fmt.Sprintf("Invalid API key format: incorrect amount of API key parts, expected 2 got %d", len(parts))
	case len(parts[0]) != 10:
		return fmt.Sprintf("Invalid API key format: invalid API key id length, expected 10 got %d", len(parts[0]))
	case len(parts[1]) != 22:
		return fmt.Sprintf("Invalid API key format: invalid API key secret length, expected 22 got %d", len(parts[1]))
	}
	return ""
}

func (s *Server) handleBuildInfo(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"external_url":            "https://github.com/cdeload/cdeload",
		"version":                 s.cfg.Version,
		"dashboard_url":           s.URL,
		"telemetry":               false,
		"workspace_proxy":         false,
		"agent_api_version":       "2.5",
		"provisioner_api_version": "1.4",
		"upgrade_message":         "",
		"deployment_id":           s.defaultOrg.id,
		"webpush_public_key":      "",
	})
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	var vs []validationError
	if req.Email == "" {
		vs = append(vs, validationError{Field: "email", Detail: "Validation failed for tag \"required\" with value: \"\""})
	}
	if req.Password == "" {
		vs = append(vs, validationError{Field: "password", Detail: "Validation failed for tag \"required\" with value: \"\""})
	}
	if len(vs) > 0 {
		writeError(w, http.StatusBadRequest, "Validation failed.", "", vs...)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.users {
		if !u.deleted && strings.EqualFold(u.email, req.Email) && u.password == req.Password {
			if u.status != "active" {
				writeError(w, http.StatusUnauthorized, "Your account is suspended. Contact an admin to reactivate your account.", "")
				return
			}
			token := newToken()
			s.sessions[token] = u.id
			writeJSON(w, http.StatusCreated, map[string]string{"session_token": token})
			return
		}
	}
	writeError(w, http.StatusUnauthorized, "Incorrect email or password.", "")
}

func pageParams(w http.ResponseWriter, r *http.Request) (offset, limit int, ok bool) {
	q := r.URL.Query()
	for name, dst := range map[string]*int{"offset": &offset, "limit": &limit} {
		if v := q.Get(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				writeError(w, http.StatusBadRequest, "Query parameters have invalid values.", "",
					validationError{Field: name, Detail: "Query param \"" + name + "\" must be a valid non-negative integer."})
				return 0, 0, false
			}
			*dst = n
		}
	}
	return offset, limit, true
}

func paginate[T any](items []T, offset, limit int) []T {
	if offset >= len(items) {
		return []T{}
	}
	items = items[offset:]
	if limit > 0 && limit < len(items) {
		items = items[:limit]
	}
	return items
}

// parseQuery splits a Coder search query into key:value filters and free
// text, rejecting keys that are not allowed.
func parseQuery(w http.ResponseWriter, q string, allowed ...string) (map[string]string, string, bool) {
	filters := map[string]string{}
	var free []string
	for _, term := range strings.Fields(q) {
		k, v, found := strings.Cut(term, ":")
		if !found {
			free = append(free, term)
			continue
		}
		ok := false
		for _, a := range allowed {
			ok = ok || a == k
		}
		if !ok {
			writeError(w, http.StatusBadRequest, "Invalid search query.", "",
				validationError{Field: k, Detail: "Query param \"" + k + "\" is not a valid query param"})
			return nil, "", false
		}
		filters[k] = v
	}
	return filters, strings.Join(free, " "), true
}
