package codersim

import (
	"context"
	"time"
)

// Parameter is a template version rich parameter, in Coder's JSON shape.
type Parameter struct {
	Name                string            `json:"name"`
	DisplayName         string            `json:"display_name,omitempty"`
	Description         string            `json:"description"`
	DescriptionPlain    string            `json:"description_plaintext"`
	Type                string            `json:"type"`
	FormType            string            `json:"form_type"`
	Mutable             bool              `json:"mutable"`
	DefaultValue        string            `json:"default_value"`
	Icon                string            `json:"icon"`
	Options             []ParameterOption `json:"options"`
	ValidationError     string            `json:"validation_error,omitempty"`
	ValidationRegex     string            `json:"validation_regex,omitempty"`
	ValidationMin       *int32            `json:"validation_min,omitempty"`
	ValidationMax       *int32            `json:"validation_max,omitempty"`
	ValidationMonotonic string            `json:"validation_monotonic,omitempty"`
	Required            bool              `json:"required"`
	Ephemeral           bool              `json:"ephemeral"`
}

// ParameterOption is one allowed value of a Parameter.
type ParameterOption struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Value       string `json:"value"`
	Icon        string `json:"icon"`
}

type response struct {
	Message     string            `json:"message"`
	Detail      string            `json:"detail,omitempty"`
	Validations []validationError `json:"validations,omitempty"`
}

type validationError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// ---- stored state (guarded by Server.mu) ----

type user struct {
	id, username, email, name, password, status, loginType string
	owner                                                  bool
	createdAt, updatedAt                                   time.Time
	orgIDs                                                 []string
	deleted                                                bool
}

type org struct {
	id, name, displayName string
	isDefault             bool
	createdAt             time.Time
}

type template struct {
	id, name, displayName, orgID, activeVersionID string
	createdAt                                     time.Time
	agents                                        []string
}

type version struct {
	id, name, templateID string
	params               []Parameter
	createdAt            time.Time
}

type workspaceRec struct {
	id, name, ownerID, orgID, templateID string
	createdAt, updatedAt                 time.Time
	builds                               []*build
	params                               map[string]string
	deleted                              bool
	// machine is the workspace machine of the last successful start build,
	// from the moment its job completed until a stop or delete build (or
	// Close) takes it to stop it; nil when no machine is up or starting.
	machine *machineRun
}

func (w *workspaceRec) latest() *build { return w.builds[len(w.builds)-1] }

type build struct {
	id, workspaceID, versionID, transition, initiatorID string
	number                                              int32
	createdAt, updatedAt                                time.Time
	job                                                 job
	resources                                           []*resource
	params                                              map[string]string
	cancel                                              context.CancelFunc
}

type job struct {
	id, status, errMsg                 string
	createdAt                          time.Time
	startedAt, completedAt, canceledAt *time.Time
}

type resource struct {
	id, jobID, transition, typ, name string
	createdAt                        time.Time
	agents                           []*agent
}

type agent struct {
	id, name, resourceID                                       string
	createdAt, updatedAt                                       time.Time
	firstConnectedAt, lastConnectedAt, disconnectedAt, readyAt *time.Time
	startedAt                                                  *time.Time
	lifecycle                                                  string
	impl                                                       Agent
	workspaceID                                                string
}

// ---- JSON shapes ----

type roleJSON struct {
	Name           string `json:"name"`
	DisplayName    string `json:"display_name"`
	OrganizationID string `json:"organization_id,omitempty"`
}

type userJSON struct {
	ID              string     `json:"id"`
	Username        string     `json:"username"`
	Email           string     `json:"email"`
	Name            string     `json:"name"`
	AvatarURL       string     `json:"avatar_url"`
	CreatedAt       time.Time  `json:"created_at"`
	UpdatedAt       time.Time  `json:"updated_at"`
	LastSeenAt      time.Time  `json:"last_seen_at"`
	Status          string     `json:"status"`
	LoginType       string     `json:"login_type"`
	ThemePreference string     `json:"theme_preference"`
	OrganizationIDs []string   `json:"organization_ids"`
	Roles           []roleJSON `json:"roles"`
}

type orgJSON struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	DisplayName string    `json:"display_name"`
	Description string    `json:"description"`
	Icon        string    `json:"icon"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	IsDefault   bool      `json:"is_default"`
}

type templateJSON struct {
	ID                   string    `json:"id"`
	CreatedAt            time.Time `json:"created_at"`
	UpdatedAt            time.Time `json:"updated_at"`
	OrganizationID       string    `json:"organization_id"`
	OrganizationName     string    `json:"organization_name"`
	OrganizationDisplay  string    `json:"organization_display_name"`
	Name                 string    `json:"name"`
	DisplayName          string    `json:"display_name"`
	Provisioner          string    `json:"provisioner"`
	ActiveVersionID      string    `json:"active_version_id"`
	ActiveUserCount      int       `json:"active_user_count"`
	Description          string    `json:"description"`
	Icon                 string    `json:"icon"`
	DefaultTTLMillis     int64     `json:"default_ttl_ms"`
	CreatedByID          string    `json:"created_by_id"`
	CreatedByName        string    `json:"created_by_name"`
	AllowUserCancel      bool      `json:"allow_user_cancel_workspace_jobs"`
	AllowUserAutostart   bool      `json:"allow_user_autostart"`
	AllowUserAutostop    bool      `json:"allow_user_autostop"`
	Deprecated           bool      `json:"deprecated"`
	RequireActiveVersion bool      `json:"require_active_version"`
}

type versionJSON struct {
	ID             string    `json:"id"`
	TemplateID     string    `json:"template_id"`
	OrganizationID string    `json:"organization_id"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	Name           string    `json:"name"`
	Message        string    `json:"message"`
	Job            jobJSON   `json:"job"`
	Readme         string    `json:"readme"`
	Archived       bool      `json:"archived"`
}

type jobJSON struct {
	ID             string            `json:"id"`
	CreatedAt      time.Time         `json:"created_at"`
	StartedAt      *time.Time        `json:"started_at,omitempty"`
	CompletedAt    *time.Time        `json:"completed_at,omitempty"`
	CanceledAt     *time.Time        `json:"canceled_at,omitempty"`
	Error          string            `json:"error,omitempty"`
	ErrorCode      string            `json:"error_code,omitempty"`
	FileID         string            `json:"file_id"`
	Status         string            `json:"status"`
	WorkerID       *string           `json:"worker_id,omitempty"`
	Tags           map[string]string `json:"tags"`
	QueuePosition  int               `json:"queue_position"`
	QueueSize      int               `json:"queue_size"`
	OrganizationID string            `json:"organization_id"`
	Type           string            `json:"type"`
	Input          map[string]string `json:"input"`
}

type healthJSON struct {
	Healthy bool   `json:"healthy"`
	Reason  string `json:"reason,omitempty"`
}

type agentJSON struct {
	ID                       string            `json:"id"`
	CreatedAt                time.Time         `json:"created_at"`
	UpdatedAt                time.Time         `json:"updated_at"`
	FirstConnectedAt         *time.Time        `json:"first_connected_at,omitempty"`
	LastConnectedAt          *time.Time        `json:"last_connected_at,omitempty"`
	DisconnectedAt           *time.Time        `json:"disconnected_at,omitempty"`
	StartedAt                *time.Time        `json:"started_at,omitempty"`
	ReadyAt                  *time.Time        `json:"ready_at,omitempty"`
	Status                   string            `json:"status"`
	LifecycleState           string            `json:"lifecycle_state"`
	Name                     string            `json:"name"`
	ResourceID               string            `json:"resource_id"`
	InstanceID               string            `json:"instance_id,omitempty"`
	Architecture             string            `json:"architecture"`
	EnvironmentVariables     map[string]string `json:"environment_variables"`
	OperatingSystem          string            `json:"operating_system"`
	LogsLength               int               `json:"logs_length"`
	LogsOverflowed           bool              `json:"logs_overflowed"`
	Directory                string            `json:"directory,omitempty"`
	ExpandedDirectory        string            `json:"expanded_directory,omitempty"`
	Version                  string            `json:"version"`
	APIVersion               string            `json:"api_version"`
	Apps                     []any             `json:"apps"`
	ConnectionTimeoutSeconds int32             `json:"connection_timeout_seconds"`
	TroubleshootingURL       string            `json:"troubleshooting_url"`
	Subsystems               []string          `json:"subsystems"`
	Health                   healthJSON        `json:"health"`
	DisplayApps              []string          `json:"display_apps"`
	LogSources               []any             `json:"log_sources"`
	Scripts                  []any             `json:"scripts"`
	StartupScriptBehavior    string            `json:"startup_script_behavior"`
}

type resourceJSON struct {
	ID                  string      `json:"id"`
	CreatedAt           time.Time   `json:"created_at"`
	JobID               string      `json:"job_id"`
	WorkspaceTransition string      `json:"workspace_transition"`
	Type                string      `json:"type"`
	Name                string      `json:"name"`
	Hide                bool        `json:"hide"`
	Icon                string      `json:"icon"`
	Agents              []agentJSON `json:"agents"`
	Metadata            []any       `json:"metadata"`
	DailyCost           int32       `json:"daily_cost"`
}

type buildJSON struct {
	ID                      string         `json:"id"`
	CreatedAt               time.Time      `json:"created_at"`
	UpdatedAt               time.Time      `json:"updated_at"`
	WorkspaceID             string         `json:"workspace_id"`
	WorkspaceName           string         `json:"workspace_name"`
	WorkspaceOwnerID        string         `json:"workspace_owner_id"`
	WorkspaceOwnerName      string         `json:"workspace_owner_name"`
	WorkspaceOwnerAvatarURL string         `json:"workspace_owner_avatar_url"`
	TemplateVersionID       string         `json:"template_version_id"`
	TemplateVersionName     string         `json:"template_version_name"`
	BuildNumber             int32          `json:"build_number"`
	Transition              string         `json:"transition"`
	InitiatorID             string         `json:"initiator_id"`
	InitiatorName           string         `json:"initiator_name"`
	Job                     jobJSON        `json:"job"`
	Reason                  string         `json:"reason"`
	Resources               []resourceJSON `json:"resources"`
	Deadline                *time.Time     `json:"deadline,omitempty"`
	MaxDeadline             *time.Time     `json:"max_deadline,omitempty"`
	Status                  string         `json:"status"`
	DailyCost               int32          `json:"daily_cost"`
}

type workspaceHealthJSON struct {
	Healthy       bool     `json:"healthy"`
	FailingAgents []string `json:"failing_agents"`
}

type workspaceJSON struct {
	ID                      string              `json:"id"`
	CreatedAt               time.Time           `json:"created_at"`
	UpdatedAt               time.Time           `json:"updated_at"`
	OwnerID                 string              `json:"owner_id"`
	OwnerName               string              `json:"owner_name"`
	OwnerAvatarURL          string              `json:"owner_avatar_url"`
	OrganizationID          string              `json:"organization_id"`
	OrganizationName        string              `json:"organization_name"`
	TemplateID              string              `json:"template_id"`
	TemplateName            string              `json:"template_name"`
	TemplateDisplayName     string              `json:"template_display_name"`
	TemplateIcon            string              `json:"template_icon"`
	TemplateActiveVersionID string              `json:"template_active_version_id"`
	TemplateRequireActive   bool                `json:"template_require_active_version"`
	LatestBuild             buildJSON           `json:"latest_build"`
	Outdated                bool                `json:"outdated"`
	Name                    string              `json:"name"`
	AutostartSchedule       *string             `json:"autostart_schedule,omitempty"`
	TTLMillis               *int64              `json:"ttl_ms,omitempty"`
	LastUsedAt              time.Time           `json:"last_used_at"`
	DeletingAt              *time.Time          `json:"deleting_at,omitempty"`
	DormantAt               *time.Time          `json:"dormant_at,omitempty"`
	Health                  workspaceHealthJSON `json:"health"`
	AutomaticUpdates        string              `json:"automatic_updates"`
	AllowRenames            bool                `json:"allow_renames"`
	Favorite                bool                `json:"favorite"`
}
