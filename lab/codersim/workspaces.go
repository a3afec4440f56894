package codersim

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

type buildParam struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// validateParams merges values into base (the previous or default values)
// after checking each against the version's parameters.
func validateParams(v *version, base map[string]string, values []buildParam) (map[string]string, *response) {
	out := map[string]string{}
	byName := map[string]Parameter{}
	for _, p := range v.params {
		byName[p.Name] = p
		if val, ok := base[p.Name]; ok {
			out[p.Name] = val
		} else {
			out[p.Name] = p.DefaultValue
		}
	}
	for _, bp := range values {
		p, ok := byName[bp.Name]
		if !ok {
			return nil, &response{Message: fmt.Sprintf("Parameter %q is not present in the template.", bp.Name),
				Validations: []validationError{{Field: bp.Name, Detail: "parameter is not defined in the template version"}}}
		}
		if err := checkParam(p, bp.Value); err != "" {
			return nil, &response{Message: fmt.Sprintf("Unable to validate parameter %q", p.Name), Detail: err,
				Validations: []validationError{{Field: p.Name, Detail: err}}}
		}
		out[p.Name] = bp.Value
	}
	for _, p := range v.params {
		if p.Required && out[p.Name] == "" {
			return nil, &response{Message: fmt.Sprintf("Parameter %q is required but has no value.", p.Name),
				Validations: []validationError{{Field: p.Name, Detail: "required parameter value is missing"}}}
		}
	}
	return out, nil
}

func checkParam(p Parameter, v string) string {
	if len(p.Options) > 0 && p.Type != "list(string)" {
		for _, o := range p.Options {
			if o.Value == v {
				return ""
			}
		}
		return fmt.Sprintf("parameter value %q must be defined as one of options", v)
	}
	switch p.Type {
	case "number":
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Sprintf("parameter value %q is not a number", v)
		}
		if (p.ValidationMin != nil && n < float64(*p.ValidationMin)) || (p.ValidationMax != nil && n > float64(*p.ValidationMax)) {
			if p.ValidationError != "" {
				return p.ValidationError
			}
			return fmt.Sprintf("value %s is out of range", v)
		}
	case "bool":
		if v != "true" && v != "false" {
			return fmt.Sprintf("boolean value can be either \"true\" or \"false\", got %q", v)
		}
	}
	if p.ValidationRegex != "" && p.Type == "string" {
		if re, err := regexp.Compile(p.ValidationRegex); err == nil && !re.MatchString(v) {
			if p.ValidationError != "" {
				return p.ValidationError
			}
			return fmt.Sprintf("%q does not match %s", v, p.ValidationRegex)
		}
	}
	return ""
}

func (s *Server) canAccess(caller *user, ws *workspaceRec) bool {
	return caller.owner || ws.ownerID == caller.id
}

func (s *Server) handleCreateWorkspace(w http.ResponseWriter, r *http.Request, caller *user) {
	var req struct {
		TemplateID          string       `json:"template_id"`
		TemplateVersionID   string       `json:"template_version_id"`
		Name                string       `json:"name"`
		AutostartSchedule   *string      `json:"autostart_schedule"`
		TTLMillis           *int64       `json:"ttl_ms"`
		RichParameterValues []buildParam `json:"rich_parameter_values"`
		AutomaticUpdates    string       `json:"automatic_updates"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	owner := s.userForRequest(w, r, caller)
	if owner == nil {
		return
	}
	if !caller.owner && owner != caller {
		notFound(w)
		return
	}
	o := s.defaultOrg
	if ref := r.PathValue("organization"); ref != "" {
		if o = s.orgLocked(ref); o == nil {
			notFound(w)
			return
		}
	}
	if (req.TemplateID == "") == (req.TemplateVersionID == "") {
		writeError(w, http.StatusBadRequest, "You must specify either a template_id or a template_version_id, not both.", "",
			validationError{Field: "template_id", Detail: "exactly one of template_id and template_version_id is required"})
		return
	}
	var t *template
	var v *version
	if req.TemplateID != "" {
		t = s.templates[req.TemplateID]
		if t == nil || t.orgID != o.id {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("Template %q doesn't exist.", req.TemplateID), "",
				validationError{Field: "template_id", Detail: "template not found"})
			return
		}
		v = s.versions[t.activeVersionID]
	} else {
		v = s.versions[req.TemplateVersionID]
		if v == nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("Template version %q doesn't exist.", req.TemplateVersionID), "",
				validationError{Field: "template_version_id", Detail: "template version not found"})
			return
		}
		t = s.templates[v.templateID]
	}
	if d := nameValid(req.Name); d != "" {
		writeError(w, http.StatusBadRequest, "Invalid workspace name.", "", validationError{Field: "name", Detail: d})
		return
	}
	for _, ws := range s.workspaces {
		if ws.ownerID == owner.id && !ws.deleted && strings.EqualFold(ws.name, req.Name) {
			writeError(w, http.StatusConflict, fmt.Sprintf("Workspace %q already exists.", req.Name), "",
				validationError{Field: "name", Detail: "This value is already in use and should be unique."})
			return
		}
	}
	params, perr := validateParams(v, nil, req.RichParameterValues)
	if perr != nil {
		writeJSON(w, http.StatusBadRequest, perr)
		return
	}
	now := time.Now().UTC()
	ws := &workspaceRec{id: newUUID(), name: req.Name, ownerID: owner.id, orgID: o.id, templateID: t.id,
		createdAt: now, updatedAt: now, params: params}
	s.workspaces[ws.id] = ws
	s.startBuildLocked(ws, "start", v.id, caller.id)
	writeJSON(w, http.StatusCreated, s.workspaceJSONLocked(ws))
}

func (s *Server) workspaceForRequest(w http.ResponseWriter, r *http.Request, caller *user) *workspaceRec {
	ws := s.workspaces[r.PathValue("workspace")]
	if ws == nil || !s.canAccess(caller, ws) {
		notFound(w)
		return nil
	}
	if ws.deleted && r.URL.Query().Get("include_deleted") != "true" {
		writeError(w, http.StatusGone, fmt.Sprintf("Workspace %q was deleted, you can view this workspace by specifying '?deleted=true' and trying again.", ws.id), "")
		return nil
	}
	return ws
}

func (s *Server) handleGetWorkspace(w http.ResponseWriter, r *http.Request, caller *user) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ws := s.workspaceForRequest(w, r, caller); ws != nil {
		writeJSON(w, http.StatusOK, s.workspaceJSONLocked(ws))
	}
}

func (s *Server) handleWorkspaceByOwnerAndName(w http.ResponseWriter, r *http.Request, caller *user) {
	s.mu.Lock()
	defer s.mu.Unlock()
	owner := s.userForRequest(w, r, caller)
	if owner == nil {
		return
	}
	name := r.PathValue("workspacename")
	for _, ws := range s.workspaces {
		if ws.ownerID == owner.id && !ws.deleted && strings.EqualFold(ws.name, name) && s.canAccess(caller, ws) {
			writeJSON(w, http.StatusOK, s.workspaceJSONLocked(ws))
			return
		}
	}
	notFound(w)
}

func (s *Server) handleListWorkspaces(w http.ResponseWriter, r *http.Request, caller *user) {
	// As coderd: the query is case-insensitive, and a bare term is a
	// workspace name or owner/name.
	filters, free, ok := parseQuery(w, strings.ToLower(r.URL.Query().Get("q")), "owner", "name", "template", "status", "has-agent")
	if !ok {
		return
	}
	offset, limit, ok := pageParams(w, r)
	if !ok {
		return
	}
	if free != "" {
		if owner, name, found := strings.Cut(free, "/"); found && !strings.Contains(name, "/") {
			filters["owner"], free = owner, name
		}
		filters["name"] = free
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var ownerID string
	if v, ok := filters["owner"]; ok {
		u := s.userLocked(caller, v)
		if u == nil {
			writeJSON(w, http.StatusOK, map[string]any{"workspaces": []workspaceJSON{}, "count": 0})
			return
		}
		ownerID = u.id
	}
	var list []*workspaceRec
	now := time.Now()
	for _, ws := range s.workspaces {
		if ws.deleted || !s.canAccess(caller, ws) || (ownerID != "" && ws.ownerID != ownerID) {
			continue
		}
		if v, ok := filters["name"]; ok && !strings.Contains(strings.ToLower(ws.name), strings.ToLower(v)) {
			continue
		}
		if v, ok := filters["template"]; ok && !strings.EqualFold(s.templates[ws.templateID].name, v) {
			continue
		}
		if v, ok := filters["status"]; ok && buildStatus(ws.latest()) != v {
			continue
		}
		if v, ok := filters["has-agent"]; ok && !s.hasAgentLocked(ws.latest(), strings.Split(v, ","), now) {
			continue
		}
		list = append(list, ws)
	}
	sort.Slice(list, func(i, j int) bool {
		oi, oj := s.users[list[i].ownerID].username, s.users[list[j].ownerID].username
		if oi != oj {
			return oi < oj
		}
		return list[i].name < list[j].name
	})
	out := []workspaceJSON{}
	for _, ws := range paginate(list, offset, limit) {
		out = append(out, s.workspaceJSONLocked(ws))
	}
	writeJSON(w, http.StatusOK, map[string]any{"workspaces": out, "count": len(list)})
}

func (s *Server) handleCreateBuild(w http.ResponseWriter, r *http.Request, caller *user) {
	var req struct {
		TemplateVersionID   string       `json:"template_version_id"`
		Transition          string       `json:"transition"`
		DryRun              bool         `json:"dry_run"`
		Orphan              bool         `json:"orphan"`
		RichParameterValues []buildParam `json:"rich_parameter_values"`
		LogLevel            string       `json:"log_level"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	switch req.Transition {
	case "start", "stop", "delete":
	default:
		writeError(w, http.StatusBadRequest, "Validation failed.", "",
			validationError{Field: "transition", Detail: fmt.Sprintf("Validation failed for tag \"oneof\" with value: %q", req.Transition)})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ws := s.workspaceForRequest(w, r, caller)
	if ws == nil {
		return
	}
	lb := ws.latest()
	if jobActive(lb.job.status) {
		writeError(w, http.StatusConflict, "A workspace build is already active.", "")
		return
	}
	versionID := lb.versionID
	if req.TemplateVersionID != "" {
		v := s.versions[req.TemplateVersionID]
		if v == nil || v.templateID != ws.templateID {
			writeError(w, http.StatusBadRequest, "Template version not found.", "",
				validationError{Field: "template_version_id", Detail: "template version not found"})
			return
		}
		versionID = v.id
	}
	if req.Transition == "start" {
		params, perr := validateParams(s.versions[versionID], ws.params, req.RichParameterValues)
		if perr != nil {
			writeJSON(w, http.StatusBadRequest, perr)
			return
		}
		ws.params = params
	}
	b := s.startBuildLocked(ws, req.Transition, versionID, caller.id)
	writeJSON(w, http.StatusCreated, s.buildJSONLocked(b))
}

func (s *Server) buildForRequest(w http.ResponseWriter, r *http.Request, caller *user) *build {
	b := s.builds[r.PathValue("workspacebuild")]
	if b == nil || !s.canAccess(caller, s.workspaces[b.workspaceID]) {
		notFound(w)
		return nil
	}
	return b
}

func (s *Server) handleGetBuild(w http.ResponseWriter, r *http.Request, caller *user) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.buildForRequest(w, r, caller); b != nil {
		writeJSON(w, http.StatusOK, s.buildJSONLocked(b))
	}
}

func (s *Server) handleBuildParameters(w http.ResponseWriter, r *http.Request, caller *user) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buildForRequest(w, r, caller)
	if b == nil {
		return
	}
	out := []buildParam{}
	for _, p := range s.versions[b.versionID].params {
		if v, ok := b.params[p.Name]; ok {
			out = append(out, buildParam{Name: p.Name, Value: v})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleCancelBuild(w http.ResponseWriter, r *http.Request, caller *user) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buildForRequest(w, r, caller)
	if b == nil {
		return
	}
	switch b.job.status {
	case "canceling":
		writeError(w, http.StatusBadRequest, "Job has already been marked as canceled!", "")
		return
	case "pending", "running":
	default:
		writeError(w, http.StatusBadRequest, "Job has already completed!", "")
		return
	}
	now := time.Now().UTC()
	b.job.status = "canceling"
	b.job.canceledAt = &now
	b.updatedAt = now
	b.cancel()
	writeJSON(w, http.StatusOK, response{Message: "Job has been marked as canceled..."})
}

func (s *Server) handleGetAgent(w http.ResponseWriter, r *http.Request, caller *user) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.agents[r.PathValue("workspaceagent")]
	if a == nil || !s.canAccess(caller, s.workspaces[a.workspaceID]) {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, s.agentJSONLocked(a, time.Now()))
}

func jobActive(status string) bool {
	return status == "pending" || status == "running" || status == "canceling"
}

// startBuildLocked records a new build and starts its provisioner job.
func (s *Server) startBuildLocked(ws *workspaceRec, transition, versionID, initiator string) *build {
	now := time.Now().UTC()
	ctx, cancel := context.WithCancel(s.ctx)
	b := &build{id: newUUID(), workspaceID: ws.id, versionID: versionID, transition: transition, initiatorID: initiator,
		number: int32(len(ws.builds) + 1), createdAt: now, updatedAt: now, cancel: cancel,
		job: job{id: newUUID(), status: "pending", createdAt: now}}
	b.params = map[string]string{}
	for k, v := range ws.params {
		b.params[k] = v
	}
	ws.builds = append(ws.builds, b)
	ws.updatedAt = now
	s.builds[b.id] = b
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer cancel()
		s.runBuild(ctx, b)
	}()
	return b
}

// specLocked describes the workspace machine of ws for the backend; the
// agent ID is the first agent of the latest start build that has one.
func (s *Server) specLocked(ws *workspaceRec) WorkspaceSpec {
	spec := WorkspaceSpec{Name: ws.name, Owner: s.users[ws.ownerID].username, WorkspaceID: ws.id,
		Parameters: map[string]string{}}
	for k, v := range ws.params {
		spec.Parameters[k] = v
	}
	t := s.templates[ws.templateID]
	spec.AgentName = t.agents[0]
	for i := len(ws.builds) - 1; i >= 0; i-- {
		for _, r := range ws.builds[i].resources {
			if len(r.agents) > 0 {
				spec.AgentID = r.agents[0].id
				return spec
			}
		}
	}
	return spec
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// runBuild drives a provisioner job: pending → running → succeeded, failed
// or canceled. A start job only provisions: it succeeds after the build
// latency, and the workspace machine starts afterwards (launchMachineLocked),
// so the build duration excludes the machine's boot and the agent
// connects later. A stop or delete job stops the machine, waiting for a
// start still in flight.
func (s *Server) runBuild(ctx context.Context, b *build) {
	f := s.Faults()
	queue, run := s.draw(f.BuildQueue), s.draw(f.Build)
	fail := b.transition == "start" && f.BuildFailureRate > 0 && s.float() < f.BuildFailureRate
	if !sleepCtx(ctx, queue) {
		s.finishCanceled(b)
		return
	}
	s.mu.Lock()
	startedAt := time.Now().UTC() // its own variable: the job's timestamps are pointers
	b.job.status = "running"
	b.job.startedAt = &startedAt
	b.updatedAt = startedAt
	ws := s.workspaces[b.workspaceID]
	spec := s.specLocked(ws)
	s.mu.Unlock()

	runStart := time.Now()
	var err error
	if b.transition != "start" {
		err = s.takeMachine(ctx, ws, spec)
	}
	if ctx.Err() != nil || !sleepCtx(ctx, run-time.Since(runStart)) {
		s.finishCanceled(b)
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if b.job.status == "canceling" { // cancelled after the job's work was done
		s.finishCanceledLocked(b)
		return
	}
	now := time.Now().UTC()
	b.updatedAt = now
	b.job.completedAt = &now
	switch {
	case fail:
		b.job.status = "failed"
		b.job.errMsg = "terraform apply: simulated provisioning failure (codersim build failure rate)"
		return
	case err != nil:
		b.job.status = "failed"
		b.job.errMsg = err.Error()
		return
	}
	b.job.status = "succeeded"
	switch b.transition {
	case "start":
		s.agentsOffLocked(ws, b, now) // the new machine replaces any earlier one
		res := &resource{id: newUUID(), jobID: b.job.id, transition: "start", typ: "kubernetes_deployment", name: "main", createdAt: now}
		for _, name := range s.templates[ws.templateID].agents {
			a := &agent{id: newUUID(), name: name, resourceID: res.id, createdAt: now, updatedAt: now,
				lifecycle: "created", workspaceID: ws.id}
			res.agents = append(res.agents, a)
			s.agents[a.id] = a
		}
		b.resources = []*resource{res}
		spec.AgentID = res.agents[0].id
		s.launchMachineLocked(ws, spec, res.agents)
	case "stop":
		b.resources = []*resource{{id: newUUID(), jobID: b.job.id, transition: "stop", typ: "kubernetes_persistent_volume_claim", name: "home", createdAt: now}}
		s.agentsOffLocked(ws, b, now)
	case "delete":
		s.agentsOffLocked(ws, b, now)
		ws.deleted = true
		ws.updatedAt = now
	}
}

// agentsOffLocked marks the agents of earlier builds as shut down.
func (s *Server) agentsOffLocked(ws *workspaceRec, cur *build, now time.Time) {
	for _, ob := range ws.builds {
		if ob == cur {
			continue
		}
		for _, r := range ob.resources {
			for _, a := range r.agents {
				if a.lifecycle != "off" {
					a.lifecycle = "off"
					a.impl = nil
					if a.lastConnectedAt != nil && a.disconnectedAt == nil {
						a.disconnectedAt = &now
					}
					a.updatedAt = now
				}
			}
		}
	}
}

func (s *Server) finishCanceled(b *build) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finishCanceledLocked(b)
}

func (s *Server) finishCanceledLocked(b *build) {
	now := time.Now().UTC()
	b.job.status = "canceled"
	if b.job.canceledAt == nil {
		b.job.canceledAt = &now
	}
	b.job.completedAt = &now
	b.job.errMsg = "canceled"
	b.updatedAt = now
}

// hasAgentLocked is coderd's has-agent filter: the build is a start and
// one of its agents has one of the statuses (connecting, connected,
// disconnected, timeout).
func (s *Server) hasAgentLocked(b *build, statuses []string, now time.Time) bool {
	if b.transition != "start" {
		return false
	}
	for _, r := range b.resources {
		for _, a := range r.agents {
			if slices.Contains(statuses, s.agentStatus(a, now)) {
				return true
			}
		}
	}
	return false
}
