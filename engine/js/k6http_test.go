package js

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
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
