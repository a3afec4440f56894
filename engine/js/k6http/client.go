package k6http

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// vuClient is one VU's HTTP transport; it counts the bytes its
// connections send and receive.
type vuClient struct {
	cfg       *config
	transport *http.Transport
	sent      atomic.Int64
	received  atomic.Int64
}

func newVUClient(cfg *config) *vuClient {
	c := &vuClient{cfg: cfg}
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	tlsCfg := &tls.Config{
		InsecureSkipVerify: cfg.InsecureSkipTLSVerify, //nolint:gosec // the user's insecureSkipTLSVerify option
		MinVersion:         cfg.tlsMin,
		MaxVersion:         cfg.tlsMax,
		Certificates:       cfg.certs,
	}
	c.transport = &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			addr = cfg.mapHost(addr)
			conn, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &countingConn{Conn: conn, c: c}, nil
		},
		TLSClientConfig:     tlsCfg,
		ForceAttemptHTTP2:   true,
		DisableKeepAlives:   cfg.NoConnectionReuse,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true, // decompressed below, whoever asked for it
	}
	return c
}

// mapHost applies the hosts option to a dial address.
func (c *config) mapHost(addr string) string {
	if len(c.Hosts) == 0 {
		return addr
	}
	if to, ok := c.Hosts[addr]; ok {
		return to
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if to, ok := c.Hosts[host]; ok {
		if _, _, err := net.SplitHostPort(to); err == nil {
			return to
		}
		return net.JoinHostPort(to, port)
	}
	return addr
}

// countingConn counts the bytes of a connection into its VU's totals.
type countingConn struct {
	net.Conn
	c *vuClient
}

func (cc *countingConn) Read(p []byte) (int, error) {
	n, err := cc.Conn.Read(p)
	cc.c.received.Add(int64(n))
	return n, err
}

func (cc *countingConn) Write(p []byte) (int, error) {
	n, err := cc.Conn.Write(p)
	cc.c.sent.Add(int64(n))
	return n, err
}

// request is a parsed k6/http request, ready to run off the VU goroutine.
type request struct {
	method       string
	url          *url.URL
	name         string // the name tag; empty means the URL
	body         []byte
	header       http.Header
	tags         map[string]string
	timeout      time.Duration
	redirects    int
	responseType string // text, binary or none
	jar          *cookieJar
	cookies      []reqCookie
	compression  []string
	expected     *expectedStatuses // nil: no response callback
	digest       bool
}

type reqCookie struct {
	name, value string
	replace     bool
}

// timings are k6's request phases.
type timings struct {
	blocked, connecting, tlsHandshaking, sending, waiting, receiving, duration time.Duration
}

// hop is one request and its response in a redirect chain.
type hop struct {
	start         time.Time
	method, url   string
	reqHeader     http.Header
	reqBody       []byte
	reqCookies    []reqCookie
	status        int
	statusText    string
	proto         string
	tlsVersion    string
	header        http.Header
	setCookies    []*http.Cookie
	body          []byte
	timings       timings
	remoteIP      string
	remotePort    int
	err           error
	errCode       int
	errMsg        string
	redirectLimit bool // stopped at the redirect limit
}

// tracer records the phase times of one round trip.
type tracer struct {
	mu                                sync.Mutex
	getConn, connStart, connDone      time.Time
	tlsStart, tlsDone, gotConn, wrote time.Time
	firstByte                         time.Time
	remote                            net.Addr
	reused                            bool
}

func (t *tracer) trace() *httptrace.ClientTrace {
	now := func(dst *time.Time) { t.mu.Lock(); *dst = time.Now(); t.mu.Unlock() }
	return &httptrace.ClientTrace{
		GetConn: func(string) { now(&t.getConn) },
		ConnectStart: func(string, string) {
			t.mu.Lock()
			if t.connStart.IsZero() {
				t.connStart = time.Now()
			}
			t.mu.Unlock()
		},
		ConnectDone:       func(string, string, error) { now(&t.connDone) },
		TLSHandshakeStart: func() { now(&t.tlsStart) },
		TLSHandshakeDone:  func(tls.ConnectionState, error) { now(&t.tlsDone) },
		GotConn: func(info httptrace.GotConnInfo) {
			t.mu.Lock()
			t.gotConn = time.Now()
			t.reused = info.Reused
			if info.Conn != nil {
				t.remote = info.Conn.RemoteAddr()
			}
			t.mu.Unlock()
		},
		WroteRequest:         func(httptrace.WroteRequestInfo) { now(&t.wrote) },
		GotFirstResponseByte: func() { now(&t.firstByte) },
	}
}

func span(a, b time.Time) time.Duration {
	if a.IsZero() || b.IsZero() || b.Before(a) {
		return 0
	}
	return b.Sub(a)
}

// timings computes k6's phases; end is when the body was read.
func (t *tracer) timings(start, end time.Time) timings {
	t.mu.Lock()
	defer t.mu.Unlock()
	var tm timings
	getConn := t.getConn
	if getConn.IsZero() {
		getConn = start
	}
	if !t.reused && !t.connStart.IsZero() {
		tm.blocked = span(getConn, t.connStart)
		tm.connecting = span(t.connStart, t.connDone)
	} else {
		tm.blocked = span(getConn, t.gotConn)
	}
	if !t.reused {
		tm.tlsHandshaking = span(t.tlsStart, t.tlsDone)
	}
	from := t.gotConn
	if from.IsZero() {
		from = getConn
	}
	wrote := t.wrote
	if wrote.IsZero() || (!t.firstByte.IsZero() && wrote.After(t.firstByte)) {
		wrote = t.firstByte
	}
	tm.sending = span(from, wrote)
	tm.waiting = span(wrote, t.firstByte)
	if !t.firstByte.IsZero() {
		tm.receiving = span(t.firstByte, end)
	}
	tm.duration = tm.sending + tm.waiting + tm.receiving
	return tm
}

var tlsNames = map[uint16]string{
	tls.VersionTLS10: "tls1.0", tls.VersionTLS11: "tls1.1", tls.VersionTLS12: "tls1.2", tls.VersionTLS13: "tls1.3",
}

// do runs r, following redirects as k6 does; every hop is returned.
func (c *vuClient) do(ctx context.Context, r *request) []*hop {
	timeout := r.timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	method, u, body := r.method, r.url, r.body
	header := r.header
	var hops []*hop
	for i := 0; ; i++ {
		h := c.roundTrip(tctx, ctx, r, method, u, body, header)
		hops = append(hops, h)
		if h.err != nil || !isRedirect(h.status) {
			return hops
		}
		loc := h.header.Get("Location")
		if loc == "" {
			return hops
		}
		if i >= r.redirects {
			h.redirectLimit = r.redirects > 0
			return hops
		}
		next, err := u.Parse(loc)
		if err != nil {
			h.err, h.errCode, h.errMsg = err, codeInvalidURL, "invalid redirect URL "+loc
			return hops
		}
		if h.status == http.StatusSeeOther || ((h.status == http.StatusMovedPermanently || h.status == http.StatusFound) && method == http.MethodPost) {
			method, body = http.MethodGet, nil
			header = header.Clone()
			header.Del("Content-Type")
			header.Del("Content-Length")
			header.Del("Content-Encoding")
		}
		if next.Host != u.Host {
			header = header.Clone()
			header.Del("Authorization")
		}
		u = next
	}
}

func isRedirect(status int) bool {
	switch status {
	case 301, 302, 303, 307, 308:
		return true
	}
	return false
}

// roundTrip sends one request and reads its response.
func (c *vuClient) roundTrip(tctx, vuCtx context.Context, r *request, method string, u *url.URL, body []byte, header http.Header) *hop {
	h := &hop{start: time.Now(), method: method, url: u.String(), reqBody: body}
	var tr tracer
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(tctx, tr.trace()), method, u.String(), bytes.NewReader(body))
	if err != nil {
		h.err, h.errCode, h.errMsg = err, codeInvalidURL, err.Error()
		return h
	}
	if body == nil {
		req.Body = nil
		req.ContentLength = 0
	}
	req.Header = header.Clone()
	if req.Header.Get("User-Agent") == "" {
		if ua := c.cfg.userAgent(); ua != "" {
			req.Header.Set("User-Agent", ua)
		}
	}
	if req.Header.Get("Accept-Encoding") == "" {
		req.Header.Set("Accept-Encoding", "gzip, deflate")
	}
	if u.User != nil && !r.digest {
		pw, _ := u.User.Password()
		req.SetBasicAuth(u.User.Username(), pw)
	}
	h.reqCookies = c.addCookies(req, r)
	if host := req.Header.Get("Host"); host != "" {
		req.Host = host
	}
	resp, err := c.transport.RoundTrip(req)
	if err == nil && r.digest && resp.StatusCode == http.StatusUnauthorized && u.User != nil {
		if auth := digestAuth(resp.Header.Get("WWW-Authenticate"), u, method); auth != "" {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			req2 := req.Clone(req.Context())
			req2.Body = io.NopCloser(bytes.NewReader(body))
			if body == nil {
				req2.Body = nil
			}
			req2.Header.Set("Authorization", auth)
			resp, err = c.transport.RoundTrip(req2)
			req = req2
		}
	}
	h.reqHeader = req.Header
	if err == nil {
		err = c.readResponse(h, resp, r)
	}
	end := time.Now()
	h.timings = tr.timings(h.start, end)
	tr.mu.Lock()
	if tcp, ok := tr.remote.(*net.TCPAddr); ok {
		h.remoteIP, h.remotePort = tcp.IP.String(), tcp.Port
	}
	tr.mu.Unlock()
	if err != nil {
		if tctx.Err() != nil && vuCtx.Err() == nil {
			err = errTimeout
		}
		h.err = err
		h.errCode, h.errMsg = classify(err)
		return h
	}
	if h.status >= 400 && h.status < 600 {
		h.errCode = 1000 + h.status
	}
	return h
}

func (c *vuClient) addCookies(req *http.Request, r *request) []reqCookie {
	var fromJar []*http.Cookie
	if r.jar != nil {
		fromJar = r.jar.jar.Cookies(req.URL)
	}
	if len(fromJar) == 0 && len(r.cookies) == 0 {
		return nil
	}
	replaced := map[string]bool{}
	for _, rc := range r.cookies {
		if rc.replace {
			replaced[rc.name] = true
		}
	}
	var parts []string
	for _, ck := range fromJar {
		if !replaced[ck.Name] {
			parts = append(parts, ck.Name+"="+ck.Value)
		}
	}
	sent := make([]reqCookie, 0, len(r.cookies)+len(fromJar))
	for _, ck := range fromJar {
		if !replaced[ck.Name] {
			sent = append(sent, reqCookie{name: ck.Name, value: ck.Value})
		}
	}
	for _, rc := range r.cookies {
		parts = append(parts, rc.name+"="+rc.value)
		sent = append(sent, rc)
	}
	if prev := req.Header.Get("Cookie"); prev != "" {
		parts = append([]string{prev}, parts...)
	}
	req.Header.Set("Cookie", strings.Join(parts, "; "))
	return sent
}

// readResponse fills h from resp and reads (or discards) its body.
func (c *vuClient) readResponse(h *hop, resp *http.Response, r *request) error {
	defer resp.Body.Close()
	h.status = resp.StatusCode
	h.statusText = resp.Status
	h.proto = resp.Proto
	h.header = resp.Header
	if resp.TLS != nil {
		h.tlsVersion = tlsNames[resp.TLS.Version]
	}
	h.setCookies = resp.Cookies()
	if r.jar != nil && len(h.setCookies) > 0 {
		r.jar.jar.SetCookies(resp.Request.URL, h.setCookies)
	}
	var body io.Reader = resp.Body
	if r.responseType != "none" {
		dec, err := decoder(resp)
		if err != nil {
			return err
		}
		if dec != nil {
			body = dec
			resp.Header.Del("Content-Encoding")
			resp.Header.Del("Content-Length")
		}
	}
	if r.responseType == "none" {
		_, err := io.Copy(io.Discard, body)
		return err
	}
	var buf bytes.Buffer
	if resp.ContentLength > 0 && resp.ContentLength < 1<<30 {
		buf.Grow(int(resp.ContentLength))
	}
	_, err := buf.ReadFrom(body)
	h.body = buf.Bytes()
	return err
}

func decoder(resp *http.Response) (io.Reader, error) {
	switch strings.ToLower(strings.TrimSpace(resp.Header.Get("Content-Encoding"))) {
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			return nil, fmt.Errorf("decompressing the gzip body: %w", err)
		}
		return zr, nil
	case "deflate":
		zr, err := zlib.NewReader(resp.Body)
		if err != nil {
			return flate.NewReader(resp.Body), nil //nolint:nilerr // raw deflate, as some servers send
		}
		return zr, nil
	}
	return nil, nil
}

// compress encodes body with the algorithms named, in order.
func compress(body []byte, algos []string) ([]byte, error) {
	for _, a := range algos {
		var buf bytes.Buffer
		var w io.WriteCloser
		switch a {
		case "gzip":
			w = gzip.NewWriter(&buf)
		case "deflate":
			w = zlib.NewWriter(&buf)
		default:
			return nil, fmt.Errorf("compression %q is not supported; use gzip or deflate", a)
		}
		if _, err := w.Write(body); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		body = buf.Bytes()
	}
	return body, nil
}

// cookieJar is a k6 cookie jar.
type cookieJar struct{ jar *cookiejar.Jar }

func newCookieJar() *cookieJar {
	j, _ := cookiejar.New(nil) // never fails without options
	return &cookieJar{jar: j}
}

// itoa is strconv.Itoa, named for the tag code.
func itoa(i int) string { return strconv.Itoa(i) }
