package js

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5" //nolint:gosec // digest auth is MD5
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestHTTPOptions checks the k6/http options read from the script's
// options: hosts, userAgent, discardResponseBodies, noConnectionReuse and
// throw.
func TestHTTPOptions(t *testing.T) {
	t.Parallel()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Host+" "+r.UserAgent())
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	runAsserting(t, map[string]string{"main.js": `
		import http from 'k6/http';
		import { eq } from './assert.js';
		export const options = {
			hosts: { 'app.test': '` + addr + `' },
			userAgent: 'my-agent/1.0',
			discardResponseBodies: true,
			noConnectionReuse: true,
			throw: true,
		};
		export default function () {
			const r = http.get('http://app.test/');
			eq(r.status, 200, 'hosts maps the name');
			eq(r.body, null, 'discardResponseBodies');
			const t = http.get('http://app.test/', { responseType: 'text' });
			eq(t.body, 'app.test my-agent/1.0', 'Host header and userAgent');
			let threw = '';
			try { http.get('http://127.0.0.1:1/'); } catch (e) { threw = String(e); }
			eq(threw.includes('connection refused'), true, 'throw makes a failed request throw');
		}`})
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections for 2 requests, want 2 with noConnectionReuse", n)
	}
}

// TestHTTPCookieJarResetsEveryIteration checks that requests throw in the init
// context and that the VU's cookie jar starts empty every iteration.
func TestHTTPCookieJarResetsEveryIteration(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/set" {
			http.SetCookie(w, &http.Cookie{Name: "c", Value: "1", Path: "/"})
			return
		}
		io.WriteString(w, r.Header.Get("Cookie"))
	}))
	defer srv.Close()
	p := writeScript(t, map[string]string{"main.js": `
		import http from 'k6/http';
		let initErr = '';
		try { http.get('` + srv.URL + `/'); } catch (e) { initErr = String(e); }
		export default function () {
			if (!initErr.includes('init context')) { throw new Error('no init error: ' + initErr); }
			console.log('before=[' + http.get('` + srv.URL + `/').body + ']');
			http.get('` + srv.URL + `/set');
			console.log('after=[' + http.get('` + srv.URL + `/').body + ']');
		}`}, "main.js")
	e := load(t, p)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := e.activate(t, ctx, 1, "")
	for i := 0; i < 2; i++ {
		if err := a.RunOnce(); err != nil {
			t.Fatal(err)
		}
	}
	c := e.console.String()
	if strings.Contains(c, "level=error") || strings.Count(c, "before=[]") != 2 || strings.Count(c, "after=[c=1]") != 2 {
		t.Fatalf("want an empty jar at the start of both iterations:\n%s", c)
	}
}

// TestHTTPTLSOptions checks tlsVersion and tlsAuth against a loopback TLS
// server that requires a client certificate.
func TestHTTPTLSOptions(t *testing.T) {
	t.Parallel()
	clientCert, clientKey := selfSigned(t)
	pool := x509.NewCertPool()
	block, _ := pem.Decode(clientCert)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pool.AddCert(cert)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	js := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	runAsserting(t, map[string]string{"main.js": `
		import http from 'k6/http';
		import { eq } from './assert.js';
		export const options = {
			insecureSkipTLSVerify: true,
			tlsVersion: http.TLS_1_2,
			tlsAuth: [{ domains: ['127.0.0.1'], cert: ` + js(string(clientCert)) + `, key: ` + js(string(clientKey)) + ` }],
		};
		export default function () {
			const r = http.get('` + srv.URL + `/');
			eq(r.error, '', 'no error');
			eq(r.body, 'k6-client', 'the server saw the tlsAuth certificate');
			eq(r.tls_version, 'tls1.2', 'tlsVersion pins the version');
		}`})
	// A certificate for other domains is not sent: the server refuses.
	runAsserting(t, map[string]string{"main.js": `
		import http from 'k6/http';
		import { eq } from './assert.js';
		export const options = {
			insecureSkipTLSVerify: true,
			tlsAuth: [{ domains: ['other.test'], cert: ` + js(string(clientCert)) + `, key: ` + js(string(clientKey)) + ` }],
		};
		export default function () {
			const r = http.get('` + srv.URL + `/');
			eq(r.status, 0, 'no response without a client certificate');
			eq(r.error_code >= 1300 && r.error_code < 1400 || r.error_code === 1000 || r.error_code === 1210, true, 'a TLS-level failure: ' + r.error_code + ' ' + r.error);
		}`})
}

// selfSigned returns a PEM certificate and key with CN k6-client.
func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "k6-client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// TestHTTPBatchAndAsyncConcurrently runs batches and async requests from
// several VUs at once, for the race detector, and checks their results.
func TestHTTPBatchAndAsyncConcurrently(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "p", Value: r.URL.Path[1:]})
		io.WriteString(w, r.URL.Path)
	}))
	defer srv.Close()
	p := writeScript(t, map[string]string{"main.js": `
		import http from 'k6/http';
		export const options = { batchPerHost: 2 };
		export default async function () {
			const reqs = [];
			for (let i = 0; i < 8; i++) { reqs.push(['GET', '` + srv.URL + `/' + i]); }
			const res = http.batch(reqs);
			const bodies = res.map((r) => r.body).join(',');
			if (bodies !== '/0,/1,/2,/3,/4,/5,/6,/7') { throw new Error('batch bodies ' + bodies); }
			const all = await Promise.all([1, 2, 3].map((i) => http.asyncRequest('GET', '` + srv.URL + `/a' + i)));
			const ab = all.map((r) => r.body).join(',');
			if (ab !== '/a1,/a2,/a3') { throw new Error('async bodies ' + ab); }
			console.log('done');
		}`}, "main.js")
	e := load(t, p)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for id := uint64(1); id <= 3; id++ {
		a := e.activate(t, ctx, id, "")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 3; i++ {
				if err := a.RunOnce(); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	c := e.console.String()
	if strings.Contains(c, "level=error") || strings.Count(c, "done") != 9 {
		t.Fatalf("want 9 clean iterations:\n%s", c)
	}
	if n := len(e.sink.waitFor(t, "http_reqs", 99)); n != 99 {
		t.Fatalf("%d http_reqs samples, want 99", n)
	}
}

// TestHTTPDigestAuth runs auth: 'digest' against a server that checks the
// RFC 7616 (MD5, qop=auth) answer.
func TestHTTPDigestAuth(t *testing.T) {
	t.Parallel()
	h := func(s string) string { sum := md5.Sum([]byte(s)); return hex.EncodeToString(sum[:]) } //nolint:gosec // digest auth is MD5
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		p := map[string]string{}
		for _, part := range strings.Split(strings.TrimPrefix(auth, "Digest "), ", ") {
			k, v, _ := strings.Cut(part, "=")
			p[k] = strings.Trim(v, `"`)
		}
		want := h(h("bob:lab:pw") + ":n0nce:" + p["nc"] + ":" + p["cnonce"] + ":auth:" + h(r.Method+":"+r.URL.RequestURI()))
		if p["response"] != want {
			w.Header().Set("WWW-Authenticate", `Digest realm="lab", qop="auth", nonce="n0nce"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "welcome")
	}))
	defer srv.Close()
	u := strings.Replace(srv.URL, "http://", "http://bob:pw@", 1)
	runAsserting(t, map[string]string{"main.js": `
		import http from 'k6/http';
		import { eq } from './assert.js';
		export default function () {
			const ok = http.get('` + u + `/p?q=1', { auth: 'digest' });
			eq([ok.status, ok.body], [200, 'welcome'], 'digest accepted');
			const basic = http.get('` + u + `/p');
			eq(basic.status, 401, 'without auth: digest the server refuses basic credentials');
		}`})
}
