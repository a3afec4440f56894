package coder

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

func esc(s string) string { return url.PathEscape(s) }

// pageQuery encodes the q, offset and limit parameters of a paged list,
// leaving out those that are empty or zero.
func pageQuery(query string, offset, limit int) string {
	v := url.Values{}
	if query != "" {
		v.Set("q", query)
	}
	if offset > 0 {
		v.Set("offset", strconv.Itoa(offset))
	}
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	return v.Encode()
}

// BuildInfo calls GET /api/v2/buildinfo.
func (c *Client) BuildInfo(ctx context.Context) (BuildInfo, error) {
	var out BuildInfo
	return out, c.Do(ctx, http.MethodGet, "/api/v2/buildinfo", nil, &out)
}

// Me calls GET /api/v2/users/me.
func (c *Client) Me(ctx context.Context) (User, error) {
	return c.User(ctx, "me")
}

// User calls GET /api/v2/users/{user} (ID, username or "me").
func (c *Client) User(ctx context.Context, user string) (User, error) {
	var out User
	return out, c.Do(ctx, http.MethodGet, "/api/v2/users/"+esc(user), nil, &out)
}

// Users calls GET /api/v2/users?q=query with paging.
func (c *Client) Users(ctx context.Context, query string, offset, limit int) (GetUsersResponse, error) {
	var out GetUsersResponse
	return out, c.Do(ctx, http.MethodGet, "/api/v2/users?"+pageQuery(query, offset, limit), nil, &out)
}

// CreateUser calls POST /api/v2/users.
func (c *Client) CreateUser(ctx context.Context, req CreateUserRequest) (User, error) {
	var out User
	return out, c.Do(ctx, http.MethodPost, "/api/v2/users", req, &out, http.StatusCreated)
}

// DeleteUser calls DELETE /api/v2/users/{user}.
func (c *Client) DeleteUser(ctx context.Context, user string) error {
	return c.Do(ctx, http.MethodDelete, "/api/v2/users/"+esc(user), nil, nil, http.StatusOK, http.StatusNoContent)
}

// Login calls POST /api/v2/users/login and returns the session token.
func (c *Client) Login(ctx context.Context, email, password string) (string, error) {
	var out LoginWithPasswordResponse
	err := c.Do(ctx, http.MethodPost, "/api/v2/users/login", LoginWithPasswordRequest{Email: email, Password: password}, &out, http.StatusCreated)
	return out.SessionToken, err
}

// Organizations calls GET /api/v2/organizations.
func (c *Client) Organizations(ctx context.Context) ([]Organization, error) {
	var out []Organization
	return out, c.Do(ctx, http.MethodGet, "/api/v2/organizations", nil, &out)
}

// Organization calls GET /api/v2/organizations/{org} (ID or name).
func (c *Client) Organization(ctx context.Context, org string) (Organization, error) {
	var out Organization
	return out, c.Do(ctx, http.MethodGet, "/api/v2/organizations/"+esc(org), nil, &out)
}

// TemplateByName calls GET /api/v2/organizations/{org}/templates/{name}.
func (c *Client) TemplateByName(ctx context.Context, orgID, name string) (Template, error) {
	var out Template
	return out, c.Do(ctx, http.MethodGet, "/api/v2/organizations/"+esc(orgID)+"/templates/"+esc(name), nil, &out)
}

// Templates calls GET /api/v2/organizations/{org}/templates.
func (c *Client) Templates(ctx context.Context, orgID string) ([]Template, error) {
	var out []Template
	return out, c.Do(ctx, http.MethodGet, "/api/v2/organizations/"+esc(orgID)+"/templates", nil, &out)
}

// RichParameters calls GET /api/v2/templateversions/{id}/rich-parameters.
func (c *Client) RichParameters(ctx context.Context, versionID string) ([]TemplateVersionParameter, error) {
	var out []TemplateVersionParameter
	return out, c.Do(ctx, http.MethodGet, "/api/v2/templateversions/"+esc(versionID)+"/rich-parameters", nil, &out)
}

// CreateWorkspace calls
// POST /api/v2/organizations/{org}/members/{user}/workspaces.
func (c *Client) CreateWorkspace(ctx context.Context, orgID, user string, req CreateWorkspaceRequest) (Workspace, error) {
	var out Workspace
	return out, c.Do(ctx, http.MethodPost, "/api/v2/organizations/"+esc(orgID)+"/members/"+esc(user)+"/workspaces", req, &out, http.StatusCreated, http.StatusOK)
}

// Workspace calls GET /api/v2/workspaces/{id}.
func (c *Client) Workspace(ctx context.Context, id string) (Workspace, error) {
	var out Workspace
	return out, c.Do(ctx, http.MethodGet, "/api/v2/workspaces/"+esc(id), nil, &out)
}

// WorkspaceByOwnerAndName calls GET /api/v2/users/{user}/workspace/{name}.
func (c *Client) WorkspaceByOwnerAndName(ctx context.Context, owner, name string) (Workspace, error) {
	var out Workspace
	return out, c.Do(ctx, http.MethodGet, "/api/v2/users/"+esc(owner)+"/workspace/"+esc(name), nil, &out)
}

// Workspaces calls GET /api/v2/workspaces?q=query with paging.
func (c *Client) Workspaces(ctx context.Context, query string, offset, limit int) (WorkspacesResponse, error) {
	var out WorkspacesResponse
	return out, c.Do(ctx, http.MethodGet, "/api/v2/workspaces?"+pageQuery(query, offset, limit), nil, &out)
}

// WorkspaceBuild calls GET /api/v2/workspacebuilds/{id}.
func (c *Client) WorkspaceBuild(ctx context.Context, id string) (WorkspaceBuild, error) {
	var out WorkspaceBuild
	return out, c.Do(ctx, http.MethodGet, "/api/v2/workspacebuilds/"+esc(id), nil, &out)
}

// CreateWorkspaceBuild calls POST /api/v2/workspaces/{id}/builds.
func (c *Client) CreateWorkspaceBuild(ctx context.Context, workspaceID string, req CreateWorkspaceBuildRequest) (WorkspaceBuild, error) {
	var out WorkspaceBuild
	return out, c.Do(ctx, http.MethodPost, "/api/v2/workspaces/"+esc(workspaceID)+"/builds", req, &out, http.StatusCreated, http.StatusOK)
}

// CancelWorkspaceBuild calls PATCH /api/v2/workspacebuilds/{id}/cancel.
func (c *Client) CancelWorkspaceBuild(ctx context.Context, buildID string) error {
	return c.Do(ctx, http.MethodPatch, "/api/v2/workspacebuilds/"+esc(buildID)+"/cancel", nil, nil, http.StatusOK)
}

// BuildParameters calls GET /api/v2/workspacebuilds/{id}/parameters.
func (c *Client) BuildParameters(ctx context.Context, buildID string) ([]WorkspaceBuildParameter, error) {
	var out []WorkspaceBuildParameter
	return out, c.Do(ctx, http.MethodGet, "/api/v2/workspacebuilds/"+esc(buildID)+"/parameters", nil, &out)
}
