package js

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cdeload/cdeload/engine/lib"
	"github.com/cdeload/cdeload/internal/syncbuf"
)

func parseErr(t *testing.T, files map[string]string) error {
	t.Helper()
	p := writeScript(t, files, "main.js")
	_, err := Parse(context.Background(), Config{Filename: p, Console: &syncbuf.Buffer{}})
	if err == nil {
		t.Fatal("Parse succeeded, want an error")
	}
	return err
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		code  lib.ExitCode
		want  []string
	}{
		{"unknown modules", map[string]string{"main.js": `
			import ws from 'k6/ws';
			import x from 'k6/x/nope';
			import './other.js';
			export default function () {}`, "other.js": `import y from 'k6/x/alsonope';`},
			lib.ExitScriptException, []string{"unknown modules [k6/ws, k6/x/alsonope, k6/x/nope]", "available modules: k6, k6/crypto, k6/data, k6/encoding, k6/execution, k6/http, k6/metrics, k6/timers", "k6/x/jstest"}},
		{"syntax error", map[string]string{"main.js": "export default function ( {"}, lib.ExitScriptException, []string{"main.js"}},
		{"missing file", map[string]string{"main.js": "import './gone.js'; export default function () {}"}, lib.ExitScriptException, []string{"gone.js"}},
		{"bare specifier", map[string]string{"main.js": "import 'lodash'; export default function () {}"}, lib.ExitScriptException, []string{`"lodash"`, "./"}},
		{"unreachable remote module", map[string]string{"main.js": "import 'https://127.0.0.1:1/x.js'; export default function () {}"}, lib.ExitScriptException, []string{"fetching remote module https://127.0.0.1:1/x.js"}},
		{"missing export", map[string]string{"main.js": "import { nope } from 'k6'; export default function () {}"}, lib.ExitScriptException, []string{"nope"}},
		{"init exception", map[string]string{"main.js": "throw new Error('init boom'); export default function () {}"}, lib.ExitScriptException, []string{"init boom", "main.js:1"}},
		{"tla rejection", map[string]string{"main.js": "await Promise.reject(new Error('tla boom')); export default function () {}"}, lib.ExitScriptException, []string{"tla boom"}},
		{"no functions", map[string]string{"main.js": "export const options = {};"}, lib.ExitScriptException, []string{"no exported functions"}},
		{"setup not a function", map[string]string{"main.js": "export const setup = 1; export default function () {}"}, lib.ExitScriptException, []string{"setup must be a function"}},
		{"bad options", map[string]string{"main.js": "export const options = { vus: 1n }; export default function () {}"}, lib.ExitInvalidConfig, []string{"options"}},
		{"abort in init", map[string]string{"main.js": "import exec from 'k6/execution'; exec.test.abort('stop'); export default function () {}"}, lib.ExitScriptAborted, []string{"stop"}},
		{"check in init", map[string]string{"main.js": "import { check } from 'k6'; check(1, {a: true}); export default function () {}"}, lib.ExitScriptException, []string{"init context"}},
		{"group in init", map[string]string{"main.js": "import { group } from 'k6'; group('a', () => {}); export default function () {}"}, lib.ExitScriptException, []string{"init context"}},
		{"metric add in init", map[string]string{"main.js": "import { Counter } from 'k6/metrics'; new Counter('cc').add(1); export default function () {}"}, lib.ExitScriptException, []string{"init context"}},
		{"bad metric name", map[string]string{"main.js": "import { Counter } from 'k6/metrics'; new Counter('bad name'); export default function () {}"}, lib.ExitScriptException, []string{"bad name"}},
		{"open missing", map[string]string{"main.js": "open('./nope.txt'); export default function () {}"}, lib.ExitScriptException, []string{"nope.txt"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := parseErr(t, c.files)
			if code := lib.ExitCodeOf(err); code != c.code {
				t.Errorf("exit code %d, want %d: %v", code, c.code, err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
		})
	}
}

func TestVUContextRestrictions(t *testing.T) {
	p := writeScript(t, map[string]string{
		"main.js": `
			import { Counter } from 'k6/metrics';
			import { check } from 'k6';
			const path = __VU === 0 ? './a.txt' : './b.txt';
			const txt = open(path);
			export function openLater() { open('./a.txt'); }
			export function metricLater() { new Counter('late'); }
			export default function () {}`,
		"a.txt": "a", "b.txt": "b",
	}, "main.js")
	e := load(t, p)
	// VU 1 opens b.txt, which VU 0 did not.
	_, err := e.runner.NewVU(context.Background(), 1, 1, e.sink.ch)
	if err == nil || !strings.Contains(err.Error(), "previously opened during initialization (__VU==0)") {
		t.Fatalf("NewVU = %v", err)
	}
	if lib.ExitCodeOf(err) != lib.ExitScriptException {
		t.Fatalf("exit code %d", lib.ExitCodeOf(err))
	}
	// Under a different __VU the same check passes: VU 0's files are served.
	if _, err := e.script.Files()[filepath.Join(filepath.Dir(p), "a.txt")]; !err {
		t.Fatal("a.txt not in Files()")
	}
}

func TestInitOnlyFunctionsInVU(t *testing.T) {
	p := writeScript(t, map[string]string{
		"main.js": `
			import { Counter } from 'k6/metrics';
			export function openLater() { open('./a.txt'); }
			export function metricLater() { new Counter('late'); }
			export default function () {}`,
		"a.txt": "a",
	}, "main.js")
	for exec, want := range map[string]string{
		"openLater":   "function is only available in the init stage",
		"metricLater": "metrics must be declared in the init context",
	} {
		e := load(t, p)
		if err := e.activate(t, context.Background(), 1, exec).RunOnce(); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(e.console.String(), want) {
			t.Errorf("%s: console lacks %q: %s", exec, want, e.console)
		}
	}
}

func TestSetupTeardownErrors(t *testing.T) {
	p := writeScript(t, map[string]string{"main.js": `
		import { sleep } from 'k6';
		export function setup() { if (__ENV.MODE === 'throw') throw new Error('setup boom'); if (__ENV.MODE === 'slow') sleep(10); if (__ENV.MODE === 'spin') for(;;){} return __ENV.MODE === 'none' ? undefined : 5; }
		export function teardown(d) { if (__ENV.MODE === 'slow') sleep(10); if (d !== 5) throw new Error('teardown got ' + d); }
		export default function () {}`}, "main.js")
	mk := func(mode string) *env {
		return load(t, p, func(c *Config) { c.Env = map[string]string{"MODE": mode} })
	}
	e := mk("throw")
	_, err := e.runner.Setup(context.Background(), e.sink.ch)
	if lib.ExitCodeOf(err) != lib.ExitScriptException || !strings.Contains(err.Error(), "setup boom") {
		t.Fatalf("Setup = %v", err)
	}
	for _, mode := range []string{"slow", "spin"} {
		e = mk(mode)
		e.runner.rc.SetupTimeout = 50 * time.Millisecond
		e.runner.rc.TeardownTimeout = 50 * time.Millisecond
		start := time.Now()
		_, err = e.runner.Setup(context.Background(), e.sink.ch)
		if lib.ExitCodeOf(err) != lib.ExitSetupTimeout || time.Since(start) > 5*time.Second {
			t.Fatalf("%s: Setup = %v after %s", mode, err, time.Since(start))
		}
		if mode == "slow" {
			err = e.runner.Teardown(context.Background(), e.sink.ch, []byte("5"))
			if lib.ExitCodeOf(err) != lib.ExitTeardownTimeout {
				t.Fatalf("Teardown = %v", err)
			}
		}
	}
	e = mk("ok")
	data, err := e.runner.Setup(context.Background(), e.sink.ch)
	if err != nil || string(data) != "5" {
		t.Fatalf("Setup = %s, %v", data, err)
	}
	if err := e.runner.Teardown(context.Background(), e.sink.ch, []byte("4")); lib.ExitCodeOf(err) != lib.ExitScriptException || !strings.Contains(err.Error(), "teardown got 4") {
		t.Fatalf("Teardown = %v", err)
	}
	e = mk("none")
	if data, err := e.runner.Setup(context.Background(), e.sink.ch); err != nil || data != nil {
		t.Fatalf("Setup returning undefined = %q, %v", data, err)
	}
	// A cancelled parent context is not a timeout.
	e = mk("slow")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err = e.runner.Setup(ctx, e.sink.ch)
	if !errors.Is(err, lib.ErrInterrupted) || lib.ExitCodeOf(err) == lib.ExitSetupTimeout {
		t.Fatalf("Setup with cancelled ctx = %v", err)
	}
}

func TestHandleSummary(t *testing.T) {
	p := writeScript(t, map[string]string{"main.js": `
		import { check } from 'k6';
		export default function () {}
		export function handleSummary(data) {
			check(data, { 'has metrics': (d) => d.metrics !== undefined });
			return {
				stdout: 'checks=' + data.metrics.checks.values.rate + '\n',
				'out.bin': new Uint8Array([1, 2, 3]).buffer,
				'view.bin': new Uint8Array([4, 5]),
			};
		}`}, "main.js")
	e := load(t, p)
	out, ok, err := e.runner.HandleSummary(context.Background(), []byte(`{"metrics":{"checks":{"values":{"rate":0.5}}}}`))
	if err != nil || !ok {
		t.Fatalf("HandleSummary = %v, %v", ok, err)
	}
	if out["stdout"] != "checks=0.5\n" {
		t.Errorf("stdout = %q", out["stdout"])
	}
	if b, _ := out["out.bin"].([]byte); string(b) != "\x01\x02\x03" {
		t.Errorf("out.bin = %v", out["out.bin"])
	}
	if b, _ := out["view.bin"].([]byte); string(b) != "\x04\x05" {
		t.Errorf("view.bin = %v", out["view.bin"])
	}

	e = load(t, "basic.js")
	if _, ok, err := e.runner.HandleSummary(context.Background(), []byte(`{}`)); ok || err != nil {
		t.Fatalf("without handleSummary: %v %v", ok, err)
	}
}

func TestArchiveFilesAndSource(t *testing.T) {
	e := load(t, "basic.js")
	files := e.script.Files()
	entry := e.script.Filename()
	// Parse again from the collected files only, at a path that does not
	// exist on disk.
	moved := map[string][]byte{}
	for k, v := range files {
		rel, err := filepath.Rel(filepath.Dir(entry), k)
		if err != nil {
			t.Fatal(err)
		}
		moved[filepath.Join("/nonexistent/archive", rel)] = v
	}
	s, err := Parse(context.Background(), Config{Filename: "/nonexistent/archive/basic.js", Files: moved, Console: &syncbuf.Buffer{}})
	if err != nil {
		t.Fatalf("Parse from Files: %v", err)
	}
	if len(s.Exports()) != 3 {
		t.Fatalf("exports %v", s.Exports())
	}
	// Source overrides the entry file's content.
	src := []byte("export default function () {}\nexport function other() {}\n")
	s, err = Parse(context.Background(), Config{Filename: filepath.Join(t.TempDir(), "inline.js"), Source: src, Console: &syncbuf.Buffer{}})
	if err != nil || len(s.Exports()) != 2 {
		t.Fatalf("Parse with Source: %v %v", err, s)
	}
	if _, err := os.Stat(s.Filename()); !os.IsNotExist(err) {
		t.Fatalf("inline script should not exist on disk")
	}
}
