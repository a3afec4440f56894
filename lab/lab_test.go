package lab_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/cdeload/cdeload/internal/syncbuf"
	"github.com/cdeload/cdeload/lab"
	"github.com/cdeload/cdeload/lab/tailnetlab/egressguard"
	"github.com/cdeload/cdeload/tailnet"
)

func TestMain(m *testing.M) { os.Exit(egressguard.Run(m.Run)) }

func do(t *testing.T, method, url, body string, wantCode int, out any) {
	t.Helper()
	doAs(t, "", method, url, body, wantCode, out)
}

// doAs is do with token as the bearer token ("" for none).
func doAs(t *testing.T, token, method, url, body string, wantCode int, out any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != wantCode {
		t.Fatalf("%s %s: %d %s, want %d", method, url, res.StatusCode, b, wantCode)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, url, b, err)
		}
	}
}

func TestHTTPAPIHandsOutWorkingCredentials(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l, err := lab.Start(ctx, lab.Config{Workspaces: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	base := l.URL() + "/lab/v1"

	// Without the lab's token: no secrets.
	var e struct{ Error string }
	do(t, "GET", base+"/info", "", 401, &e)
	if !strings.Contains(e.Error, "CDELOAD_LAB_TOKEN") {
		t.Errorf("401 answer %q does not say which token to send", e.Error)
	}
	doAs(t, "wrong-token", "GET", base+"/info", "", 401, nil)
	var list struct{ Workspaces []lab.WorkspaceInfo }
	do(t, "GET", base+"/workspaces", "", 200, &list)
	if len(list.Workspaces) != 2 || list.Workspaces[0].Name != "ws-000" || list.Workspaces[0].PrivateKeyPEM != "" {
		t.Fatalf("pre-started workspaces without the token = %+v, want two without privateKeyPEM", list.Workspaces)
	}

	var info lab.Info
	doAs(t, l.Token(), "GET", base+"/info", "", 200, &info)
	if info.ControlURL != l.ControlURL() || info.AuthKey == "" || info.User != "coder" {
		t.Fatalf("info = %+v", info)
	}
	var ws lab.WorkspaceInfo
	doAs(t, l.Token(), "POST", base+"/workspaces", `{"name":"api-ws"}`, 201, &ws)
	if ws.Name != "api-ws" || !strings.HasPrefix(ws.Address, "100.64.") || ws.SSHAddress != ws.Address+":22" {
		t.Fatalf("created %+v", ws)
	}
	do(t, "POST", base+"/workspaces", `{"name":"api-ws"}`, 409, nil)
	do(t, "POST", base+"/workspaces", `{"name":"x","cpu":2}`, 400, &e)
	if !strings.Contains(e.Error, "cpu") {
		t.Fatalf("unknown key error %q does not name the key", e.Error)
	}
	do(t, "POST", base+"/workspaces", `{"name":"Not Valid"}`, 400, nil)
	do(t, "DELETE", base+"/workspaces/api-ws?crash=maybe", "", 400, nil)

	// Another "process": a tailnet client using only what the API returned.
	cli, err := tailnet.New(tailnet.Config{ControlURL: info.ControlURL, AuthKey: info.AuthKey, Hostname: "api-client"})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Up(ctx); err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey([]byte(ws.PrivateKeyPEM))
	if err != nil {
		t.Fatal(err)
	}
	khFile := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(khFile, []byte(ws.KnownHosts+"\n"), 0o600)
	hostKeyCB, err := knownhosts.New(khFile)
	if err != nil {
		t.Fatal(err)
	}
	conn, _, err := cli.Dial(ctx, "tcp", ws.SSHAddress)
	if err != nil {
		t.Fatal(err)
	}
	cc, chans, reqs, err := ssh.NewClientConn(conn, ws.SSHAddress, &ssh.ClientConfig{
		User: ws.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: hostKeyCB,
	})
	if err != nil {
		t.Fatalf("SSH with the API's credentials and known_hosts line: %v", err)
	}
	client := ssh.NewClient(cc, chans, reqs)
	defer client.Close()
	s, _ := client.NewSession()
	out, err := s.Output("echo via api")
	if err != nil || string(out) != "via api\n" {
		t.Fatalf("echo: %q %v", out, err)
	}

	do(t, "DELETE", base+"/workspaces/api-ws", "", 204, nil)
	do(t, "DELETE", base+"/workspaces/api-ws", "", 404, nil)
	do(t, "GET", base+"/workspaces/api-ws", "", 404, nil)
	do(t, "DELETE", base+"/workspaces/ws-001?crash=true", "", 204, nil)
	do(t, "GET", base+"/workspaces", "", 200, &list)
	if len(list.Workspaces) != 1 {
		t.Fatalf("after deletes: %+v", list.Workspaces)
	}
}

func TestStartRefusesNonLoopback(t *testing.T) {
	for _, a := range []string{"0.0.0.0:0", "10.0.0.1:80", "[::]:0", "example.com:80"} {
		if _, err := lab.Start(context.Background(), lab.Config{Listen: a}); err == nil {
			t.Fatalf("Start with Listen %q succeeded", a)
		}
	}
}

func TestServePrintsExportsAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out syncbuf.Buffer
	keyFile := filepath.Join(t.TempDir(), "id")
	done := make(chan error, 1)
	go func() {
		done <- lab.Serve(ctx, lab.Config{Workspaces: 1}, lab.ServeOptions{KeyFile: keyFile, Ready: func(*lab.Lab) { cancel() }}, &out)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Serve did not stop")
	}
	s := out.String()
	for _, want := range []string{"export TS_CONTROL_URL=http://127.0.0.1:", "export TS_AUTHKEY=tskey-", "export CDELOAD_SSH_KEY=" + keyFile, "# workspace ws-000 100.64."} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	st, err := os.Stat(keyFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
}
