package js

import (
	"reflect"
	"strings"
	"unicode"
)

// fieldNameMapper maps Go names to JS names the way k6 extensions expect:
// methods get a lower-case first letter (an X prefix marks a constructor
// and is dropped; JSON, HTML, URL, OCSP become all lower case); fields
// become snake_case unless a `js:"name"` tag says otherwise, and `js:"-"`
// hides them.
type fieldNameMapper struct{}

var methodExceptions = map[string]string{"JSON": "json", "HTML": "html", "URL": "url", "OCSP": "ocsp"}

func (fieldNameMapper) FieldName(_ reflect.Type, f reflect.StructField) string {
	if tag, ok := f.Tag.Lookup("js"); ok {
		if tag == "-" {
			return ""
		}
		return tag
	}
	return camelToSnake(f.Name)
}

func (fieldNameMapper) MethodName(_ reflect.Type, m reflect.Method) string {
	name := m.Name
	if len(name) > 1 && name[0] == 'X' && unicode.IsUpper(rune(name[1])) {
		return name[1:]
	}
	if v, ok := methodExceptions[name]; ok {
		return v
	}
	return strings.ToLower(name[:1]) + name[1:]
}

// camelToSnake turns "FooBarID" into "foo_bar_id".
func camelToSnake(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		if unicode.IsUpper(r) {
			if i > 0 && (unicode.IsLower(rs[i-1]) || (i+1 < len(rs) && unicode.IsLower(rs[i+1]) && unicode.IsUpper(rs[i-1]))) {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(r))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
