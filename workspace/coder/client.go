// Package coder is a client for Coder's REST API (v2) and a
// workspace.Provider built on it. It does not use Coder's SDK: the wire
// format is re-implemented from the documented API.
package coder

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// SessionTokenHeader carries the session token on every request.
const SessionTokenHeader = "Coder-Session-Token"

// SessionTokenCookie carries the session token (used by browsers and
// websockets).
const SessionTokenCookie = "coder_session_token"

// BypassRatelimitHeader asks Coder to skip rate limiting (owners only).
const BypassRatelimitHeader = "X-Coder-Bypass-Ratelimit"

// ClientOptions configures a Client.
type ClientOptions struct {
	// BypassRateLimit sends X-Coder-Bypass-Ratelimit: true on every request.
	BypassRateLimit bool
	// HTTPClient overrides the per-client HTTP client (its transport is used
	// as is).
	HTTPClient *http.Client
	// MaxRateLimitRetries bounds retries of a request answered with 429
	// (default 8; negative disables retrying).
	MaxRateLimitRetries int
	// MaxRetryWait bounds a single wait before retrying (default 10s).
	MaxRetryWait time.Duration
	// MaxServerErrorRetries bounds retries of idempotent requests (GET and
	// DELETE) answered with a 5xx status or failing at the transport
	// (default 3; negative disables).
	MaxServerErrorRetries int
	// RequestTimeout bounds each HTTP request, answer included (default
	// DefaultRequestTimeout). A request that times out fails with a
	// *NoAnswerError; idempotent ones are retried like a transport error.
	RequestTimeout time.Duration
	// Jitter returns a random fraction in [0, 1) that spreads retry waits
	// (default math/rand/v2's Float64; tests may fix it).
	Jitter func() float64
	// UserAgent is sent as User-Agent (default "cdeload").
	UserAgent string
}

// DefaultRequestTimeout bounds one HTTP request to Coder when
// ClientOptions.RequestTimeout is not set.
const DefaultRequestTimeout = 30 * time.Second

// Client talks to one Coder deployment with one session token. It has its
// own HTTP transport and is safe for concurrent use.
type Client struct {
	base    *url.URL
	token   string
	http    *http.Client
	opts    ClientOptions
	stats   clientStats
	closeFn func()
}

type clientStats struct {
	requests    atomic.Int64
	rateLimited atomic.Int64
	retries     atomic.Int64
}

// Stats counts a client's requests.
type Stats struct {
	// Requests is the number of HTTP requests sent (retries included).
	Requests int64
	// RateLimited is the number of 429 answers received.
	RateLimited int64
	// Retries is the number of requests re-sent after a 429, a 5xx or a
	// transport error.
	Retries int64
}

// NewClient returns a client for the deployment at rawURL authenticating with
// token (which may be empty for unauthenticated calls such as login).
func NewClient(rawURL, token string, opts ClientOptions) (*Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("coder url %q: %w", rawURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("coder url %q: scheme must be http or https", rawURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("coder url %q: no host", rawURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	if opts.MaxRateLimitRetries == 0 {
		opts.MaxRateLimitRetries = 8
	}
	if opts.MaxServerErrorRetries == 0 {
		opts.MaxServerErrorRetries = 3
	}
	if opts.MaxRetryWait <= 0 {
		opts.MaxRetryWait = 10 * time.Second
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "cdeload"
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	if opts.Jitter == nil {
		opts.Jitter = rand.Float64
	}
	c := &Client{base: u, token: token, opts: opts}
	if opts.HTTPClient != nil {
		c.http = opts.HTTPClient
		c.closeFn = func() {}
	} else {
		// A transport per client spreads load across replicas behind a load
		// balancer instead of multiplexing every virtual user on one
		// connection.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 16
		c.http = &http.Client{Transport: tr}
		c.closeFn = tr.CloseIdleConnections
	}
	return c, nil
}

// WithToken returns a client for the same deployment that authenticates
// with token and has its own transport.
func (c *Client) WithToken(token string) *Client {
	n, _ := NewClient(c.base.String(), token, c.opts)
	return n
}

// URL returns the deployment URL.
func (c *Client) URL() *url.URL { u := *c.base; return &u }

// Stats returns the client's request counters.
func (c *Client) Stats() Stats {
	return Stats{Requests: c.stats.requests.Load(), RateLimited: c.stats.rateLimited.Load(), Retries: c.stats.retries.Load()}
}

// Close releases idle connections of the client's own transport.
func (c *Client) Close() { c.closeFn() }

// APIError is a non-success answer from Coder.
type APIError struct {
	Method string
	Path   string
	Status int
	Response
}

// Error implements error: method, path, status and Coder's message.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Detail != "" {
		b.WriteString(" (")
		b.WriteString(e.Detail)
		b.WriteString(")")
	}
	for _, v := range e.Validations {
		fmt.Fprintf(&b, "; %s: %s", v.Field, v.Detail)
	}
	return b.String()
}

// NoAnswerError is a request that got no answer within the client's
// RequestTimeout while its caller was still waiting.
type NoAnswerError struct {
	// URL is the deployment URL.
	URL string
	// Timeout is the request timeout that elapsed.
	Timeout time.Duration
}

// Error implements error.
func (e *NoAnswerError) Error() string {
	return fmt.Sprintf("no answer from %s in %v", e.URL, e.Timeout)
}

// Unwrap makes errors.Is(err, context.DeadlineExceeded) true.
func (e *NoAnswerError) Unwrap() error { return context.DeadlineExceeded }

// StatusCode returns the HTTP status of err if it is (or wraps) an APIError,
// else 0.
func StatusCode(err error) int {
	var e *APIError
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// IsNotFound reports whether err is a 404 or 410 answer (the resource does
// not exist or was deleted).
func IsNotFound(err error) bool {
	s := StatusCode(err)
	return s == http.StatusNotFound || s == http.StatusGone
}

// redactedError hides the session token in an error's text while keeping
// the chain for errors.Is/As.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redact returns err with every occurrence of the session token replaced.
func (c *Client) redact(err error) error {
	if err == nil || c.token == "" {
		return err
	}
	msg := err.Error()
	if !strings.Contains(msg, c.token) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(msg, c.token, "[REDACTED]"), err: err}
}

// Do sends a JSON request and decodes a JSON answer into out (if not nil).
// A status other than one of want is returned as *APIError. 429 answers are
// retried after Retry-After (or a bounded exponential backoff), with jitter;
// idempotent requests (GET, DELETE) are also retried after 5xx answers,
// transport errors and requests without an answer in RequestTimeout.
func (c *Client) Do(ctx context.Context, method, path string, body, out any, want ...int) error {
	return c.redact(c.do(ctx, method, path, body, out, want...))
}

func (c *Client) do(ctx context.Context, method, path string, body, out any, want ...int) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return fmt.Errorf("%s %s: encode body: %w", method, path, err)
		}
	}
	if len(want) == 0 {
		want = []int{http.StatusOK}
	}
	rateRetries, errRetries := 0, 0
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			c.stats.retries.Add(1)
		}
		status, header, respBody, err := c.roundTrip(ctx, method, path, payload)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%s %s: %w", method, path, ctx.Err())
			}
			if idempotent(method) && errRetries < c.opts.MaxServerErrorRetries {
				errRetries++
				if werr := sleepCtx(ctx, c.backoff(errRetries)); werr != nil {
					return fmt.Errorf("%s %s: %w (after %v)", method, path, werr, err)
				}
				continue
			}
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		for _, w := range want {
			if status == w {
				if out == nil || len(respBody) == 0 {
					return nil
				}
				if err := json.Unmarshal(respBody, out); err != nil {
					return fmt.Errorf("%s %s: decode %d answer: %w", method, path, status, err)
				}
				return nil
			}
		}
		apiErr := &APIError{Method: method, Path: path, Status: status}
		if json.Unmarshal(respBody, &apiErr.Response) != nil || apiErr.Message == "" {
			apiErr.Message = strings.TrimSpace(truncate(string(respBody), 200))
		}
		switch {
		case status == http.StatusTooManyRequests:
			c.stats.rateLimited.Add(1)
			if rateRetries >= c.opts.MaxRateLimitRetries {
				return fmt.Errorf("rate limited %d times, giving up: %w", rateRetries+1, apiErr)
			}
			rateRetries++
			if err := sleepCtx(ctx, c.rateLimitWait(rateRetries, header)); err != nil {
				return fmt.Errorf("%w (while waiting after: %v)", err, apiErr)
			}
			continue
		case status >= 500 && idempotent(method) && errRetries < c.opts.MaxServerErrorRetries:
			errRetries++
			if err := sleepCtx(ctx, c.backoff(errRetries)); err != nil {
				return fmt.Errorf("%w (while waiting after: %v)", err, apiErr)
			}
			continue
		}
		return apiErr
	}
}

func (c *Client) roundTrip(ctx context.Context, method, path string, payload []byte) (int, http.Header, []byte, error) {
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	rctx, cancel := context.WithTimeoutCause(ctx, c.opts.RequestTimeout, errNoAnswer)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, method, c.base.String()+path, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.opts.UserAgent)
	if c.token != "" {
		req.Header.Set(SessionTokenHeader, c.token)
	}
	if c.opts.BypassRateLimit {
		req.Header.Set(BypassRatelimitHeader, "true")
	}
	c.stats.requests.Add(1)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, nil, c.noAnswer(ctx, rctx, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("read answer: %w", c.noAnswer(ctx, rctx, err))
	}
	return resp.StatusCode, resp.Header, body, nil
}

// errNoAnswer is the cause of a request context whose RequestTimeout ran out.
var errNoAnswer = errors.New("request timeout")

// noAnswer turns err into a *NoAnswerError when the request's own timeout
// ended it while the caller (ctx) was still waiting.
func (c *Client) noAnswer(ctx, rctx context.Context, err error) error {
	if ctx.Err() == nil && errors.Is(context.Cause(rctx), errNoAnswer) {
		return &NoAnswerError{URL: c.base.String(), Timeout: c.opts.RequestTimeout}
	}
	return err
}

// idempotent reports whether a request may be re-sent after a 5xx or a
// transport error without risking a second effect.
func idempotent(method string) bool {
	return method == http.MethodGet || method == http.MethodDelete
}

// backoff returns a wait before retry n: 100ms·2^(n-1) capped by
// MaxRetryWait, scaled by a random factor in [0.5, 1) so that clients
// failing together do not retry together.
func (c *Client) backoff(n int) time.Duration {
	d := 100 * time.Millisecond
	for i := 1; i < n && d < c.opts.MaxRetryWait; i++ {
		d *= 2
	}
	d = min(d, c.opts.MaxRetryWait)
	return d/2 + time.Duration(c.opts.Jitter()*float64(d/2))
}

// rateLimitWait is the wait before retry n of a request answered 429: at
// least the server's Retry-After (never cut short: retrying earlier only
// earns another 429), else the backoff; plus a random extra of up to half a
// second so that clients limited in the same second spread out.
func (c *Client) rateLimitWait(n int, h http.Header) time.Duration {
	wait := retryAfter(h, time.Now())
	if wait <= 0 {
		return c.backoff(n)
	}
	return wait + time.Duration(c.opts.Jitter()*float64(500*time.Millisecond))
}

// retryAfter parses a Retry-After header (seconds or HTTP date); 0 if absent.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 {
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		return t.Sub(now)
	}
	return 0
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
