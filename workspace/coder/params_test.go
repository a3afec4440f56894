package coder

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestValidateParameterKinds(t *testing.T) {
	lo, hi := int32(1), int32(10)
	cases := []struct {
		p    TemplateVersionParameter
		v    string
		want string // "" = valid
	}{
		{TemplateVersionParameter{Name: "b", Type: "bool"}, "true", ""},
		{TemplateVersionParameter{Name: "b", Type: "bool"}, "yes", "not a bool"},
		{TemplateVersionParameter{Name: "n", Type: "number", ValidationMin: &lo, ValidationMax: &hi}, "11", "above the maximum 10"},
		{TemplateVersionParameter{Name: "s", Type: "string", ValidationRegex: "^[a-z]+$", ValidationError: "lowercase only"}, "ABC", "lowercase only"},
		{TemplateVersionParameter{Name: "s", Type: "string", ValidationRegex: "^[a-z]+$"}, "abc", ""},
		{TemplateVersionParameter{Name: "l", Type: "list(string)", Options: []TemplateVersionParameterOption{{Value: "a"}, {Value: "b"}}}, `["a","b"]`, ""},
		{TemplateVersionParameter{Name: "l", Type: "list(string)", Options: []TemplateVersionParameterOption{{Value: "a"}}}, `["c"]`, `element "c"`},
		{TemplateVersionParameter{Name: "l", Type: "list(string)"}, `a,b`, "JSON array"},
	}
	for _, c := range cases {
		err := ValidateParameter(c.p, c.v)
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s=%q: got %v, want %q", c.p.Name, c.v, err, c.want)
		}
	}
	req := []TemplateVersionParameter{{Name: "region", Type: "string", Required: true}}
	if _, err := ResolveParameters("t", req, nil); err == nil || !strings.Contains(err.Error(), `"region" is required`) {
		t.Fatalf("required: %v", err)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := http.Header{}
	if retryAfter(h, now) != 0 {
		t.Fatal("absent")
	}
	h.Set("Retry-After", "2")
	if retryAfter(h, now) != 2*time.Second {
		t.Fatal("seconds")
	}
	h.Set("Retry-After", now.Add(3*time.Second).Format(http.TimeFormat))
	if retryAfter(h, now) != 3*time.Second {
		t.Fatal("date")
	}
	if AgentAddress("00000000-0000-0000-0000-0000000000ff") != "fd7a:115c:a1e0::ff" || AgentAddress("nope") != "" {
		t.Fatal(AgentAddress("00000000-0000-0000-0000-0000000000ff"))
	}
}
