// Package k6html is k6's "k6/html" module: parseHTML and a jQuery-like
// Selection, backed by github.com/PuerkitoBio/goquery.
package k6html

import (
	"fmt"
	"strings"

	"github.com/PuerkitoBio/goquery"
	"github.com/grafana/sobek"

	"github.com/cdeload/cdeload/engine/modules"
)

// Module is k6/html; it holds no state.
type Module struct{}

// New returns k6/html.
func New() *Module { return &Module{} }

// NewModuleInstance implements modules.Module.
func (*Module) NewModuleInstance(vu modules.VU) modules.Instance {
	return &instance{rt: vu.Runtime()}
}

type instance struct{ rt *sobek.Runtime }

// Exports implements modules.Instance.
func (in *instance) Exports() modules.Exports {
	return modules.Exports{Named: map[string]any{
		"parseHTML": func(src string) *Selection { return Parse(in.rt, src) },
	}}
}

// Parse parses an HTML document and returns it as a Selection.
func Parse(rt *sobek.Runtime, src string) *Selection {
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(src))
	if err != nil {
		panic(rt.NewGoError(fmt.Errorf("parseHTML: %w", err)))
	}
	return wrap(rt, doc.Selection)
}

// Selection is a set of nodes, as in jQuery and k6.
type Selection struct {
	// Length is the number of nodes.
	Length int `js:"length"`
	rt     *sobek.Runtime
	sel    *goquery.Selection
}

func wrap(rt *sobek.Runtime, s *goquery.Selection) *Selection {
	return &Selection{Length: s.Length(), rt: rt, sel: s}
}

func (s *Selection) wrap(g *goquery.Selection) *Selection { return wrap(s.rt, g) }

func optSelector(v sobek.Value) (string, bool) {
	if v == nil || sobek.IsUndefined(v) || sobek.IsNull(v) {
		return "", false
	}
	return v.String(), true
}

// Find returns the descendants matching selector.
func (s *Selection) Find(selector string) *Selection { return s.wrap(s.sel.Find(selector)) }

// Text returns the combined text of the nodes.
func (s *Selection) Text() string { return s.sel.Text() }

// Html returns the inner HTML of the first node, or undefined.
func (s *Selection) Html() sobek.Value { //nolint:revive // k6's name
	h, err := s.sel.Html()
	if err != nil || s.sel.Length() == 0 {
		return sobek.Undefined()
	}
	return s.rt.ToValue(h)
}

// Attr returns an attribute of the first node, or def (undefined).
func (s *Selection) Attr(name string, def sobek.Value) sobek.Value {
	if v, ok := s.sel.Attr(name); ok {
		return s.rt.ToValue(v)
	}
	if def == nil {
		return sobek.Undefined()
	}
	return def
}

// Val returns the value of the first input, select or textarea.
func (s *Selection) Val() sobek.Value {
	n := s.sel.First()
	switch goquery.NodeName(n) {
	case "input":
		v, _ := n.Attr("value")
		return s.rt.ToValue(v)
	case "textarea":
		return s.rt.ToValue(n.Text())
	case "select":
		opt := n.Find("option[selected]").First()
		if opt.Length() == 0 {
			opt = n.Find("option").First()
		}
		if v, ok := opt.Attr("value"); ok {
			return s.rt.ToValue(v)
		}
		return s.rt.ToValue(opt.Text())
	}
	return sobek.Undefined()
}

// First returns the first node.
func (s *Selection) First() *Selection { return s.wrap(s.sel.First()) }

// Last returns the last node.
func (s *Selection) Last() *Selection { return s.wrap(s.sel.Last()) }

// Eq returns the node at index i (negative counts from the end).
func (s *Selection) Eq(i int) *Selection { return s.wrap(s.sel.Eq(i)) }

// Size returns the number of nodes.
func (s *Selection) Size() int { return s.sel.Length() }

// Children returns the children, optionally filtered by selector.
func (s *Selection) Children(selector sobek.Value) *Selection {
	if sel, ok := optSelector(selector); ok {
		return s.wrap(s.sel.ChildrenFiltered(sel))
	}
	return s.wrap(s.sel.Children())
}

// Parent returns the parents, optionally filtered by selector.
func (s *Selection) Parent(selector sobek.Value) *Selection {
	if sel, ok := optSelector(selector); ok {
		return s.wrap(s.sel.ParentFiltered(sel))
	}
	return s.wrap(s.sel.Parent())
}

// Next returns the next siblings, optionally filtered by selector.
func (s *Selection) Next(selector sobek.Value) *Selection {
	if sel, ok := optSelector(selector); ok {
		return s.wrap(s.sel.NextFiltered(sel))
	}
	return s.wrap(s.sel.Next())
}

// Prev returns the previous siblings, optionally filtered by selector.
func (s *Selection) Prev(selector sobek.Value) *Selection {
	if sel, ok := optSelector(selector); ok {
		return s.wrap(s.sel.PrevFiltered(sel))
	}
	return s.wrap(s.sel.Prev())
}

// Closest returns the closest ancestor (or self) matching selector.
func (s *Selection) Closest(selector string) *Selection { return s.wrap(s.sel.Closest(selector)) }

// Filter keeps the nodes matching selector.
func (s *Selection) Filter(selector string) *Selection { return s.wrap(s.sel.Filter(selector)) }

// Not drops the nodes matching selector.
func (s *Selection) Not(selector string) *Selection { return s.wrap(s.sel.Not(selector)) }

// Is reports whether a node matches selector.
func (s *Selection) Is(selector string) bool { return s.sel.Is(selector) }

// Contents returns the children including text nodes.
func (s *Selection) Contents() *Selection { return s.wrap(s.sel.Contents()) }

// Each calls fn(index, selection) for every node.
func (s *Selection) Each(fn sobek.Value) *Selection {
	f := s.callable("each", fn)
	s.sel.Each(func(i int, g *goquery.Selection) {
		if _, err := f(sobek.Undefined(), s.rt.ToValue(i), s.rt.ToValue(s.wrap(g))); err != nil {
			panic(err)
		}
	})
	return s
}

// Map returns fn(index, selection) for every node.
func (s *Selection) Map(fn sobek.Value) []sobek.Value {
	f := s.callable("map", fn)
	out := make([]sobek.Value, 0, s.sel.Length())
	s.sel.Each(func(i int, g *goquery.Selection) {
		v, err := f(sobek.Undefined(), s.rt.ToValue(i), s.rt.ToValue(s.wrap(g)))
		if err != nil {
			panic(err)
		}
		out = append(out, v)
	})
	return out
}

// ToArray returns every node as a Selection of its own.
func (s *Selection) ToArray() []*Selection {
	out := make([]*Selection, 0, s.sel.Length())
	s.sel.Each(func(_ int, g *goquery.Selection) { out = append(out, s.wrap(g)) })
	return out
}

func (s *Selection) callable(what string, fn sobek.Value) sobek.Callable {
	f, ok := sobek.AssertFunction(fn)
	if !ok {
		panic(s.rt.NewTypeError("%s: the argument must be a function", what))
	}
	return f
}
