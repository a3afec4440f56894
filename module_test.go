package cdeload

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/lab"
)

const header = `
import cde from 'k6/x/cdeload';
import { Tailnet, ssh, lab } from 'k6/x/cdeload';
import { report } from 'k6/x/cdeloadtest';
`

// TestTailnetUpDialPath joins the embedded lab's tailnet with a node of its
// own name, dials a lab workspace by address and asks for the path by name.
func TestTailnetUpDialPath(t *testing.T) {
	r := runScript(t, header+`
const net = new Tailnet({ hostname: 'tn-updial' });
export default async function () {
  const ws = await lab.startWorkspace();
  report(TEST, 'ws', ws);
  report(TEST, 'up', await net.up());
  report(TEST, 'up2', await net.up());
  report(TEST, 'dial', await net.dial(ws.address, 22));
  report(TEST, 'path', await net.path(ws.name));
  await net.close();
  await net.close(); // idempotent
  let msg = '';
  try { await net.up(); } catch (e) { msg = e.message; }
  report(TEST, 'afterClose', msg);
  await lab.stopWorkspace(ws.name);
}
`, nil)
	var ws struct{ Name, Address string }
	r.report("ws", &ws)
	var up, up2 struct {
		DurationMs float64
		HomeDerp   int
		IPs        []string
		Hostname   string
	}
	r.report("up", &up)
	r.report("up2", &up2)
	if up.DurationMs <= 0 || up.HomeDerp == 0 || len(up.IPs) == 0 || up.Hostname != "tn-updial" {
		t.Errorf("up() = %+v, want a positive duration, a home DERP, IPs and hostname tn-updial", up)
	}
	if up2.DurationMs != up.DurationMs {
		t.Errorf("second up() = %+v, want the first join's result %+v", up2, up)
	}
	var dial struct {
		Path       string
		DurationMs float64
		Address    string
	}
	r.report("dial", &dial)
	if dial.Path != "direct" && dial.Path != "derp" || dial.DurationMs <= 0 || dial.Address != ws.Address {
		t.Errorf("dial() = %+v, want path direct or derp, a duration and address %s", dial, ws.Address)
	}
	if p := r.reportString("path"); p != "direct" && p != "derp" {
		t.Errorf("path() = %q after a dial, want direct or derp", p)
	}
	if msg := r.reportString("afterClose"); !strings.Contains(msg, "tailnet.up()") || !strings.Contains(msg, "closed") {
		t.Errorf("up() after close() rejected with %q, want a message naming tailnet.up() and saying it is closed", msg)
	}

	ups := r.sink.samples(mTailnetUp)
	if len(ups) != 1 || math.Abs(ups[0].Value-up.DurationMs) > 1e-9 {
		t.Fatalf("tailnet_up_duration samples = %v, want one of %v ms", values(ups), up.DurationMs)
	}
	dials := r.sink.samples(mTailnetDial)
	if len(dials) != 1 {
		t.Fatalf("tailnet_dial_duration: %d samples, want 1", len(dials))
	}
	d := dials[0]
	if p, _ := d.Tags.Get("path"); p != dial.Path {
		t.Errorf("tailnet_dial_duration tag path = %q, want %q", p, dial.Path)
	}
	if sc, _ := d.Tags.Get("scenario"); sc != "sc" {
		t.Errorf("tailnet_dial_duration lacks the VU's tags: %v", d.Tags.Map())
	}
	if _, ok := d.Tags.Get("host"); ok {
		t.Errorf("host must be metadata, not a tag: %v", d.Tags.Map())
	}
	if d.Metadata["host"] != ws.Address || d.Metadata["workspace"] != ws.Name {
		t.Errorf("tailnet_dial_duration metadata = %v, want host %s and workspace %s", d.Metadata, ws.Address, ws.Name)
	}
}

// TestSSHRunAndEcho connects to a lab workspace over the shared tailnet
// node with the lab's credentials picked automatically, runs commands and
// an echo stream, and checks the samples against the result.
func TestSSHRunAndEcho(t *testing.T) {
	r := runScript(t, header+`
const net = new cde.Tailnet();
export default async function () {
  const ws = await cde.lab.startWorkspace({ name: 'ssh-echo-1' });
  report(TEST, 'ws', ws);
  const s = await cde.ssh.connect({ tailnet: net, host: ws.address });
  report(TEST, 'session', { host: s.host, user: s.user, serverVersion: s.serverVersion, connectDurationMs: s.connectDurationMs });
  report(TEST, 'hello', await s.run('echo hello'));
  report(TEST, 'exit3', await s.run('exit 3'));
  report(TEST, 'echo', await s.echo({ bytesPerTick: 128, tickInterval: '20ms', duration: 1000 }));
  await s.close();
  await s.close();

  // Explicit credentials, host by name.
  const s2 = await ssh.connect({ tailnet: net, host: ws.name, user: ws.user, privateKey: ws.privateKey,
    hostKey: ws.hostKey, timeout: '20s' });
  report(TEST, 'byName', await s2.run('echo by-name'));
  await s2.close();
  await net.close();
  await cde.lab.stopWorkspace(ws.name);
}
`, nil)
	var ws struct{ Name, Address string }
	r.report("ws", &ws)
	var sess struct {
		Host, User, ServerVersion string
		ConnectDurationMs         float64
	}
	r.report("session", &sess)
	if sess.Host != ws.Address || sess.User != "coder" || !strings.HasPrefix(sess.ServerVersion, "SSH-2.0-") || sess.ConnectDurationMs <= 0 {
		t.Errorf("session = %+v", sess)
	}
	type runRes struct {
		Stdout, Stderr string
		ExitCode       int
		DurationMs     float64
	}
	var hello, exit3, byName runRes
	r.report("hello", &hello)
	r.report("exit3", &exit3)
	r.report("byName", &byName)
	if hello.Stdout != "hello\n" || hello.ExitCode != 0 {
		t.Errorf("run('echo hello') = %+v", hello)
	}
	if exit3.ExitCode != 3 {
		t.Errorf("run('exit 3') = %+v, want exit code 3", exit3)
	}
	if byName.Stdout != "by-name\n" {
		t.Errorf("run over a connection by name = %+v", byName)
	}
	var echo struct {
		FramesSent, FramesReceived, BytesSent, BytesReceived, TicksMissed int64
		Errors                                                            int
		Error                                                             string
		RTT                                                               struct{ Count, Min, P50, P95, Max float64 }
	}
	r.report("echo", &echo)
	if echo.Errors != 0 || echo.Error != "" || echo.FramesReceived == 0 || echo.FramesReceived != echo.FramesSent ||
		echo.BytesSent != 128*echo.FramesSent || echo.BytesReceived != echo.BytesSent || echo.RTT.Min <= 0 || echo.RTT.Max < echo.RTT.P95 {
		t.Errorf("echo() = %+v", echo)
	}

	rtt := r.sink.samples(mTrafficRTT)
	if int64(len(rtt)) != echo.FramesReceived {
		t.Fatalf("traffic_rtt: %d samples, want framesReceived = %d", len(rtt), echo.FramesReceived)
	}
	for _, s := range rtt {
		if tr, _ := s.Tags.Get("transport"); tr != "ssh" {
			t.Fatalf("traffic_rtt tags = %v, want transport=ssh", s.Tags.Map())
		}
		if _, ok := s.Tags.Get("workspace"); ok {
			t.Fatalf("the workspace name must be metadata, not a tag: %v", s.Tags.Map())
		}
		if s.Metadata["workspace"] != ws.Name || s.Metadata["vu"] != "1" {
			t.Fatalf("traffic_rtt metadata = %v, want workspace %s and the VU's metadata", s.Metadata, ws.Name)
		}
		if s.Value < echo.RTT.Min-1e-6 || s.Value > echo.RTT.Max+1e-6 {
			t.Fatalf("traffic_rtt sample %v ms outside the result's [%v, %v]", s.Value, echo.RTT.Min, echo.RTT.Max)
		}
	}
	if got := r.sink.sum(mTrafficBytesSent); got != float64(echo.BytesSent) {
		t.Errorf("traffic_bytes_sent total = %v, want %d", got, echo.BytesSent)
	}
	if got := r.sink.sum(mTrafficBytesReceived); got != float64(echo.BytesReceived) {
		t.Errorf("traffic_bytes_received total = %v, want %d", got, echo.BytesReceived)
	}
	if errs := r.sink.samples(mTrafficErrors); len(errs) != 1 || errs[0].Value != 0 {
		t.Errorf("traffic_errors samples = %v, want one zero", values(errs))
	}
	if n := len(r.sink.samples(mSSHConnect)); n != 2 {
		t.Errorf("ssh_connect_duration: %d samples, want 2", n)
	}
	if n := len(r.sink.samples(mTailnetDial)); n != 2 {
		t.Errorf("tailnet_dial_duration: %d samples, want 2 (one per connection)", n)
	}
	// SSH adds framing and encryption: the tailnet bytes exceed the payload.
	if sent := r.sink.sum("data_sent"); sent <= float64(echo.BytesSent) {
		t.Errorf("data_sent = %v, want more than the %d payload bytes", sent, echo.BytesSent)
	}
	if recv := r.sink.sum("data_received"); recv <= float64(echo.BytesReceived) {
		t.Errorf("data_received = %v, want more than the %d payload bytes", recv, echo.BytesReceived)
	}
}

// TestDialMissingHostRejects checks that a dial to a host that is not on
// the tailnet rejects the promise with a message naming the call.
func TestDialMissingHostRejects(t *testing.T) {
	r := runScript(t, header+`
const net = new Tailnet();
export default async function () {
  let msg = 'resolved';
  try { await net.dial('no-such-workspace', 22, { timeout: '300ms' }); } catch (e) { msg = e.message; }
  report(TEST, 'dial', msg);
  msg = 'resolved';
  try { await ssh.connect({ tailnet: net, host: 'no-such-workspace', timeout: 300 }); } catch (e) { msg = e.message; }
  report(TEST, 'connect', msg);
  await net.close();
}
`, nil)
	if msg := r.reportString("dial"); !strings.Contains(msg, `tailnet.dial("no-such-workspace", 22)`) || !strings.Contains(msg, "no such peer") {
		t.Errorf("dial rejected with %q, want the call and 'no such peer'", msg)
	}
	if msg := r.reportString("connect"); !strings.Contains(msg, "ssh.connect(no-such-workspace:22)") || !strings.Contains(msg, "no such peer") {
		t.Errorf("connect rejected with %q, want the call and 'no such peer'", msg)
	}
}

// TestNetworkCallsInInitThrow checks the init context refuses network calls
// but accepts constructors.
func TestNetworkCallsInInitThrow(t *testing.T) {
	for name, code := range map[string]string{
		"up":             `const n = new Tailnet(); n.up();`,
		"dial":           `const n = new Tailnet(); n.dial('x', 22);`,
		"startWorkspace": `lab.startWorkspace();`,
		"sshConnect":     `ssh.connect({ host: 'x' });`,
	} {
		t.Run(name, func(t *testing.T) {
			_, console, err := parse(t, header+code+"\nexport default function () {}\n", nil)
			if err == nil || !strings.Contains(err.Error(), "not allowed in the init context") {
				t.Fatalf("parse error = %v, want 'not allowed in the init context'\n%s", err, console)
			}
		})
	}
	if _, console, err := parse(t, header+"const n = new Tailnet({ shared: false });\nexport default function () {}\n", nil); err != nil {
		t.Fatalf("a constructor in the init context: %v\n%s", err, console)
	}
}

// TestStrictOptions checks that unknown keys and bad values are errors that
// name the key, the value and what is allowed.
func TestStrictOptions(t *testing.T) {
	for name, tc := range map[string]struct{ code, want string }{
		"unknown tailnet key": {`new Tailnet({ controlUrl: 'http://127.0.0.1:1' })`,
			`new Tailnet: unknown option "controlUrl" (allowed: authKey, controlURL, derpOnly, hostname, shared, timeout)`},
		"tailnet bool": {`new Tailnet({ shared: 'yes' })`, `new Tailnet: option shared = "yes": want true or false`},
		"tailnet hostname": {`new Tailnet({ hostname: 'a b' })`,
			`option hostname = "a b": want 1-63 characters`},
		"tailnet timeout": {`new Tailnet({ timeout: 'soon' })`,
			`option timeout = "soon": want a positive duration`},
		"authKey without control": {`new Tailnet({ authKey: 'k' })`, `authKey (or TS_AUTHKEY) is set but no controlURL`},
		"not an object":           {`new Tailnet(42)`, `options must be an object`},
	} {
		t.Run(name, func(t *testing.T) {
			_, console, err := parse(t, header+tc.code+";\nexport default function () {}\n", nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v\nwant it to contain %q\n%s", err, tc.want, console)
			}
		})
	}

	// In the VU context, against a running lab.
	r := runScript(t, header+`
const net = new Tailnet();
async function msg(fn) { try { await fn(); return 'no error'; } catch (e) { return e.message; } }
export default async function () {
  report(TEST, 'port', await msg(() => net.dial('x', 70000)));
  report(TEST, 'sshKey', await msg(() => ssh.connect({ tailnet: net, host: 'x', hots: 1 })));
  report(TEST, 'sshHost', await msg(() => ssh.connect({ tailnet: net })));
  report(TEST, 'sshTailnet', await msg(() => ssh.connect({ tailnet: {}, host: 'x' })));
  report(TEST, 'sshPolicies', await msg(() => ssh.connect({ host: 'x', insecureSkipHostKeyCheck: true, knownHostsFile: '/x' })));
  report(TEST, 'sshKeyPEM', await msg(() => ssh.connect({ host: 'x', privateKey: 'not a key' })));
  report(TEST, 'wsName', await msg(() => lab.startWorkspace({ name: 'Bad_Name' })));
  const ws = await lab.startWorkspace();
  const s = await ssh.connect({ tailnet: net, host: ws.address });
  report(TEST, 'echoInterval', await msg(() => s.echo({ tickInterval: 'fast', duration: '1s' })));
  report(TEST, 'echoSize', await msg(() => s.echo({ bytesPerTick: 10 })));
  report(TEST, 'echoBoth', await msg(() => s.echo({ duration: '1s', bytes: 1000 })));
  report(TEST, 'echoKey', await msg(() => s.echo({ rate: 1 })));
  report(TEST, 'echoBytes', await s.echo({ bytes: 460, tickInterval: 10 }));
  await s.close();
  await net.close();
  await lab.stopWorkspace(ws.name);
}
`, nil)
	for name, want := range map[string]string{
		"port":         `tailnet.dial(host, port): port 70000: want an integer from 1 to 65535`,
		"sshKey":       `ssh.connect: unknown option "hots" (allowed: host, hostKey, insecureSkipHostKeyCheck, knownHostsFile, password, port, privateKey, tailnet, timeout, user)`,
		"sshHost":      `ssh.connect: option host is required`,
		"sshTailnet":   `ssh.connect: option tailnet = an object: want a Tailnet made with new Tailnet(...)`,
		"sshPolicies":  `ssh.connect: set only one of hostKey, knownHostsFile and insecureSkipHostKeyCheck`,
		"sshKeyPEM":    `ssh.connect: option privateKey = (hidden): not a usable private key`,
		"wsName":       `lab.startWorkspace: option name = "Bad_Name"`,
		"echoInterval": `ssh.echo: option tickInterval = "fast": want a positive duration`,
		"echoSize":     `ssh.echo: option bytesPerTick = 10: want an integer from 46 to`,
		"echoBoth":     `ssh.echo: set duration or bytes, not both`,
		"echoKey":      `ssh.echo: unknown option "rate" (allowed: bytes, bytesPerTick, command, drainTimeout, duration, pty, tickInterval)`,
	} {
		if got := r.reportString(name); !strings.Contains(got, want) {
			t.Errorf("%s: error %q\nwant it to contain %q", name, got, want)
		}
	}
	var echo struct{ FramesSent, FramesReceived, BytesSent int64 }
	r.report("echoBytes", &echo)
	if echo.FramesSent != 4 || echo.FramesReceived != 4 || echo.BytesSent != 512 {
		t.Errorf("echo({bytes: 460}) at 128 B per frame = %+v, want 4 frames", echo)
	}
}

func values(s []metrics.Sample) []float64 {
	out := make([]float64, len(s))
	for i, x := range s {
		out[i] = x.Value
	}
	return out
}

// TestStandaloneLab points the module at a lab reached over HTTP
// (CDELOAD_LAB_URL): its tailnet settings and SSH credentials come from the
// lab's API.
func TestStandaloneLab(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a second lab")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := lab.Start(ctx, lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r := runScript(t, header+`
const net = new Tailnet({ hostname: 'standalone' });
export default async function () {
  const ws = await lab.startWorkspace({ name: 'remote-1' });
  const s = await ssh.connect({ tailnet: net, host: 'remote-1' });
  report(TEST, 'run', await s.run('echo remote'));
  await s.close();
  await net.close();
  let msg = 'no error';
  try { await lab.startWorkspace({ name: 'remote-1' }); } catch (e) { msg = e.message; }
  report(TEST, 'dup', msg);
  await lab.stopWorkspace(ws.name);
}
`, map[string]string{envLabURL: l.URL(), envLabToken: l.Token()})
	var run struct{ Stdout string }
	r.report("run", &run)
	if run.Stdout != "remote\n" {
		t.Errorf("run = %+v", run)
	}
	if msg := r.reportString("dup"); !strings.Contains(msg, `lab.startWorkspace("remote-1")`) || !strings.Contains(msg, "409") {
		t.Errorf("starting a duplicate workspace: %q, want the call and the lab's 409", msg)
	}
	if n := l.Workspaces.Len(); n != 0 {
		t.Errorf("the standalone lab runs %d workspaces after stopWorkspace, want 0", n)
	}
}
