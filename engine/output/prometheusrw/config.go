package prometheusrw

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Defaults of the remote-write output, as in k6.
const (
	DefaultURL          = "http://localhost:9090/api/v1/write"
	DefaultPushInterval = 5 * time.Second
	// DefaultHTTPTimeout bounds one remote-write request.
	DefaultHTTPTimeout = 5 * time.Second
)

// DefaultTrendStats is the trend statistics sent when none are configured.
var DefaultTrendStats = []string{"p(99)"}

// Config is the configuration of the remote-write output. It is built from
// defaults, then the config file section, then K6_PROMETHEUS_RW_* env, then
// the -o argument, each overriding the previous.
type Config struct {
	// URL is the remote-write endpoint.
	URL string
	// Headers are added to every request.
	Headers map[string]string
	// Username and Password enable HTTP basic auth.
	Username string
	Password string
	// BearerToken is sent as "Authorization: Bearer <token>".
	BearerToken string
	// InsecureSkipTLSVerify disables server certificate checks.
	InsecureSkipTLSVerify bool
	// TLSMinVersion is the lowest TLS version offered (tls.VersionTLS1x).
	TLSMinVersion uint16
	// ClientCertificate and ClientCertificateKey are PEM file paths for
	// mutual TLS; both or neither.
	ClientCertificate    string
	ClientCertificateKey string
	// PushInterval is the time between two pushes.
	PushInterval time.Duration
	// TrendStats are the trend statistics sent as one series each, e.g.
	// "p(95)", "avg", "count".
	TrendStats []string
	// TrendAsNativeHistogram sends trends as native histograms instead
	// of per-stat gauges: one k6_<name>_seconds (time), _bytes (data) or
	// bare series per trend, schema 3 (bucket factor about 1.09).
	TrendAsNativeHistogram bool
	// StaleMarkers makes Stop mark every series stale.
	StaleMarkers bool
	// SigV4Region, SigV4AccessKey and SigV4SecretKey configure AWS SigV4
	// request signing; all or none.
	SigV4Region    string
	SigV4AccessKey string
	SigV4SecretKey string
}

// DefaultConfig returns the configuration used when nothing is set.
func DefaultConfig() Config {
	return Config{
		URL:           DefaultURL,
		Headers:       map[string]string{},
		TLSMinVersion: tls.VersionTLS13,
		PushInterval:  DefaultPushInterval,
		TrendStats:    append([]string(nil), DefaultTrendStats...),
	}
}

// envPrefix prefixes every environment variable of this output.
const envPrefix = "K6_PROMETHEUS_RW_"

// ParseConfig builds the configuration from the config-file section (JSON,
// may be empty), the environment and the -o argument, in that order of
// increasing precedence. Unknown keys and bad values are errors naming the
// key and the value.
func ParseConfig(configJSON []byte, env map[string]string, arg string) (Config, error) {
	c := DefaultConfig()
	if len(bytes.TrimSpace(configJSON)) > 0 {
		if err := c.applyJSON(configJSON); err != nil {
			return c, err
		}
	}
	if err := c.applyEnv(env); err != nil {
		return c, err
	}
	if err := c.applyArg(arg); err != nil {
		return c, err
	}
	if err := c.validate(); err != nil {
		return c, err
	}
	return c, nil
}

// jsonConfig is the config-file form; every field optional.
type jsonConfig struct {
	URL                    *string           `json:"url"`
	Headers                map[string]string `json:"headers"`
	Username               *string           `json:"username"`
	Password               *string           `json:"password"`
	BearerToken            *string           `json:"bearerToken"`
	InsecureSkipTLSVerify  *bool             `json:"insecureSkipTLSVerify"`
	TLSMinVersion          *string           `json:"tlsMinVersion"`
	ClientCertificate      *string           `json:"clientCertificate"`
	ClientCertificateKey   *string           `json:"clientCertificateKey"`
	PushInterval           json.RawMessage   `json:"pushInterval"`
	TrendStats             []string          `json:"trendStats"`
	TrendAsNativeHistogram *bool             `json:"trendAsNativeHistogram"`
	StaleMarkers           *bool             `json:"staleMarkers"`
	SigV4Region            *string           `json:"sigV4Region"`
	SigV4AccessKey         *string           `json:"sigV4AccessKey"`
	SigV4SecretKey         *string           `json:"sigV4SecretKey"`
}

func (c *Config) applyJSON(data []byte) error {
	var j jsonConfig
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("prometheus-rw: parsing the config file section: %w "+
			"(allowed keys: url, headers, username, password, bearerToken, insecureSkipTLSVerify, "+
			"tlsMinVersion, clientCertificate, clientCertificateKey, pushInterval, trendStats, "+
			"trendAsNativeHistogram, staleMarkers, sigV4Region, sigV4AccessKey, sigV4SecretKey)", err)
	}
	setIfGiven(&c.URL, j.URL)
	for k, v := range j.Headers {
		c.Headers[k] = v
	}
	setIfGiven(&c.Username, j.Username)
	setIfGiven(&c.Password, j.Password)
	setIfGiven(&c.BearerToken, j.BearerToken)
	setIfGiven(&c.InsecureSkipTLSVerify, j.InsecureSkipTLSVerify)
	if j.TLSMinVersion != nil {
		if err := c.set("tlsMinVersion", *j.TLSMinVersion); err != nil {
			return err
		}
	}
	setIfGiven(&c.ClientCertificate, j.ClientCertificate)
	setIfGiven(&c.ClientCertificateKey, j.ClientCertificateKey)
	if len(j.PushInterval) > 0 && string(j.PushInterval) != "null" {
		var s string
		if err := json.Unmarshal(j.PushInterval, &s); err != nil {
			s = string(j.PushInterval) // a bare number: milliseconds
		}
		if err := c.set("pushInterval", s); err != nil {
			return err
		}
	}
	if j.TrendStats != nil {
		if err := c.setTrendStats("trendStats", j.TrendStats); err != nil {
			return err
		}
	}
	setIfGiven(&c.TrendAsNativeHistogram, j.TrendAsNativeHistogram)
	setIfGiven(&c.StaleMarkers, j.StaleMarkers)
	setIfGiven(&c.SigV4Region, j.SigV4Region)
	setIfGiven(&c.SigV4AccessKey, j.SigV4AccessKey)
	setIfGiven(&c.SigV4SecretKey, j.SigV4SecretKey)
	return nil
}

// setIfGiven sets *dst to *src when the config file gave src.
func setIfGiven[T any](dst, src *T) {
	if src != nil {
		*dst = *src
	}
}

// envKeys maps K6_PROMETHEUS_RW_<suffix> to the option key it sets.
var envKeys = map[string]string{
	"SERVER_URL":                "url",
	"PUSH_INTERVAL":             "pushInterval",
	"TREND_STATS":               "trendStats",
	"TREND_AS_NATIVE_HISTOGRAM": "trendAsNativeHistogram",
	"STALE_MARKERS":             "staleMarkers",
	"USERNAME":                  "username",
	"PASSWORD":                  "password",
	"BEARER_TOKEN":              "bearerToken",
	"INSECURE_SKIP_TLS_VERIFY":  "insecureSkipTLSVerify",
	"TLS_MINIMUM_VERSION":       "tlsMinVersion",
	"CLIENT_CERTIFICATE":        "clientCertificate",
	"CLIENT_CERTIFICATE_KEY":    "clientCertificateKey",
	"SIGV4_REGION":              "sigV4Region",
	"SIGV4_ACCESS_KEY":          "sigV4AccessKey",
	"SIGV4_SECRET_KEY":          "sigV4SecretKey",
}

func (c *Config) applyEnv(env map[string]string) error {
	// Sorted so that errors are deterministic.
	names := make([]string, 0, len(env))
	for k := range env {
		if strings.HasPrefix(k, envPrefix) {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		v := env[name]
		suffix := strings.TrimPrefix(name, envPrefix)
		switch {
		case suffix == "HTTP_HEADERS":
			if strings.TrimSpace(v) == "" {
				continue
			}
			for _, kv := range strings.Split(v, ",") {
				hk, hv, ok := strings.Cut(kv, ":")
				hk = strings.TrimSpace(hk)
				if !ok || hk == "" {
					return fmt.Errorf("prometheus-rw: invalid %s value %q: want name:value pairs separated by commas", name, v)
				}
				c.Headers[hk] = strings.TrimSpace(hv)
			}
		case strings.HasPrefix(suffix, "HEADERS_"):
			hk := strings.TrimPrefix(suffix, "HEADERS_")
			if hk == "" {
				return fmt.Errorf("prometheus-rw: invalid environment variable %s: the header name is empty", name)
			}
			c.Headers[hk] = v
		case suffix == "LABELS":
			return fmt.Errorf("prometheus-rw: %s is not supported (static labels): use --tag NAME=VALUE, which becomes a label", name)
		default:
			key, ok := envKeys[suffix]
			if !ok {
				// Other K6_PROMETHEUS_RW_* names are not ours to reject
				// silently: a typo would otherwise go unnoticed.
				return fmt.Errorf("prometheus-rw: unknown environment variable %s (known: %s)", name, knownEnv())
			}
			if err := c.setFrom(name, key, v); err != nil {
				return err
			}
		}
	}
	return nil
}

func knownEnv() string {
	names := make([]string, 0, len(envKeys)+2)
	for k := range envKeys {
		names = append(names, envPrefix+k)
	}
	names = append(names, envPrefix+"HEADERS_<Name>", envPrefix+"HTTP_HEADERS")
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// argKeys are the keys accepted in "-o experimental-prometheus-rw=k=v,...".
var argKeys = []string{
	"url", "insecureSkipTLSVerify", "tlsMinVersion", "username", "password",
	"bearerToken", "pushInterval", "trendAsNativeHistogram", "staleMarkers",
	"clientCertificate", "clientCertificateKey", "headers.<Name>",
}

func (c *Config) applyArg(arg string) error {
	if strings.TrimSpace(arg) == "" {
		return nil
	}
	for _, kv := range strings.Split(arg, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("prometheus-rw: invalid argument %q: want key=value pairs separated by commas (keys: %s)",
				kv, strings.Join(argKeys, ", "))
		}
		if strings.HasPrefix(k, "headers.") {
			hk := strings.TrimPrefix(k, "headers.")
			if hk == "" {
				return fmt.Errorf("prometheus-rw: invalid argument key %q: the header name is empty", k)
			}
			c.Headers[hk] = v
			continue
		}
		if !slices.Contains(argKeys, k) {
			return fmt.Errorf("prometheus-rw: unknown argument key %q (value %q); allowed keys: %s",
				k, v, strings.Join(argKeys, ", "))
		}
		if err := c.set(k, v); err != nil {
			return err
		}
	}
	return nil
}

// set applies one option given by its key.
func (c *Config) set(key, v string) error { return c.setFrom(key, key, v) }

// setFrom applies option key from a source named src (an env name or an
// argument key), for error messages.
func (c *Config) setFrom(src, key, v string) error {
	bad := func(allowed string) error {
		return fmt.Errorf("prometheus-rw: invalid value %q for %s: %s", v, src, allowed)
	}
	if dst, ok := c.stringOptions()[key]; ok {
		*dst = v
		return nil
	}
	if dst, ok := c.boolOptions()[key]; ok {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return bad("want true or false")
		}
		*dst = b
		return nil
	}
	switch key {
	case "tlsMinVersion":
		ver, ok := tlsVersions[strings.TrimSpace(v)]
		if !ok {
			return bad("want one of 1.0, 1.1, 1.2, 1.3")
		}
		c.TLSMinVersion = ver
	case "pushInterval":
		d, err := parseDuration(v)
		if err != nil {
			return bad("want a positive duration such as 5s or 500ms, or a number of milliseconds")
		}
		c.PushInterval = d
	case "trendStats":
		return c.setTrendStats(src, strings.Split(v, ","))
	default:
		return fmt.Errorf("prometheus-rw: unknown option %q", key)
	}
	return nil
}

// stringOptions maps the keys of the options taken verbatim to their fields.
func (c *Config) stringOptions() map[string]*string {
	return map[string]*string{
		"url": &c.URL, "username": &c.Username, "password": &c.Password, "bearerToken": &c.BearerToken,
		"clientCertificate": &c.ClientCertificate, "clientCertificateKey": &c.ClientCertificateKey,
		"sigV4Region": &c.SigV4Region, "sigV4AccessKey": &c.SigV4AccessKey, "sigV4SecretKey": &c.SigV4SecretKey,
	}
}

// boolOptions maps the keys of the true/false options to their fields.
func (c *Config) boolOptions() map[string]*bool {
	return map[string]*bool{
		"insecureSkipTLSVerify":  &c.InsecureSkipTLSVerify,
		"trendAsNativeHistogram": &c.TrendAsNativeHistogram,
		"staleMarkers":           &c.StaleMarkers,
	}
}

var tlsVersions = map[string]uint16{
	"1.0": tls.VersionTLS10, "tls1.0": tls.VersionTLS10,
	"1.1": tls.VersionTLS11, "tls1.1": tls.VersionTLS11,
	"1.2": tls.VersionTLS12, "tls1.2": tls.VersionTLS12,
	"1.3": tls.VersionTLS13, "tls1.3": tls.VersionTLS13,
}

func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if ms, err := strconv.ParseFloat(s, 64); err == nil {
		if ms <= 0 {
			return 0, errors.New("not positive")
		}
		return time.Duration(ms * float64(time.Millisecond)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d <= 0 {
		return 0, errors.New("not positive")
	}
	return d, nil
}

func (c *Config) setTrendStats(src string, stats []string) error {
	out := make([]string, 0, len(stats))
	seen := map[string]bool{}
	for _, s := range stats {
		s = strings.TrimSpace(s)
		if _, err := parseStat(s); err != nil {
			return fmt.Errorf("prometheus-rw: invalid trend stat %q in %s: %w", s, src, err)
		}
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return fmt.Errorf("prometheus-rw: %s is empty: want a list of count, sum, min, max, avg, med, p(N)", src)
	}
	c.TrendStats = out
	return nil
}

func (c *Config) validate() error {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("prometheus-rw: invalid url %q: want an absolute http or https URL", redactURL(c.URL))
	}
	if (c.ClientCertificate == "") != (c.ClientCertificateKey == "") {
		return errors.New("prometheus-rw: clientCertificate and clientCertificateKey must be set together")
	}
	if c.BearerToken != "" && (c.Username != "" || c.Password != "") {
		return errors.New("prometheus-rw: set either a bearer token or username/password, not both")
	}
	if c.Password != "" && c.Username == "" {
		return errors.New("prometheus-rw: a password is set without a username")
	}
	n := 0
	for _, s := range []string{c.SigV4Region, c.SigV4AccessKey, c.SigV4SecretKey} {
		if s != "" {
			n++
		}
	}
	if n != 0 && n != 3 {
		return errors.New("prometheus-rw: sigV4Region, sigV4AccessKey and sigV4SecretKey must be set all together or not at all")
	}
	if n == 3 && (c.BearerToken != "" || c.Username != "") {
		return errors.New("prometheus-rw: SigV4 signing cannot be combined with basic auth or a bearer token")
	}
	if n == 3 {
		return errors.New("prometheus-rw: SigV4 request signing (K6_PROMETHEUS_RW_SIGV4_*) is not supported by this output yet")
	}
	for k := range c.Headers {
		if !validHeaderName(k) {
			return fmt.Errorf("prometheus-rw: invalid header name %q", k)
		}
	}
	return nil
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b <= ' ' || b >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", b) >= 0 {
			return false
		}
	}
	return http.CanonicalHeaderKey(s) != ""
}

// redactURL hides the password of a URL's user info.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "<unparseable url>"
	}
	return u.Redacted()
}
