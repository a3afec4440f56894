package codersim

import (
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"
)

var nameRe = regexp.MustCompile(`^[a-zA-Z0-9]+(?:-[a-zA-Z0-9]+)*$`)

func nameValid(s string) string {
	switch {
	case s == "":
		return "Validation failed for tag \"required\" with value: \"\""
	case len(s) > 32:
		return "Must be less than 32 characters."
	case !nameRe.MatchString(s):
		return "Must be alphanumeric with hyphens."
	}
	return ""
}

// userLocked resolves "me", a UUID or a username. Deleted users are not
// found.
func (s *Server) userLocked(caller *user, ref string) *user {
	if ref == "me" {
		return caller
	}
	if u := s.users[ref]; u != nil && !u.deleted {
		return u
	}
	for _, u := range s.users {
		if !u.deleted && strings.EqualFold(u.username, ref) {
			return u
		}
	}
	return nil
}

// userForRequest resolves the request's {user} path value with userLocked,
// answering 404 when there is no such user. Call it with s.mu held.
func (s *Server) userForRequest(w http.ResponseWriter, r *http.Request, caller *user) *user {
	return found(w, s.userLocked(caller, r.PathValue("user")))
}

func (s *Server) userJSONLocked(u *user) userJSON {
	roles := []roleJSON{}
	if u.owner {
		roles = append(roles, roleJSON{Name: "owner", DisplayName: "Owner"})
	}
	return userJSON{ID: u.id, Username: u.username, Email: u.email, Name: u.name, CreatedAt: u.createdAt,
		UpdatedAt: u.updatedAt, LastSeenAt: u.updatedAt, Status: u.status, LoginType: u.loginType,
		OrganizationIDs: append([]string{}, u.orgIDs...), Roles: roles}
}

func (s *Server) handleGetUser(w http.ResponseWriter, r *http.Request, caller *user) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.userForRequest(w, r, caller); u != nil {
		writeJSON(w, http.StatusOK, s.userJSONLocked(u))
	}
}

func (s *Server) handleListUsers(w http.ResponseWriter, r *http.Request, caller *user) {
	filters, free, ok := parseQuery(w, r.URL.Query().Get("q"), "status", "role", "login_type", "username", "email")
	if !ok {
		return
	}
	offset, limit, ok := pageParams(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var list []*user
	for _, u := range s.users {
		if u.deleted {
			continue
		}
		if free != "" && !strings.Contains(strings.ToLower(u.username), strings.ToLower(free)) &&
			!strings.Contains(strings.ToLower(u.email), strings.ToLower(free)) {
			continue
		}
		if v, ok := filters["status"]; ok && v != u.status {
			continue
		}
		if v, ok := filters["login_type"]; ok && v != u.loginType {
			continue
		}
		if v, ok := filters["username"]; ok && !strings.EqualFold(v, u.username) {
			continue
		}
		if v, ok := filters["email"]; ok && !strings.EqualFold(v, u.email) {
			continue
		}
		if v, ok := filters["role"]; ok && (v != "owner" || !u.owner) {
			continue
		}
		list = append(list, u)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].username < list[j].username })
	out := []userJSON{}
	for _, u := range paginate(list, offset, limit) {
		out = append(out, s.userJSONLocked(u))
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": out, "count": len(list)})
}

func (s *Server) handleCreateUser(w http.ResponseWriter, r *http.Request, caller *user) {
	if !caller.owner {
		writeError(w, http.StatusForbidden, "Forbidden.", "")
		return
	}
	var req struct {
		Email           string   `json:"email"`
		Username        string   `json:"username"`
		Name            string   `json:"name"`
		Password        string   `json:"password"`
		LoginType       string   `json:"login_type"`
		UserStatus      *string  `json:"user_status"`
		OrganizationIDs []string `json:"organization_ids"`
		OrganizationID  string   `json:"organization_id"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	var vs []validationError
	if d := nameValid(req.Username); d != "" {
		vs = append(vs, validationError{Field: "username", Detail: d})
	}
	if !strings.Contains(req.Email, "@") {
		vs = append(vs, validationError{Field: "email", Detail: "Validation failed for tag \"email\" with value: \"" + req.Email + "\""})
	}
	if len(vs) > 0 {
		writeError(w, http.StatusBadRequest, "Validation failed.", "", vs...)
		return
	}
	switch req.LoginType {
	case "", "password":
		if req.Password == "" {
			writeError(w, http.StatusBadRequest, "Password is required for login type \"password\".", "")
			return
		}
		req.LoginType = "password"
	case "none", "github", "oidc":
	default:
		writeError(w, http.StatusBadRequest, "Unsupported login type \""+req.LoginType+"\".", "")
		return
	}
	status := "active"
	if req.UserStatus != nil {
		if *req.UserStatus != "active" && *req.UserStatus != "dormant" {
			writeError(w, http.StatusBadRequest, "Invalid user status \""+*req.UserStatus+"\".", "")
			return
		}
		status = *req.UserStatus
	}
	if req.OrganizationID != "" {
		req.OrganizationIDs = append(req.OrganizationIDs, req.OrganizationID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(req.OrganizationIDs) == 0 {
		req.OrganizationIDs = []string{s.defaultOrg.id}
	}
	for _, id := range req.OrganizationIDs {
		if s.orgs[id] == nil {
			writeError(w, http.StatusNotFound, "Organization does not exist with the provided id \""+id+"\".", "")
			return
		}
	}
	for _, u := range s.users {
		if !u.deleted && (strings.EqualFold(u.username, req.Username) || strings.EqualFold(u.email, req.Email)) {
			writeError(w, http.StatusConflict, "User already exists.", "")
			return
		}
	}
	now := time.Now().UTC()
	u := &user{id: newUUID(), username: req.Username, email: req.Email, name: req.Name, password: req.Password,
		status: status, loginType: req.LoginType, createdAt: now, updatedAt: now, orgIDs: req.OrganizationIDs}
	s.users[u.id] = u
	writeJSON(w, http.StatusCreated, s.userJSONLocked(u))
}

func (s *Server) handleDeleteUser(w http.ResponseWriter, r *http.Request, caller *user) {
	if !caller.owner {
		writeError(w, http.StatusForbidden, "Forbidden.", "")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.userForRequest(w, r, caller)
	if u == nil {
		return
	}
	if u == caller {
		writeError(w, http.StatusForbidden, "You cannot delete yourself!", "")
		return
	}
	for _, ws := range s.workspaces {
		if ws.ownerID == u.id && !ws.deleted {
			writeError(w, http.StatusExpectationFailed, "You cannot delete a user that has workspaces. Delete their workspaces and try again!", "")
			return
		}
	}
	u.deleted = true
	for tok, id := range s.sessions {
		if id == u.id {
			delete(s.sessions, tok)
		}
	}
	writeJSON(w, http.StatusOK, response{Message: "User has been deleted!"})
}

func (s *Server) orgJSONLocked(o *org) orgJSON {
	return orgJSON{ID: o.id, Name: o.name, DisplayName: o.displayName, CreatedAt: o.createdAt, UpdatedAt: o.createdAt, IsDefault: o.isDefault}
}

func (s *Server) orgLocked(ref string) *org {
	if o := s.orgs[ref]; o != nil {
		return o
	}
	for _, o := range s.orgs {
		if strings.EqualFold(o.name, ref) {
			return o
		}
	}
	return nil
}

// orgForRequest resolves the request's {organization} path value (an ID or
// a name), answering 404 when there is no such organization. Call it with
// s.mu held.
func (s *Server) orgForRequest(w http.ResponseWriter, r *http.Request) *org {
	return found(w, s.orgLocked(r.PathValue("organization")))
}

func (s *Server) handleListOrgs(w http.ResponseWriter, r *http.Request, caller *user) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []orgJSON{}
	for _, id := range caller.orgIDs {
		if o := s.orgs[id]; o != nil {
			out = append(out, s.orgJSONLocked(o))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleGetOrg(w http.ResponseWriter, r *http.Request, caller *user) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o := s.orgForRequest(w, r); o != nil {
		writeJSON(w, http.StatusOK, s.orgJSONLocked(o))
	}
}

func (s *Server) templateJSONLocked(t *template) templateJSON {
	o := s.orgs[t.orgID]
	active := 0
	seen := map[string]bool{}
	for _, ws := range s.workspaces {
		if ws.templateID == t.id && !ws.deleted && !seen[ws.ownerID] {
			seen[ws.ownerID] = true
			active++
		}
	}
	return templateJSON{ID: t.id, CreatedAt: t.createdAt, UpdatedAt: t.createdAt, OrganizationID: o.id,
		OrganizationName: o.name, OrganizationDisplay: o.displayName, Name: t.name, DisplayName: t.displayName,
		Provisioner: "terraform", ActiveVersionID: t.activeVersionID, ActiveUserCount: active,
		CreatedByID: s.admin.id, CreatedByName: s.admin.username, AllowUserAutostart: true, AllowUserAutostop: true}
}

func (s *Server) handleListTemplates(w http.ResponseWriter, r *http.Request, caller *user) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.orgForRequest(w, r)
	if o == nil {
		return
	}
	var list []*template
	for _, t := range s.templates {
		if t.orgID == o.id {
			list = append(list, t)
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].name < list[j].name })
	out := []templateJSON{}
	for _, t := range list {
		out = append(out, s.templateJSONLocked(t))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleTemplateByName(w http.ResponseWriter, r *http.Request, caller *user) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.orgForRequest(w, r)
	if o == nil {
		return
	}
	name := r.PathValue("templatename")
	for _, t := range s.templates {
		if t.orgID == o.id && t.name == name {
			writeJSON(w, http.StatusOK, s.templateJSONLocked(t))
			return
		}
	}
	notFound(w)
}

func (s *Server) handleGetTemplate(w http.ResponseWriter, r *http.Request, caller *user) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := found(w, s.templates[r.PathValue("template")]); t != nil {
		writeJSON(w, http.StatusOK, s.templateJSONLocked(t))
	}
}

// versionForRequest resolves the request's {templateversion} path value,
// answering 404 when there is no such version. Call it with s.mu held.
func (s *Server) versionForRequest(w http.ResponseWriter, r *http.Request) *version {
	return found(w, s.versions[r.PathValue("templateversion")])
}

func (s *Server) handleGetVersion(w http.ResponseWriter, r *http.Request, caller *user) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.versionForRequest(w, r)
	if v == nil {
		return
	}
	t := s.templates[v.templateID]
	done := v.createdAt
	writeJSON(w, http.StatusOK, versionJSON{ID: v.id, TemplateID: t.id, OrganizationID: t.orgID, CreatedAt: v.createdAt,
		UpdatedAt: v.createdAt, Name: v.name, Job: jobJSON{ID: v.id, CreatedAt: v.createdAt, StartedAt: &done,
			CompletedAt: &done, Status: "succeeded", Tags: map[string]string{"scope": "organization"}, OrganizationID: t.orgID,
			Type: "template_version_import", Input: map[string]string{"template_version_id": v.id}, FileID: v.id}})
}

func (s *Server) handleRichParameters(w http.ResponseWriter, r *http.Request, caller *user) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v := s.versionForRequest(w, r); v != nil {
		writeJSON(w, http.StatusOK, append([]Parameter{}, v.params...))
	}
}
