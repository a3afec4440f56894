package coder

import "time"

// The types below mirror the JSON shapes of Coder's REST API (v2) for the
// subset cdeload uses. Unknown fields are ignored when decoding.

// Response is Coder's error (and message) body.
type Response struct {
	Message     string            `json:"message"`
	Detail      string            `json:"detail,omitempty"`
	Validations []ValidationError `json:"validations,omitempty"`
}

// ValidationError names a request field that failed validation.
type ValidationError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// BuildInfo is GET /api/v2/buildinfo.
type BuildInfo struct {
	ExternalURL  string `json:"external_url"`
	Version      string `json:"version"`
	DashboardURL string `json:"dashboard_url"`
	DeploymentID string `json:"deployment_id"`
}

// Role is a site or organization role of a user.
type Role struct {
	Name           string `json:"name"`
	OrganizationID string `json:"organization_id,omitempty"`
	DisplayName    string `json:"display_name,omitempty"`
}

// User is a Coder user.
type User struct {
	ID              string    `json:"id"`
	Username        string    `json:"username"`
	Email           string    `json:"email"`
	Name            string    `json:"name"`
	CreatedAt       time.Time `json:"created_at"`
	Status          string    `json:"status"`
	LoginType       string    `json:"login_type"`
	OrganizationIDs []string  `json:"organization_ids"`
	Roles           []Role    `json:"roles"`
}

// CreateUserRequest is the body of POST /api/v2/users.
type CreateUserRequest struct {
	Email           string   `json:"email"`
	Username        string   `json:"username"`
	Name            string   `json:"name,omitempty"`
	Password        string   `json:"password,omitempty"`
	LoginType       string   `json:"login_type,omitempty"`
	UserStatus      string   `json:"user_status,omitempty"`
	OrganizationIDs []string `json:"organization_ids"`
}

// GetUsersResponse is GET /api/v2/users.
type GetUsersResponse struct {
	Users []User `json:"users"`
	Count int    `json:"count"`
}

// LoginWithPasswordRequest is the body of POST /api/v2/users/login.
type LoginWithPasswordRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// LoginWithPasswordResponse is the answer to POST /api/v2/users/login.
type LoginWithPasswordResponse struct {
	SessionToken string `json:"session_token"`
}

// Organization is a Coder organization.
type Organization struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	DisplayName string    `json:"display_name"`
	IsDefault   bool      `json:"is_default"`
	CreatedAt   time.Time `json:"created_at"`
}

// Template is a Coder template.
type Template struct {
	ID               string `json:"id"`
	Name             string `json:"name"`
	DisplayName      string `json:"display_name"`
	OrganizationID   string `json:"organization_id"`
	OrganizationName string `json:"organization_name"`
	ActiveVersionID  string `json:"active_version_id"`
	Provisioner      string `json:"provisioner"`
}

// TemplateVersionParameterOption is one allowed value of a parameter.
type TemplateVersionParameterOption struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Value       string `json:"value"`
	Icon        string `json:"icon"`
}

// TemplateVersionParameter is one rich parameter of a template version.
type TemplateVersionParameter struct {
	Name                string                           `json:"name"`
	DisplayName         string                           `json:"display_name,omitempty"`
	Description         string                           `json:"description"`
	Type                string                           `json:"type"`
	FormType            string                           `json:"form_type,omitempty"`
	Mutable             bool                             `json:"mutable"`
	DefaultValue        string                           `json:"default_value"`
	Icon                string                           `json:"icon"`
	Options             []TemplateVersionParameterOption `json:"options"`
	ValidationError     string                           `json:"validation_error,omitempty"`
	ValidationRegex     string                           `json:"validation_regex,omitempty"`
	ValidationMin       *int32                           `json:"validation_min,omitempty"`
	ValidationMax       *int32                           `json:"validation_max,omitempty"`
	ValidationMonotonic string                           `json:"validation_monotonic,omitempty"`
	Required            bool                             `json:"required"`
	Ephemeral           bool                             `json:"ephemeral"`
}

// WorkspaceBuildParameter is a parameter value of a build.
type WorkspaceBuildParameter struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// CreateWorkspaceRequest is the body of
// POST /api/v2/organizations/{org}/members/{user}/workspaces.
type CreateWorkspaceRequest struct {
	TemplateID          string                    `json:"template_id,omitempty"`
	TemplateVersionID   string                    `json:"template_version_id,omitempty"`
	Name                string                    `json:"name"`
	AutostartSchedule   *string                   `json:"autostart_schedule,omitempty"`
	TTLMillis           *int64                    `json:"ttl_ms,omitempty"`
	RichParameterValues []WorkspaceBuildParameter `json:"rich_parameter_values,omitempty"`
	AutomaticUpdates    string                    `json:"automatic_updates,omitempty"`
}

// Workspace build transitions.
const (
	TransitionStart  = "start"
	TransitionStop   = "stop"
	TransitionDelete = "delete"
)

// CreateWorkspaceBuildRequest is the body of POST /api/v2/workspaces/{id}/builds.
type CreateWorkspaceBuildRequest struct {
	TemplateVersionID   string                    `json:"template_version_id,omitempty"`
	Transition          string                    `json:"transition"`
	DryRun              bool                      `json:"dry_run,omitempty"`
	Orphan              bool                      `json:"orphan,omitempty"`
	RichParameterValues []WorkspaceBuildParameter `json:"rich_parameter_values,omitempty"`
	LogLevel            string                    `json:"log_level,omitempty"`
}

// Provisioner job statuses.
const (
	JobPending   = "pending"
	JobRunning   = "running"
	JobSucceeded = "succeeded"
	JobCanceling = "canceling"
	JobCanceled  = "canceled"
	JobFailed    = "failed"
)

// JobActive reports whether a job with this status is still in progress.
func JobActive(status string) bool {
	return status == JobPending || status == JobRunning || status == JobCanceling
}

// ProvisionerJob is the job that runs a build.
type ProvisionerJob struct {
	ID            string     `json:"id"`
	CreatedAt     time.Time  `json:"created_at"`
	StartedAt     *time.Time `json:"started_at,omitempty"`
	CompletedAt   *time.Time `json:"completed_at,omitempty"`
	CanceledAt    *time.Time `json:"canceled_at,omitempty"`
	Error         string     `json:"error,omitempty"`
	ErrorCode     string     `json:"error_code,omitempty"`
	Status        string     `json:"status"`
	QueuePosition int        `json:"queue_position"`
	QueueSize     int        `json:"queue_size"`
}

// Agent connection statuses.
const (
	AgentConnecting   = "connecting"
	AgentConnected    = "connected"
	AgentDisconnected = "disconnected"
	AgentTimeout      = "timeout"
)

// Agent lifecycle states.
const (
	LifecycleCreated       = "created"
	LifecycleStarting      = "starting"
	LifecycleStartTimeout  = "start_timeout"
	LifecycleStartError    = "start_error"
	LifecycleReady         = "ready"
	LifecycleShuttingDown  = "shutting_down"
	LifecycleShutdownError = "shutdown_error"
	// LifecycleShutdownTimeout: the shutdown script ran out of time.
	LifecycleShutdownTimeout = "shutdown_timeout"
	LifecycleOff             = "off"
)

// WorkspaceAgent is an agent of a workspace resource.
type WorkspaceAgent struct {
	ID               string     `json:"id"`
	CreatedAt        time.Time  `json:"created_at"`
	UpdatedAt        time.Time  `json:"updated_at"`
	FirstConnectedAt *time.Time `json:"first_connected_at,omitempty"`
	LastConnectedAt  *time.Time `json:"last_connected_at,omitempty"`
	DisconnectedAt   *time.Time `json:"disconnected_at,omitempty"`
	StartedAt        *time.Time `json:"started_at,omitempty"`
	ReadyAt          *time.Time `json:"ready_at,omitempty"`
	Status           string     `json:"status"`
	LifecycleState   string     `json:"lifecycle_state"`
	Name             string     `json:"name"`
	ResourceID       string     `json:"resource_id"`
	Architecture     string     `json:"architecture"`
	OperatingSystem  string     `json:"operating_system"`
	Version          string     `json:"version"`
}

// WorkspaceResource is a resource of a build (a pod, a VM, …).
type WorkspaceResource struct {
	ID                  string           `json:"id"`
	CreatedAt           time.Time        `json:"created_at"`
	JobID               string           `json:"job_id"`
	WorkspaceTransition string           `json:"workspace_transition"`
	Type                string           `json:"type"`
	Name                string           `json:"name"`
	Agents              []WorkspaceAgent `json:"agents"`
}

// WorkspaceBuild is a build of a workspace.
type WorkspaceBuild struct {
	ID                 string              `json:"id"`
	CreatedAt          time.Time           `json:"created_at"`
	UpdatedAt          time.Time           `json:"updated_at"`
	WorkspaceID        string              `json:"workspace_id"`
	WorkspaceName      string              `json:"workspace_name"`
	WorkspaceOwnerID   string              `json:"workspace_owner_id"`
	WorkspaceOwnerName string              `json:"workspace_owner_name"`
	TemplateVersionID  string              `json:"template_version_id"`
	BuildNumber        int32               `json:"build_number"`
	Transition         string              `json:"transition"`
	InitiatorID        string              `json:"initiator_id"`
	Job                ProvisionerJob      `json:"job"`
	Reason             string              `json:"reason"`
	Resources          []WorkspaceResource `json:"resources"`
	Status             string              `json:"status"`
}

// Workspace is a Coder workspace.
type Workspace struct {
	ID                      string         `json:"id"`
	CreatedAt               time.Time      `json:"created_at"`
	UpdatedAt               time.Time      `json:"updated_at"`
	OwnerID                 string         `json:"owner_id"`
	OwnerName               string         `json:"owner_name"`
	OrganizationID          string         `json:"organization_id"`
	OrganizationName        string         `json:"organization_name"`
	TemplateID              string         `json:"template_id"`
	TemplateName            string         `json:"template_name"`
	TemplateActiveVersionID string         `json:"template_active_version_id"`
	LatestBuild             WorkspaceBuild `json:"latest_build"`
	Name                    string         `json:"name"`
	Outdated                bool           `json:"outdated"`
}

// WorkspacesResponse is GET /api/v2/workspaces.
type WorkspacesResponse struct {
	Workspaces []Workspace `json:"workspaces"`
	Count      int         `json:"count"`
}

// Agents returns every agent of the build's resources.
func (b WorkspaceBuild) Agents() []WorkspaceAgent {
	var out []WorkspaceAgent
	for _, r := range b.Resources {
		out = append(out, r.Agents...)
	}
	return out
}
