// Package k6http is k6's "k6/http" module: HTTP requests from a VU with
// k6's API, response object, timings, error codes and metrics.
package k6http

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"time"
)

// config is the part of the test options k6/http acts on.
type config struct {
	InsecureSkipTLSVerify bool              `json:"insecureSkipTLSVerify"`
	TLSAuth               []tlsAuth         `json:"tlsAuth"`
	TLSVersion            json.RawMessage   `json:"tlsVersion"`
	Hosts                 map[string]string `json:"hosts"`
	UserAgent             *string           `json:"userAgent"`
	Batch                 *int              `json:"batch"`
	BatchPerHost          *int              `json:"batchPerHost"`
	DiscardResponseBodies bool              `json:"discardResponseBodies"`
	MaxRedirects          *int              `json:"maxRedirects"`
	NoConnectionReuse     bool              `json:"noConnectionReuse"`
	NoVUConnectionReuse   bool              `json:"noVUConnectionReuse"`
	SystemTags            []string          `json:"systemTags"`
	Throw                 bool              `json:"throw"`

	// derived
	tlsMin, tlsMax uint16
	certs          []tls.Certificate
	tagSet         map[string]bool
}

type tlsAuth struct {
	Domains  []string `json:"domains"`
	Cert     string   `json:"cert"`
	Key      string   `json:"key"`
	Password string   `json:"password"`
}

// defaultSystemTags are k6's system tags enabled unless systemTags is set.
var defaultSystemTags = []string{
	"proto", "subproto", "status", "method", "url", "name", "group", "check", "error", "error_code",
	"tls_version", "scenario", "service", "expected_response",
}

const (
	defaultUserAgent    = "cdeload (k6-compatible; +https://github.com/cdeload/cdeload)"
	defaultMaxRedirects = 10
	defaultBatch        = 20
	defaultBatchPerHost = 6
	defaultTimeout      = 60 * time.Second
)

var tlsVersions = map[string]uint16{
	"tls1.0": tls.VersionTLS10, "tls1.1": tls.VersionTLS11, "tls1.2": tls.VersionTLS12, "tls1.3": tls.VersionTLS13,
}

// parseConfig reads the k6/http options from the run's options JSON.
func parseConfig(raw []byte) (*config, error) {
	c := &config{}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, c); err != nil {
			return nil, fmt.Errorf("k6/http options: %w", err)
		}
	}
	tags := c.SystemTags
	if tags == nil {
		tags = defaultSystemTags
	}
	c.tagSet = make(map[string]bool, len(tags))
	for _, t := range tags {
		c.tagSet[t] = true
	}
	if len(c.TLSVersion) > 0 && string(c.TLSVersion) != "null" {
		var one string
		var rng struct{ Min, Max string }
		switch {
		case json.Unmarshal(c.TLSVersion, &one) == nil:
			v, ok := tlsVersions[one]
			if !ok {
				return nil, fmt.Errorf("option tlsVersion: %q is not one of tls1.0, tls1.1, tls1.2, tls1.3", one)
			}
			c.tlsMin, c.tlsMax = v, v
		case json.Unmarshal(c.TLSVersion, &rng) == nil:
			for _, p := range []struct {
				s   string
				dst *uint16
			}{{rng.Min, &c.tlsMin}, {rng.Max, &c.tlsMax}} {
				if p.s == "" {
					continue
				}
				v, ok := tlsVersions[p.s]
				if !ok {
					return nil, fmt.Errorf("option tlsVersion: %q is not one of tls1.0, tls1.1, tls1.2, tls1.3", p.s)
				}
				*p.dst = v
			}
		default:
			return nil, fmt.Errorf("option tlsVersion: must be a string or {min, max}, got %s", c.TLSVersion)
		}
	}
	for i, a := range c.TLSAuth {
		if a.Password != "" {
			return nil, fmt.Errorf("option tlsAuth[%d]: encrypted keys (password) are not supported", i)
		}
		cert, err := tls.X509KeyPair([]byte(a.Cert), []byte(a.Key))
		if err != nil {
			return nil, fmt.Errorf("option tlsAuth[%d]: %w", i, err)
		}
		c.certs = append(c.certs, cert)
	}
	return c, nil
}

func (c *config) userAgent() string {
	if c.UserAgent != nil {
		return *c.UserAgent
	}
	return defaultUserAgent
}

func (c *config) maxRedirects() int {
	if c.MaxRedirects != nil {
		return *c.MaxRedirects
	}
	return defaultMaxRedirects
}

func (c *config) batch() (all, perHost int) {
	all, perHost = defaultBatch, defaultBatchPerHost
	if c.Batch != nil {
		all = *c.Batch
	}
	if c.BatchPerHost != nil {
		perHost = *c.BatchPerHost
	}
	return all, perHost
}
