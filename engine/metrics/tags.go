package metrics

import (
	"sort"
	"strings"
)

// TagSet is an immutable, sorted set of indexed tags. The zero value and nil
// are the empty set. With returns a new set and leaves the receiver intact,
// so a TagSet can be shared between goroutines.
type TagSet struct {
	keys   []string
	values []string
	id     string
}

// NewTagSet builds a tag set from a map.
func NewTagSet(m map[string]string) *TagSet {
	var t *TagSet
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t = &TagSet{keys: keys, values: make([]string, len(keys))}
	for i, k := range keys {
		t.values[i] = m[k]
	}
	t.id = t.buildID()
	return t
}

// With returns a copy of the set with key set to value.
func (t *TagSet) With(key, value string) *TagSet {
	n := t.Len()
	i := 0
	if t != nil {
		i = sort.SearchStrings(t.keys, key)
		if i < n && t.keys[i] == key {
			if t.values[i] == value {
				return t
			}
			out := &TagSet{keys: t.keys, values: append([]string(nil), t.values...)}
			out.values[i] = value
			out.id = out.buildID()
			return out
		}
	}
	out := &TagSet{keys: make([]string, 0, n+1), values: make([]string, 0, n+1)}
	if t != nil {
		out.keys = append(out.keys, t.keys[:i]...)
		out.values = append(out.values, t.values[:i]...)
	}
	out.keys = append(out.keys, key)
	out.values = append(out.values, value)
	if t != nil {
		out.keys = append(out.keys, t.keys[i:]...)
		out.values = append(out.values, t.values[i:]...)
	}
	out.id = out.buildID()
	return out
}

// Without returns a copy of the set without key.
func (t *TagSet) Without(key string) *TagSet {
	if t == nil {
		return nil
	}
	i := sort.SearchStrings(t.keys, key)
	if i >= len(t.keys) || t.keys[i] != key {
		return t
	}
	out := &TagSet{
		keys:   append(append([]string(nil), t.keys[:i]...), t.keys[i+1:]...),
		values: append(append([]string(nil), t.values[:i]...), t.values[i+1:]...),
	}
	out.id = out.buildID()
	return out
}

// Get returns the value of key and whether it is present.
func (t *TagSet) Get(key string) (string, bool) {
	if t == nil {
		return "", false
	}
	i := sort.SearchStrings(t.keys, key)
	if i < len(t.keys) && t.keys[i] == key {
		return t.values[i], true
	}
	return "", false
}

// Len returns the number of tags.
func (t *TagSet) Len() int {
	if t == nil {
		return 0
	}
	return len(t.keys)
}

// Map returns the tags as a new map.
func (t *TagSet) Map() map[string]string {
	m := make(map[string]string, t.Len())
	if t != nil {
		for i, k := range t.keys {
			m[k] = t.values[i]
		}
	}
	return m
}

// Each calls fn for every tag in key order.
func (t *TagSet) Each(fn func(key, value string)) {
	if t == nil {
		return
	}
	for i, k := range t.keys {
		fn(k, t.values[i])
	}
}

// Contains reports whether every tag of sub is in t with the same value.
func (t *TagSet) Contains(sub *TagSet) bool {
	if sub == nil {
		return true
	}
	for i, k := range sub.keys {
		if v, ok := t.Get(k); !ok || v != sub.values[i] {
			return false
		}
	}
	return true
}

// ID returns a string that is equal for equal tag sets; a map key for time
// series.
func (t *TagSet) ID() string {
	if t == nil {
		return ""
	}
	return t.id
}

func (t *TagSet) buildID() string {
	var b strings.Builder
	for i, k := range t.keys {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(t.values[i])
		b.WriteByte(0)
	}
	return b.String()
}
