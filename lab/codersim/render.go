package codersim

import "time"

// buildStatus derives a build's (and workspace's) status from its
// transition and job status, as Coder does.
func buildStatus(b *build) string {
	switch b.job.status {
	case "pending":
		return "pending"
	case "running":
		switch b.transition {
		case "stop":
			return "stopping"
		case "delete":
			return "deleting"
		}
		return "starting"
	case "succeeded":
		switch b.transition {
		case "stop":
			return "stopped"
		case "delete":
			return "deleted"
		}
		return "running"
	case "canceling":
		return "canceling"
	case "canceled":
		return "canceled"
	}
	return "failed"
}

func (s *Server) agentStatus(a *agent, now time.Time) string {
	switch {
	case a.disconnectedAt != nil && (a.lastConnectedAt == nil || !a.disconnectedAt.Before(*a.lastConnectedAt)):
		return "disconnected"
	case a.lastConnectedAt != nil:
		return "connected"
	case now.Sub(a.createdAt) > s.cfg.AgentConnectionTimeout:
		return "timeout"
	}
	return "connecting"
}

func (s *Server) agentJSONLocked(a *agent, now time.Time) agentJSON {
	status := s.agentStatus(a, now)
	health := healthJSON{Healthy: status == "connected"}
	if !health.Healthy {
		health.Reason = "agent is not connected"
	}
	return agentJSON{ID: a.id, CreatedAt: a.createdAt, UpdatedAt: a.updatedAt, FirstConnectedAt: a.firstConnectedAt,
		LastConnectedAt: a.lastConnectedAt, DisconnectedAt: a.disconnectedAt, StartedAt: a.startedAt, ReadyAt: a.readyAt,
		Status: status, LifecycleState: a.lifecycle, Name: a.name, ResourceID: a.resourceID, Architecture: "amd64",
		EnvironmentVariables: map[string]string{}, OperatingSystem: "linux", ExpandedDirectory: "/home/coder",
		Version: s.cfg.Version, APIVersion: "2.5", Apps: []any{},
		ConnectionTimeoutSeconds: int32(s.cfg.AgentConnectionTimeout / time.Second), Subsystems: []string{},
		Health: health, DisplayApps: []string{"vscode", "web_terminal", "ssh_helper", "port_forwarding_helper"},
		LogSources: []any{}, Scripts: []any{}, StartupScriptBehavior: "non-blocking"}
}

func (s *Server) buildJSONLocked(b *build) buildJSON {
	ws := s.workspaces[b.workspaceID]
	owner := s.users[ws.ownerID]
	v := s.versions[b.versionID]
	initiator := s.users[b.initiatorID]
	now := time.Now()
	resources := []resourceJSON{}
	for _, r := range b.resources {
		rj := resourceJSON{ID: r.id, CreatedAt: r.createdAt, JobID: r.jobID, WorkspaceTransition: r.transition,
			Type: r.typ, Name: r.name, Agents: []agentJSON{}, Metadata: []any{}}
		for _, a := range r.agents {
			rj.Agents = append(rj.Agents, s.agentJSONLocked(a, now))
		}
		resources = append(resources, rj)
	}
	j := b.job
	queuePos := 0
	if j.status == "pending" {
		queuePos = 1
	}
	return buildJSON{ID: b.id, CreatedAt: b.createdAt, UpdatedAt: b.updatedAt, WorkspaceID: ws.id, WorkspaceName: ws.name,
		WorkspaceOwnerID: owner.id, WorkspaceOwnerName: owner.username, TemplateVersionID: v.id, TemplateVersionName: v.name,
		BuildNumber: b.number, Transition: b.transition, InitiatorID: initiator.id, InitiatorName: initiator.username,
		Job: jobJSON{ID: j.id, CreatedAt: j.createdAt, StartedAt: j.startedAt, CompletedAt: j.completedAt,
			CanceledAt: j.canceledAt, Error: j.errMsg, FileID: v.id, Status: j.status,
			Tags: map[string]string{"scope": "organization", "owner": ""}, QueuePosition: queuePos, QueueSize: queuePos,
			OrganizationID: ws.orgID, Type: "workspace_build", Input: map[string]string{"workspace_build_id": b.id}},
		Reason: "initiator", Resources: resources, Status: buildStatus(b)}
}

func (s *Server) workspaceJSONLocked(ws *workspaceRec) workspaceJSON {
	owner := s.users[ws.ownerID]
	o := s.orgs[ws.orgID]
	t := s.templates[ws.templateID]
	lb := ws.latest()
	health := workspaceHealthJSON{Healthy: true, FailingAgents: []string{}}
	now := time.Now()
	for _, r := range lb.resources {
		for _, a := range r.agents {
			if s.agentStatus(a, now) != "connected" {
				health.Healthy = false
				health.FailingAgents = append(health.FailingAgents, a.id)
			}
		}
	}
	return workspaceJSON{ID: ws.id, CreatedAt: ws.createdAt, UpdatedAt: ws.updatedAt, OwnerID: owner.id,
		OwnerName: owner.username, OrganizationID: o.id, OrganizationName: o.name, TemplateID: t.id,
		TemplateName: t.name, TemplateDisplayName: t.displayName, TemplateActiveVersionID: t.activeVersionID,
		LatestBuild: s.buildJSONLocked(lb), Outdated: lb.versionID != t.activeVersionID, Name: ws.name,
		LastUsedAt: ws.updatedAt, Health: health, AutomaticUpdates: "never", AllowRenames: false}
}
