package cdeload

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/sobek"
)

// fields maps each allowed option key to the function that applies its
// value. The function's error says what is allowed.
type fields map[string]func(v sobek.Value) error

// parseOptions applies the own keys of the options object v through f, in
// the order they appear. An unknown key, a value that is not an object, or
// a value a field refuses throws an Error naming the operation, the key,
// the value and what is allowed. undefined values are ignored; v itself may
// be undefined or null unless required.
// The Error carries the operation in `op`, as rejected promises do.
func (mi *instance) parseOptions(op string, v sobek.Value, required bool, f fields) {
	if err := parseOptions(v, required, f); err != nil {
		e := mi.vu.Runtime().NewGoError(fmt.Errorf("%s: %w", op, err))
		_ = e.Set("op", op)
		panic(e)
	}
}

// secretOptions are option keys whose values an error must never show.
var secretOptions = map[string]bool{"password": true, "privateKey": true, "token": true, "authKey": true, "sshKey": true}

// describeOption renders the value of option k for an error message,
// hiding it when k holds a secret.
func describeOption(k string, v sobek.Value) string {
	if secretOptions[k] {
		return "(hidden)"
	}
	return describe(v)
}

func parseOptions(v sobek.Value, required bool, f fields) error {
	allowed := make([]string, 0, len(f))
	for k := range f {
		allowed = append(allowed, k)
	}
	sort.Strings(allowed)
	list := strings.Join(allowed, ", ")
	if v == nil || sobek.IsUndefined(v) || sobek.IsNull(v) {
		if required {
			return fmt.Errorf("an options object is required (keys: %s)", list)
		}
		return nil
	}
	o, ok := v.(*sobek.Object)
	if !ok || o.ClassName() == "Array" || o.ClassName() == "Function" {
		return fmt.Errorf("options must be an object with the keys %s, not %s", list, describe(v))
	}
	for _, k := range o.Keys() {
		fn, ok := f[k]
		if !ok {
			return fmt.Errorf("unknown option %q (allowed: %s)", k, list)
		}
		val := o.Get(k)
		if val == nil || sobek.IsUndefined(val) {
			continue
		}
		if err := fn(val); err != nil {
			return fmt.Errorf("option %s = %s: %w", k, describeOption(k, val), err)
		}
	}
	return nil
}

// describe renders a JS value for an error message.
func describe(v sobek.Value) string {
	switch {
	case v == nil || sobek.IsUndefined(v):
		return "undefined"
	case sobek.IsNull(v):
		return "null"
	}
	switch x := v.Export().(type) {
	case string:
		if len(x) > 60 {
			x = x[:57] + "..."
		}
		return strconv.Quote(x)
	case int64, float64, bool:
		return v.String()
	}
	if o, ok := v.(*sobek.Object); ok {
		switch o.ClassName() {
		case "Array":
			return "an array"
		case "Function":
			return "a function"
		}
		return "an object"
	}
	return v.String()
}

func isString(v sobek.Value) bool {
	_, ok := v.Export().(string)
	return ok
}

// asString accepts only a string.
func asString(v sobek.Value) (string, error) {
	s, ok := v.Export().(string)
	if !ok {
		return "", errors.New("want a string")
	}
	return s, nil
}

// asNonEmpty accepts a non-empty string.
func asNonEmpty(v sobek.Value) (string, error) {
	s, err := asString(v)
	if err == nil && s == "" {
		err = errors.New("want a non-empty string")
	}
	return s, err
}

// asBool accepts only a boolean.
func asBool(v sobek.Value) (bool, error) {
	b, ok := v.Export().(bool)
	if !ok {
		return false, errors.New("want true or false")
	}
	return b, nil
}

// asNumber accepts a finite number.
func asNumber(v sobek.Value) (float64, bool) {
	switch x := v.Export().(type) {
	case int64:
		return float64(x), true
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return 0, false
		}
		return x, true
	}
	return 0, false
}

// asInt accepts an integer in [lo, hi].
func asInt(v sobek.Value, lo, hi int64) (int64, error) {
	f, ok := asNumber(v)
	if !ok || f != math.Trunc(f) || f < float64(lo) || f > float64(hi) {
		return 0, fmt.Errorf("want an integer from %d to %d", lo, hi)
	}
	return int64(f), nil
}

// asDuration accepts a duration string such as "100ms" or "1m30s", or a
// number of milliseconds; it must be positive.
func asDuration(v sobek.Value) (time.Duration, error) {
	const want = `want a positive duration: a string such as "100ms", "30s", "2m", or a number of milliseconds`
	if s, ok := v.Export().(string); ok {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return 0, errors.New(want)
		}
		return d, nil
	}
	f, ok := asNumber(v)
	if !ok || f <= 0 || f > float64(math.MaxInt64/int64(time.Millisecond)) {
		return 0, errors.New(want)
	}
	return time.Duration(f * float64(time.Millisecond)), nil
}

// asStringMap accepts an object whose values are strings, numbers or
// booleans (template parameters), converted to strings.
func asStringMap(v sobek.Value) (map[string]string, error) {
	o, ok := v.(*sobek.Object)
	if !ok || o.ClassName() == "Array" || o.ClassName() == "Function" {
		return nil, errors.New("want an object of name: value pairs")
	}
	out := map[string]string{}
	for _, k := range o.Keys() {
		val := o.Get(k)
		switch x := val.Export().(type) {
		case string:
			out[k] = x
		case bool:
			out[k] = strconv.FormatBool(x)
		case int64, float64:
			if _, ok := asNumber(val); !ok {
				return nil, fmt.Errorf("value of %q is %s: want a string, number or boolean", k, describe(val))
			}
			out[k] = val.String()
		default:
			return nil, fmt.Errorf("value of %q is %s: want a string, number or boolean", k, describe(val))
		}
	}
	return out, nil
}

// ms converts a duration to the float milliseconds scripts see.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
