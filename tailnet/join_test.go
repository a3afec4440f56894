package tailnet_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cdeload/cdeload/tailnet"
)

// joinFails runs Up against c with a generous context and checks that it
// fails with want, a message containing msg, within limit.
func joinFails(t *testing.T, c tailnet.Config, probeTimeout time.Duration, want error, msg string, limit time.Duration) {
	t.Helper()
	n, err := tailnet.New(c)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if probeTimeout > 0 {
		tailnet.SetProbeTimeout(n, probeTimeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	_, err = n.Up(ctx)
	took := time.Since(start)
	if !errors.Is(err, want) || !strings.Contains(err.Error(), msg) {
		t.Fatalf("Up: %v; want %v saying %q", err, want, msg)
	}
	if errors.Is(err, context.DeadlineExceeded) && !errors.Is(want, tailnet.ErrControlNoAnswer) {
		t.Errorf("Up waited for its deadline: %v", err)
	}
	if took > limit {
		t.Errorf("Up took %v to fail, want at most %v", took, limit)
	}
	t.Logf("%v: %v", took.Round(time.Millisecond), err)
}

func TestJoinClosedPortFailsAtOnce(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c := cfg("closed-port")
	c.ControlURL = "http://" + addr
	joinFails(t, c, 0, tailnet.ErrControlUnreachable, "connection refused", 2*time.Second)
}

func TestJoinWebPageIsNotAControlServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte("<html><body>Welcome</body></html>"))
	}))
	defer srv.Close()
	c := cfg("web-page")
	c.ControlURL = srv.URL
	joinFails(t, c, 0, tailnet.ErrNotControlServer, "text/html", 2*time.Second)
}

func TestJoinHangingServerFailsAfterTheProbeTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var held []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c) // accept, never answer
		}
	}()
	defer func() {
		l.Close()
		<-done
		for _, c := range held {
			c.Close()
		}
	}()
	c := cfg("hanging")
	c.ControlURL = "http://" + l.Addr().String()
	joinFails(t, c, 500*time.Millisecond, tailnet.ErrControlNoAnswer, "within 500ms", 3*time.Second)
}

func TestJoinWrongAuthKeyIsRejected(t *testing.T) {
	c := cfg("wrong-key")
	c.AuthKey = "tskey-auth-wrong"
	joinFails(t, c, 0, tailnet.ErrAuthKeyRejected, "invalid authkey", 15*time.Second)
}
