package cdeload

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/grafana/sobek"

	"github.com/cdeload/cdeload/workspace"
)

// Limits of coder.workspaces().
const (
	defaultFindTimeout = 2 * time.Minute
	maxFindLimit       = 100000
)

// findRequest is what coder.workspaces() asks for: Coder search terms and
// the exact-name or name-prefix filter applied to what coderd returns
// (Coder's name: term matches a substring).
type findRequest struct {
	owner, name, prefix, template, query string
	limit                                int
	timeout                              time.Duration
}

// searchTerm accepts a value for one term of Coder's search query: a
// non-empty string without spaces, quotes or colons.
func searchTerm(v sobek.Value) (string, error) {
	s, err := asNonEmpty(v)
	if err != nil {
		return "", err
	}
	if strings.ContainsAny(s, " \t\n\":'") {
		return "", errors.New("want a single word (no spaces, quotes or ':'); use the query option for Coder's full search syntax")
	}
	return s, nil
}

// q is the q parameter of GET /api/v2/workspaces for r.
func (r findRequest) q() string {
	var terms []string
	add := func(k, v string) {
		if v != "" {
			terms = append(terms, k+":"+v)
		}
	}
	add("owner", r.owner)
	add("template", r.template)
	add("name", r.name+r.prefix) // one of them at most
	if r.query != "" {
		terms = append(terms, r.query)
	}
	return strings.Join(terms, " ")
}

// keep applies the exact-name and prefix filters (case-insensitive, as
// Coder's search).
func (r findRequest) keep(ws workspace.Workspace) bool {
	n := strings.ToLower(ws.Name)
	if r.name != "" && n != strings.ToLower(r.name) {
		return false
	}
	return r.prefix == "" || strings.HasPrefix(n, strings.ToLower(r.prefix))
}

// jsWorkspaces implements coder.workspaces(options?): the deployment's
// existing workspaces that match, as workspace objects this run does not
// own (delete() rejects; cleanup() leaves them alone).
func (c *coderObj) jsWorkspaces(call sobek.FunctionCall) sobek.Value {
	mi := c.mi
	op := "coder.workspaces"
	mi.mustVU(op)
	r := findRequest{timeout: defaultFindTimeout}
	mi.parseOptions(op, call.Argument(0), false, fields{
		"owner":    func(v sobek.Value) (err error) { r.owner, err = searchTerm(v); return err },
		"name":     func(v sobek.Value) (err error) { r.name, err = searchTerm(v); return err },
		"prefix":   func(v sobek.Value) (err error) { r.prefix, err = searchTerm(v); return err },
		"template": func(v sobek.Value) (err error) { r.template, err = searchTerm(v); return err },
		"query":    func(v sobek.Value) (err error) { r.query, err = asNonEmpty(v); return err },
		"limit": func(v sobek.Value) error {
			n, err := asInt(v, 1, maxFindLimit)
			r.limit = int(n)
			return err
		},
		"timeout": func(v sobek.Value) (err error) { r.timeout, err = asDuration(v); return err },
	})
	if r.name != "" && r.prefix != "" {
		mi.throw(fmt.Errorf("%s: options name (%q, an exact name) and prefix (%q) exclude each other: set one", op, r.name, r.prefix))
	}
	q := r.q()
	op = "coder.workspaces()" // Find's errors name the query
	return mi.async(op, func(ctx context.Context) (toJS, error) {
		p, err := c.provider(ctx)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(ctx, r.timeout)
		defer cancel()
		found, err := p.Find(ctx, q, r.limit, r.keep)
		if err != nil {
			return nil, err
		}
		dep := c.deployment()
		ws := make([]*coderWorkspace, len(found))
		for i, f := range found {
			mi.root.rememberCoderWorkspace(f.Address, f.Name, f.AgentID(), dep)
			ws[i] = &coderWorkspace{c: c, ws: f, ssh: f.AgentID() != "", existing: true}
		}
		return func(rt *sobek.Runtime) sobek.Value {
			out := make([]any, len(ws))
			for i, w := range ws {
				out[i] = w.object()
			}
			return rt.NewArray(out...)
		}, nil
	})
}

// errNotCreated is the rejection of delete() on a workspace this run did
// not create.
func errNotCreated(name string) error {
	return fmt.Errorf("workspace %s was found by coder.workspaces(), not created by this run: "+
		"cdeload deletes only the workspaces it created (remove this one with the coder CLI or the dashboard)", name)
}
