package coder

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// ResolveParameters checks values against a template version's rich
// parameters and returns them as build parameters in the template's order.
// An unknown name is an error listing the template's parameters; a value
// outside the options, of the wrong type or failing min/max/regex
// validation is an error naming the parameter, the value and what is
// allowed; a required parameter without value or default is an error.
// Parameters not given are left to the template's defaults.
func ResolveParameters(template string, params []TemplateVersionParameter, values map[string]string) ([]WorkspaceBuildParameter, error) {
	byName := make(map[string]TemplateVersionParameter, len(params))
	for _, p := range params {
		byName[p.Name] = p
	}
	var unknown []string
	for name := range values {
		if _, ok := byName[name]; !ok {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		names := make([]string, 0, len(params))
		for _, p := range params {
			names = append(names, p.Name)
		}
		list := "none"
		if len(names) > 0 {
			list = strings.Join(names, ", ")
		}
		return nil, fmt.Errorf("template %q: unknown parameter %s; the template's parameters are: %s",
			template, quoteAll(unknown), list)
	}
	var out []WorkspaceBuildParameter
	for _, p := range params {
		v, ok := values[p.Name]
		if !ok {
			if p.Required && p.DefaultValue == "" {
				return nil, fmt.Errorf("template %q: parameter %q is required and has no default", template, p.Name)
			}
			continue
		}
		if err := ValidateParameter(p, v); err != nil {
			return nil, fmt.Errorf("template %q: %w", template, err)
		}
		out = append(out, WorkspaceBuildParameter{Name: p.Name, Value: v})
	}
	return out, nil
}

// ValidateParameter checks one value against a rich parameter's type,
// options and validation rules.
func ValidateParameter(p TemplateVersionParameter, v string) error {
	fail := func(format string, a ...any) error {
		msg := fmt.Sprintf(format, a...)
		if p.ValidationError != "" {
			msg += " (" + p.ValidationError + ")"
		}
		return fmt.Errorf("parameter %q: value %q %s", p.Name, v, msg)
	}
	if len(p.Options) > 0 && p.Type != "list(string)" {
		allowed := make([]string, 0, len(p.Options))
		for _, o := range p.Options {
			if o.Value == v {
				return nil
			}
			allowed = append(allowed, o.Value)
		}
		return fail("is not one of the options: %s", strings.Join(allowed, ", "))
	}
	switch p.Type {
	case "number":
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fail("is not a number")
		}
		if p.ValidationMin != nil && n < float64(*p.ValidationMin) {
			return fail("is below the minimum %d", *p.ValidationMin)
		}
		if p.ValidationMax != nil && n > float64(*p.ValidationMax) {
			return fail("is above the maximum %d", *p.ValidationMax)
		}
	case "bool":
		if v != "true" && v != "false" {
			return fail("is not a bool (allowed: true, false)")
		}
	case "list(string)":
		var list []string
		if err := json.Unmarshal([]byte(v), &list); err != nil {
			return fail("is not a JSON array of strings")
		}
		if len(p.Options) > 0 {
			for _, item := range list {
				found := false
				for _, o := range p.Options {
					found = found || o.Value == item
				}
				if !found {
					return fail("has element %q that is not one of the options", item)
				}
			}
		}
	case "string", "":
	default:
		return fmt.Errorf("parameter %q: unsupported type %q", p.Name, p.Type)
	}
	if p.ValidationRegex != "" && (p.Type == "string" || p.Type == "") {
		re, err := regexp.Compile(p.ValidationRegex)
		if err != nil {
			return fmt.Errorf("parameter %q: template regex %q: %w", p.Name, p.ValidationRegex, err)
		}
		if !re.MatchString(v) {
			return fail("does not match %s", p.ValidationRegex)
		}
	}
	return nil
}

func quoteAll(s []string) string {
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = strconv.Quote(x)
	}
	return strings.Join(q, ", ")
}
