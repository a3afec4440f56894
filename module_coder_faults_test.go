package cdeload

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/cdeload/cdeload/lab/codersim"
)

func newFaultySim(t *testing.T, f codersim.Faults) *codersim.Server {
	t.Helper()
	sim, err := codersim.New(codersim.Config{Seed: 5, Faults: f})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	return sim
}

// TestWorkspaceFailedIsTaggedByOperation runs creates of which about half
// fail their build, and deletes of the others: workspace_failed{op:create}
// must be the build failure rate, with the reason, and deletes apart.
func TestWorkspaceFailedIsTaggedByOperation(t *testing.T) {
	sim := newFaultySim(t, codersim.Faults{BuildFailureRate: 0.5})
	r := runScript(t, header+`
import { Coder } from 'k6/x/cdeload';
const coder = new Coder({ pollInterval: '10ms' });
export default async function () {
  let failed = 0;
  const msgs = [];
  for (let i = 0; i < 8; i++) {
    try {
      const ws = await coder.createWorkspace({ template: 'kubernetes' });
      await ws.delete();
    } catch (e) {
      failed++;
      msgs.push(e.message);
    }
  }
  report(TEST, 'failed', failed);
  report(TEST, 'msgs', msgs);
  await coder.cleanup();
}
`, map[string]string{"CODER_URL": sim.URL, "CODER_SESSION_TOKEN": sim.AdminToken})
	var failed int
	r.report("failed", &failed)
	if failed == 0 || failed == 8 {
		t.Fatalf("%d of 8 creates failed with a 50%% build failure rate: the test needs both outcomes", failed)
	}
	var msgs []string
	r.report("msgs", &msgs)
	for _, m := range msgs {
		if n := strings.Count(m, "workspace scaletest-"); n != 1 {
			t.Errorf("error names the workspace %d times, want once: %s", n, m)
		}
	}
	count := map[string]float64{}
	fails := map[string]float64{}
	for _, s := range r.sink.samples(mWorkspaceFailed) {
		op, _ := s.Tags.Get("op")
		count[op]++
		fails[op] += s.Value
		if reason, _ := s.Tags.Get("reason"); s.Value == 1 && op == "create" && reason != "build_failed" {
			t.Errorf("failed create tagged reason=%q, want build_failed", reason)
		}
	}
	if count["create"] != 8 || fails["create"] != float64(failed) {
		t.Errorf("workspace_failed{op:create}: %v failures of %v samples, want %d of 8 (all samples by op: %v)", fails["create"], count["create"], failed, count)
	}
	if count["delete"] != float64(8-failed) || fails["delete"] != 0 {
		t.Errorf("workspace_failed{op:delete}: %v failures of %v samples, want 0 of %d", fails["delete"], count["delete"], 8-failed)
	}
	if count[""] != 0 {
		t.Errorf("%v workspace_failed samples without an op tag", count[""])
	}
}

// TestOptionErrorsHaveOpAndHideSecrets checks the Error thrown for a bad
// option: its op property, and no trace of a secret's value.
func TestOptionErrorsHaveOpAndHideSecrets(t *testing.T) {
	r := runScript(t, header+`
import { Coder } from 'k6/x/cdeload';
function thrown(fn) { try { fn(); return null; } catch (e) { return { op: e.op, message: e.message }; } }
async function rejected(fn) { try { await fn(); return null; } catch (e) { return { op: e.op, message: e.message }; } }
export default async function () {
  report(TEST, 'token', thrown(() => new Coder({ url: 'http://127.0.0.1:9', token: 12345 })));
  report(TEST, 'password', await rejected(() => ssh.connect({ host: '127.0.0.1', user: 'u', password: 12345 })));
  report(TEST, 'key', await rejected(() => ssh.connect({ host: '127.0.0.1', user: 'u', privateKey: 'SECRETKEYMATERIAL-not-a-key' })));
}
`, nil)
	for name, wantOp := range map[string]string{"token": "new Coder", "password": "ssh.connect", "key": "ssh.connect"} {
		var got *struct{ Op, Message string }
		r.report(name, &got)
		if got == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if got.Op != wantOp {
			t.Errorf("%s: e.op = %q, want %q (message %q)", name, got.Op, wantOp, got.Message)
		}
		if strings.Contains(got.Message, "12345") || strings.Contains(got.Message, "SECRETKEY") {
			t.Errorf("%s: the error shows the secret: %q", name, got.Message)
		}
	}
}

// TestCoderURLWithoutAnswerFailsAfterRequestTimeout points new Coder() at
// a server that accepts connections and never answers: createWorkspace
// must reject after requestTimeout saying so, not hang until its own bound.
func TestCoderURLWithoutAnswerFailsAfterRequestTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	u := "http://" + ln.Addr().String()
	r := runScript(t, header+`
import { Coder } from 'k6/x/cdeload';
export default async function () {
  const coder = new Coder({ url: __ENV.URL, token: 'tok', requestTimeout: '300ms' });
  const began = Date.now();
  try { await coder.createWorkspace({ template: 'kubernetes', timeout: '20s' }); report(TEST, 'err', 'none'); }
  catch (e) { report(TEST, 'err', e.message); }
  report(TEST, 'ms', Date.now() - began);
}
`, map[string]string{"URL": u})
	want := "no answer from " + u + " in 300ms"
	if got := r.reportString("err"); !strings.Contains(got, want) {
		t.Fatalf("createWorkspace against a silent server: %q, want it to contain %q", got, want)
	}
	var ms float64
	r.report("ms", &ms)
	if ms > 5000 {
		t.Fatalf("createWorkspace took %vms to fail with a 300ms request timeout", ms)
	}
}
