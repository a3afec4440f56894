package js

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cdeload/cdeload/internal/syncbuf"
)

func TestCommonJSModulesAndRequire(t *testing.T) {
	t.Parallel()
	e := runAsserting(t, map[string]string{
		"main.js": `
			import { eq } from './assert.js';
			import lib, { twice } from './lib.cjs.js';
			const viaRequire = require('./lib.cjs.js');
			const enc = require('k6/encoding');
			const esm = require('./esm.js');
			export default function () {
				eq(twice(21), 42, 'named import from CommonJS');
				eq(lib.twice(2), 4, 'default import is module.exports');
				eq(viaRequire.twice(3), 6, 'require of CommonJS');
				eq(viaRequire.counter(), 1, 'one instance per VU: state shared by import and require');
				eq(enc.b64encode('a'), 'YQ==', 'require of a k6 module');
				eq(esm.three, 3, 'require of an ES module gives its namespace');
				let threw = '';
				try { require('./lib.cjs.js'); } catch (e) { threw = String(e); }
				eq(threw.includes('only available in the init stage'), true, 'require outside init throws');
			}`,
		"lib.cjs.js": `
			const helper = require('./helper.js');
			let n = 0;
			exports.twice = function (x) { return helper.mul(x, 2); };
			module.exports.counter = function () { return ++n; };`,
		"helper.js": `module.exports = { mul: (a, b) => a * b };`,
		"esm.js":    `export const three = 3;`,
	})
	_ = e
}

func TestCommonJSEntryScript(t *testing.T) {
	t.Parallel()
	e := runAsserting(t, map[string]string{"main.js": `
		const { eq } = require('./assert.js');
		module.exports.options = { vus: 2 };
		module.exports.default = function () { eq(1 + 1, 2, 'runs'); console.log('cjs iteration'); };`})
	if !strings.Contains(e.console.String(), "cjs iteration") {
		t.Fatalf("the CommonJS default function did not run:\n%s", e.console)
	}
	if got := string(e.script.Options()); got != `{"vus":2}` {
		t.Fatalf("options = %s", got)
	}
}

func TestRemoteModulesAreFetchedOnceOverHTTPS(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/lib/index.js": // ES module importing a sibling by a relative path
			w.Write([]byte(`import { suffix } from './suffix.js'; export function hello(n) { return 'hello ' + n + suffix; }`))
		case "/lib/suffix.js":
			w.Write([]byte(`export const suffix = '!';`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	p := writeScript(t, map[string]string{"main.js": `
		import { hello } from '` + srv.URL + `/lib/index.js';
		export default function () { console.log(hello('vu')); }`}, "main.js")
	e := load(t, p, func(c *Config) { c.RemoteClient = srv.Client() })
	for id := uint64(1); id <= 3; id++ {
		ctx, cancel := context.WithCancel(context.Background())
		if err := e.activate(t, ctx, id, "").RunOnce(); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	if n := strings.Count(e.console.String(), "hello vu!"); n != 3 {
		t.Fatalf("want 3 greetings:\n%s", e.console)
	}
	if n := hits.Load(); n != 2 {
		t.Fatalf("the server got %d requests, want 2 (each module once per run)", n)
	}
	files := e.script.Files()
	if _, ok := files[srv.URL+"/lib/suffix.js"]; !ok {
		t.Fatalf("the remote modules are not among the script's files: %v", keys(files))
	}
}

func TestRemoteModulesRefusedNameTheURL(t *testing.T) {
	t.Parallel()
	p := writeScript(t, map[string]string{"main.js": `import 'https://127.0.0.1:1/x.js'; export default function () {}`}, "main.js")
	_, err := Parse(context.Background(), Config{Filename: p, Console: &syncbuf.Buffer{}, NoRemoteModules: true})
	if err == nil || !strings.Contains(err.Error(), "remote module https://127.0.0.1:1/x.js: remote modules are not allowed") {
		t.Fatalf("err = %v", err)
	}
}
