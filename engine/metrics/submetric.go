package metrics

import (
	"fmt"
	"strings"
)

// ParseMetricKey splits a threshold key such as
// `http_req_duration{status:200, method:"GET"}` into the metric name and the
// tag filter of the submetric. Pairs are split on ',' and then on the first
// ':'; keys and values are trimmed of spaces and of surrounding quotes. A
// key without braces has a nil filter.
func ParseMetricKey(key string) (name string, filter *TagSet, err error) {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		if strings.ContainsRune(key, '}') {
			return "", nil, fmt.Errorf("invalid metric key %q: '}' without '{'", key)
		}
		return strings.TrimSpace(key), nil, nil
	}
	name = strings.TrimSpace(key[:open])
	if name == "" {
		return "", nil, fmt.Errorf("invalid metric key %q: no metric name before '{'", key)
	}
	body, ok := strings.CutSuffix(strings.TrimSpace(key[open+1:]), "}")
	if !ok {
		return "", nil, fmt.Errorf("invalid metric key %q: the tag filter must end with '}'", key)
	}
	if strings.TrimSpace(body) == "" {
		return "", nil, fmt.Errorf("invalid metric key %q: empty tag filter, expected {tag:value,...}", key)
	}
	tags := map[string]string{}
	for _, pair := range strings.Split(body, ",") {
		k, v, found := strings.Cut(pair, ":")
		if !found {
			return "", nil, fmt.Errorf("invalid metric key %q: tag filter %q is not of the form tag:value", key, strings.TrimSpace(pair))
		}
		k, v = trimTagPart(k), trimTagPart(v)
		if k == "" {
			return "", nil, fmt.Errorf("invalid metric key %q: empty tag name in %q", key, strings.TrimSpace(pair))
		}
		tags[k] = v
	}
	return name, NewTagSet(tags), nil
}

func trimTagPart(s string) string {
	s = strings.TrimSpace(s)
	s = strings.Trim(s, `"'`)
	return s
}

// Matches reports whether tags contain every tag of filter (a nil filter
// matches everything).
func Matches(tags, filter *TagSet) bool {
	return tags.Contains(filter)
}

// FormatSubmetricTags renders a filter as k6's summary shows it:
// "{ k:v, k2:v2 }".
func FormatSubmetricTags(filter *TagSet) string {
	var b strings.Builder
	b.WriteString("{ ")
	first := true
	filter.Each(func(k, v string) {
		if !first {
			b.WriteString(", ")
		}
		first = false
		b.WriteString(k)
		b.WriteByte(':')
		b.WriteString(v)
	})
	b.WriteString(" }")
	return b.String()
}
