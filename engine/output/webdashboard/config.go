package webdashboard

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Config is the configuration of the web dashboard output.
type Config struct {
	// Host is the address the live page listens on.
	Host string
	// Port is the live page's TCP port; 0 picks a free one and -1 turns the
	// live page off (the report is still written).
	Port int
	// Period is how often the live page is refreshed.
	Period time.Duration
	// Export is the path of the HTML report written at the end of the run
	// (also when it is interrupted); empty writes none.
	Export string
	// Open opens the live page in the default browser when the run starts.
	Open bool
}

// DefaultConfig listens on 127.0.0.1:5665 and refreshes every 10s, as k6.
func DefaultConfig() Config {
	return Config{Host: "127.0.0.1", Port: 5665, Period: 10 * time.Second}
}

// Enabled reports whether the environment turns the dashboard on
// (K6_WEB_DASHBOARD=true), as k6 does in addition to -o web-dashboard.
func Enabled(env map[string]string) bool {
	v, err := strconv.ParseBool(env["K6_WEB_DASHBOARD"])
	return err == nil && v
}

// WithEnv returns outs plus "web-dashboard" when the environment turns the
// dashboard on and outs does not already hold it.
func WithEnv(outs []string, env map[string]string) []string {
	if !Enabled(env) {
		return outs
	}
	for _, o := range outs {
		if typ, _, _ := strings.Cut(o, "="); typ == Name {
			return outs
		}
	}
	return append(append([]string(nil), outs...), Name)
}

// ParseConfig builds the configuration from the K6_WEB_DASHBOARD_*
// environment and then the -o argument (key=value pairs separated by
// commas: host, port, period, export, open), each overriding the previous.
func ParseConfig(env map[string]string, arg string) (Config, error) {
	c := DefaultConfig()
	for _, k := range []string{"host", "port", "period", "export", "open"} {
		name := "K6_WEB_DASHBOARD_" + strings.ToUpper(k)
		if v, ok := env[name]; ok {
			if err := c.set(name, k, v); err != nil {
				return c, err
			}
		}
	}
	if arg == "" {
		return c, nil
	}
	for _, kv := range strings.Split(arg, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return c, fmt.Errorf("web-dashboard output: invalid argument %q: want key=value pairs (keys: host, port, period, export, open)", kv)
		}
		if err := c.set(k, k, v); err != nil {
			return c, err
		}
	}
	return c, nil
}

// set applies option key from a source named src (env name or arg key).
func (c *Config) set(src, key, v string) error {
	switch key {
	case "host":
		if v != "" && net.ParseIP(v) == nil && strings.ContainsAny(v, "/: ") {
			return fmt.Errorf("web-dashboard output: invalid value %q for %s: want a host name or IP address", v, src)
		}
		c.Host = v
	case "port":
		p, err := strconv.Atoi(v)
		if err != nil || p < -1 || p > 65535 {
			return fmt.Errorf("web-dashboard output: invalid value %q for %s: want a port from 0 to 65535, or -1 for no live page", v, src)
		}
		c.Port = p
	case "period":
		d, err := time.ParseDuration(v)
		if err != nil || d < 100*time.Millisecond {
			return fmt.Errorf("web-dashboard output: invalid value %q for %s: want a duration of at least 100ms such as 10s", v, src)
		}
		c.Period = d
	case "export":
		c.Export = v
	case "open":
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("web-dashboard output: invalid value %q for %s: want true or false", v, src)
		}
		c.Open = b
	default:
		return fmt.Errorf("web-dashboard output: unknown argument key %q (value %q); allowed keys: host, port, period, export, open", key, v)
	}
	return nil
}

// Addr is the live page's listen address.
func (c Config) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }
