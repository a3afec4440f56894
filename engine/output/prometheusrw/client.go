package prometheusrw

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"
)

// client sends snappy-compressed remote-write requests.
type client struct {
	url     string
	safeURL string // without credentials, for messages
	hc      *http.Client
	headers map[string]string
	user    string
	pass    string
	bearer  string
}

func newClient(c Config) (*client, error) {
	tlsCfg := &tls.Config{
		MinVersion:         c.TLSMinVersion,
		InsecureSkipVerify: c.InsecureSkipTLSVerify, //nolint:gosec // the user asked for it
	}
	if c.ClientCertificate != "" {
		cert, err := tls.LoadX509KeyPair(c.ClientCertificate, c.ClientCertificateKey)
		if err != nil {
			return nil, fmt.Errorf("prometheus-rw: loading client certificate %q and key %q: %w",
				c.ClientCertificate, c.ClientCertificateKey, err)
		}
		tlsCfg.Certificates = []tls.Certificate{cert}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	return &client{
		url:     c.URL,
		safeURL: redactURL(c.URL),
		hc:      &http.Client{Transport: tr, Timeout: DefaultHTTPTimeout},
		headers: c.Headers,
		user:    c.Username,
		pass:    c.Password,
		bearer:  c.BearerToken,
	}, nil
}

// pushError is a push that the remote end refused or that failed.
type pushError struct {
	status int    // 0 when no response came back
	body   string // excerpt of the response body
	err    error
}

func (e *pushError) Error() string {
	if e.status != 0 {
		return fmt.Sprintf("%v: %q", e.err, e.body)
	}
	return e.err.Error()
}

func (e *pushError) Unwrap() error { return e.err }

// push sends one snappy-compressed WriteRequest.
func (c *client) push(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return &pushError{err: fmt.Errorf("building the request to %s: %w", c.safeURL, err)}
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "cdeload")
	}
	switch {
	case c.bearer != "":
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	case c.user != "":
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		// net/http strips the URL password from its errors.
		return &pushError{err: fmt.Errorf("sending to %s: %w", c.safeURL, err)}
	}
	defer resp.Body.Close()
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return &pushError{status: resp.StatusCode, body: cleanExcerpt(excerpt),
			err: fmt.Errorf("remote write to %s answered %s", c.safeURL, resp.Status)}
	}
	return nil
}

// cleanExcerpt makes a response body excerpt printable on one line.
func cleanExcerpt(b []byte) string {
	s := strings.ToValidUTF8(string(b), "?")
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == utf8.RuneError {
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}
