package cdeload

import (
	"net"
	"strings"
	"testing"
)

// TestSSHConnectTimeoutCoversTheJoin points a Tailnet at a control server
// that accepts and never answers: ssh.connect fails within its own
// timeout, saying why, instead of waiting for the Tailnet's 2 minutes.
func TestSSHConnectTimeoutCoversTheJoin(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	done := make(chan struct{})
	var held []net.Conn
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	defer func() {
		l.Close()
		<-done
		for _, c := range held {
			c.Close()
		}
	}()
	r := runScript(t, header+`
const net = new Tailnet({ controlURL: 'http://`+l.Addr().String()+`', authKey: 'tskey-x', shared: false });
export default async function () {
  const start = Date.now();
  let msg = 'resolved';
  try {
    await ssh.connect({ tailnet: net, host: 'ws-000', user: 'u', password: 'p', insecureSkipHostKeyCheck: true, timeout: '1s' });
  } catch (e) { msg = e.message; }
  report(TEST, 'connect', msg);
  report(TEST, 'ms', Date.now() - start);
  await net.close();
}
`, nil)
	msg := r.reportString("connect")
	if !strings.Contains(msg, "no answer from the control server") || !strings.Contains(msg, "within the timeout 1s") {
		t.Errorf("connect rejected with %q, want the control server's silence and the 1s timeout", msg)
	}
	var ms float64
	r.report("ms", &ms)
	if ms > 3000 {
		t.Errorf("ssh.connect took %v ms, want about its 1s timeout", ms)
	}
}
