package options

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration that reads k6's duration spellings from JSON
// (a Go duration string, optionally prefixed by whole days "Nd", or a bare
// number of milliseconds) and writes itself as a Go duration string.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String returns the Go duration string.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string or a number of milliseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" {
		return fmt.Errorf("null is not a duration")
	}
	if len(s) > 0 && s[0] == '"' {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		v, err := ParseDuration(str)
		if err != nil {
			return err
		}
		*d = Duration(v)
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("%s is not a duration: use a string like \"30s\" or a number of milliseconds", s)
	}
	*d = Duration(time.Duration(f * float64(time.Millisecond)))
	return nil
}

var daysRE = regexp.MustCompile(`^(-?)(\d+)d(.*)$`)

// ParseDuration parses k6's extended durations: Go duration strings
// ("1h30m", "250ms"), an optional leading whole-days part ("2d12h"), and
// bare numbers, which are milliseconds ("1500").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Duration(f * float64(time.Millisecond)), nil
	}
	if m := daysRE.FindStringSubmatch(s); m != nil {
		days, err := strconv.ParseInt(m[2], 10, 64)
		if err != nil || days > 106751 {
			return 0, fmt.Errorf("invalid duration %q: too many days", s)
		}
		total := time.Duration(days) * 24 * time.Hour
		if m[3] != "" {
			rest, err := time.ParseDuration(m[3])
			if err != nil || rest < 0 {
				return 0, fmt.Errorf("invalid duration %q: after the days, expected a duration like \"12h\"", s)
			}
			total += rest
		}
		if m[1] == "-" {
			total = -total
		}
		return total, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: use a Go duration like \"30s\", \"1m30s\", \"2d\" or a number of milliseconds", s)
	}
	return v, nil
}
