package csv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// TimeFormat is how the timestamp column is written.
type TimeFormat string

// The timestamp formats: seconds (default), milli/micro/nanoseconds since
// the epoch, or RFC 3339 text.
const (
	TimeUnix        TimeFormat = "unix"
	TimeUnixMilli   TimeFormat = "unix_milli"
	TimeUnixMicro   TimeFormat = "unix_micro"
	TimeUnixNano    TimeFormat = "unix_nano"
	TimeRFC3339     TimeFormat = "rfc3339"
	TimeRFC3339Nano TimeFormat = "rfc3339_nano"
)

var timeFormats = []TimeFormat{TimeUnix, TimeUnixMilli, TimeUnixMicro, TimeUnixNano, TimeRFC3339, TimeRFC3339Nano}

// Config is the configuration of the CSV output.
type Config struct {
	// FileName is where rows go; a .gz suffix gzips.
	FileName string
	// SaveInterval is how often buffered rows are written.
	SaveInterval time.Duration
	// TimeFormat formats the timestamp column.
	TimeFormat TimeFormat
}

// DefaultConfig is k6's default: file.csv, every second, unix seconds.
func DefaultConfig() Config {
	return Config{FileName: "file.csv", SaveInterval: time.Second, TimeFormat: TimeUnix}
}

// ParseConfig builds the configuration from the config-file section, the
// K6_CSV_* environment and the -o argument (a file name, or
// key=value pairs: fileName (or file), saveInterval, timeFormat), each
// overriding the previous.
func ParseConfig(configJSON []byte, env map[string]string, arg string) (Config, error) {
	c := DefaultConfig()
	if cfg := bytes.TrimSpace(configJSON); len(cfg) > 0 && string(cfg) != "null" {
		var j struct {
			FileName     *string         `json:"fileName"`
			SaveInterval json.RawMessage `json:"saveInterval"`
			TimeFormat   *string         `json:"timeFormat"`
		}
		dec := json.NewDecoder(bytes.NewReader(cfg))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&j); err != nil {
			return c, fmt.Errorf("csv output: parsing the config file section: %w (allowed keys: fileName, saveInterval, timeFormat)", err)
		}
		if j.FileName != nil {
			c.FileName = *j.FileName
		}
		if len(j.SaveInterval) > 0 && string(j.SaveInterval) != "null" {
			var s string
			if err := json.Unmarshal(j.SaveInterval, &s); err != nil {
				s = string(j.SaveInterval)
			}
			if err := c.set("saveInterval", "saveInterval", s); err != nil {
				return c, err
			}
		}
		if j.TimeFormat != nil {
			if err := c.set("timeFormat", "timeFormat", *j.TimeFormat); err != nil {
				return c, err
			}
		}
	}
	for _, e := range []struct{ env, key string }{
		{"K6_CSV_FILENAME", "fileName"},
		{"K6_CSV_SAVE_INTERVAL", "saveInterval"},
		{"K6_CSV_TIME_FORMAT", "timeFormat"},
	} {
		if v, ok := env[e.env]; ok {
			if err := c.set(e.env, e.key, v); err != nil {
				return c, err
			}
		}
	}
	if arg == "" {
		return c, nil
	}
	if !strings.Contains(arg, "=") {
		c.FileName = arg
		return c, nil
	}
	for _, kv := range strings.Split(arg, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return c, fmt.Errorf("csv output: invalid argument %q: want a file name or key=value pairs (keys: fileName, saveInterval, timeFormat)", kv)
		}
		key := k
		switch k {
		case "file", "file_name", "fileName":
			key = "fileName"
		case "save_interval", "saveInterval":
			key = "saveInterval"
		case "timeFormat":
		default:
			return c, fmt.Errorf("csv output: unknown argument key %q (value %q); allowed keys: fileName, saveInterval, timeFormat", k, v)
		}
		if err := c.set(k, key, v); err != nil {
			return c, err
		}
	}
	return c, nil
}

// set applies option key from a source named src (env name or arg key).
func (c *Config) set(src, key, v string) error {
	switch key {
	case "fileName":
		if v == "" {
			return fmt.Errorf("csv output: %s is empty: want a file name", src)
		}
		c.FileName = v
	case "saveInterval":
		d, err := parseDuration(v)
		if err != nil {
			return fmt.Errorf("csv output: invalid value %q for %s: want a positive duration such as 1s or 500ms, or milliseconds", v, src)
		}
		c.SaveInterval = d
	case "timeFormat":
		for _, f := range timeFormats {
			if string(f) == v {
				c.TimeFormat = f
				return nil
			}
		}
		names := make([]string, len(timeFormats))
		for i, f := range timeFormats {
			names[i] = string(f)
		}
		return fmt.Errorf("csv output: invalid value %q for %s: want one of %s", v, src, strings.Join(names, ", "))
	}
	return nil
}

func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if ms, err := strconv.ParseFloat(s, 64); err == nil {
		if ms <= 0 {
			return 0, fmt.Errorf("not positive")
		}
		return time.Duration(ms * float64(time.Millisecond)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d <= 0 {
		return 0, fmt.Errorf("not positive")
	}
	return d, nil
}
