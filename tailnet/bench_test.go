package tailnet_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/cdeload/cdeload/lab/tailnetlab"
	"github.com/cdeload/cdeload/tailnet"
)

// BenchmarkNodeUp measures joining (New + Up) and leaving a node, and
// reports the goroutines and Go heap one idle node holds.
func BenchmarkNodeUp(b *testing.B) {
	var upTotal time.Duration
	var gor, heap float64
	for i := 0; b.Loop(); i++ {
		var ms0, ms1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		g0 := runtime.NumGoroutine()
		n, err := tailnet.New(cfg("bench-up"))
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		info, err := n.Up(ctx)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		upTotal += info.Duration
		gor += float64(runtime.NumGoroutine() - g0)
		runtime.GC()
		runtime.ReadMemStats(&ms1)
		heap += float64(ms1.HeapInuse) - float64(ms0.HeapInuse)
		n.Close()
	}
	b.ReportMetric(float64(upTotal.Milliseconds())/float64(b.N), "up-ms/op")
	b.ReportMetric(gor/float64(b.N), "goroutines/node")
	b.ReportMetric(heap/float64(b.N)/1e6, "heap-MB/node")
}

// echoServer accepts on ln and echoes.
func echoServer(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() { defer c.Close(); io.Copy(c, c) }()
	}
}

type dialer func(ctx context.Context) (net.Conn, error)

// benchPair returns a tailnet dialer to an echo workspace and a loopback
// TCP dialer to an echo server, the baseline.
func benchPair(b *testing.B) (tn, tcp dialer) {
	ws, err := tailnet.New(cfg("bench-ws", tailnetlab.WorkspaceTag))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ws.Close() })
	cli, err := tailnet.New(cfg("bench-cli"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cli.Close() })
	ctx := context.Background()
	if _, err := ws.Up(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := cli.Up(ctx); err != nil {
		b.Fatal(err)
	}
	wln, err := ws.Listen("tcp", ":7")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { wln.Close() })
	go echoServer(wln)
	tln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tln.Close() })
	go echoServer(tln)
	addr := ws.Addr().String() + ":7"
	tn = func(ctx context.Context) (net.Conn, error) {
		c, _, err := cli.Dial(ctx, "tcp", addr)
		return c, err
	}
	var d net.Dialer
	tcp = func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", tln.Addr().String()) }
	// Warm up: let the path go direct.
	c, err := tn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		rt(b, c, make([]byte, 128))
		time.Sleep(20 * time.Millisecond)
	}
	c.Close()
	return tn, tcp
}

func rt(b *testing.B, c net.Conn, buf []byte) {
	if _, err := c.Write(buf); err != nil {
		b.Fatal(err)
	}
	if _, err := io.ReadFull(c, buf); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkDial compares a tailnet dial (TCP over WireGuard over loopback
// UDP, plus one echo) with a plain loopback TCP dial. It reports the time
// the client node's Close took at the end (after every connection the
// benchmark made), which used to hang after ~500 connections.
func BenchmarkDial(b *testing.B) {
	tn, tcp := benchPair(b)
	for _, bc := range []struct {
		name string
		d    dialer
	}{{"loopback-tcp", tcp}, {"tailnet", tn}} {
		b.Run(bc.name, func(b *testing.B) {
			buf := make([]byte, 1)
			for b.Loop() {
				c, err := bc.d(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				rt(b, c, buf)
				c.Close()
			}
		})
	}
}

// BenchmarkEchoRTT compares one 128-byte echo round trip over the tailnet
// with the same over loopback TCP.
func BenchmarkEchoRTT(b *testing.B) {
	tn, tcp := benchPair(b)
	for _, bc := range []struct {
		name string
		d    dialer
	}{{"loopback-tcp", tcp}, {"tailnet", tn}} {
		b.Run(bc.name, func(b *testing.B) {
			c, err := bc.d(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			buf := make([]byte, 128)
			for b.Loop() {
				rt(b, c, buf)
			}
		})
	}
}

// BenchmarkCloseAfterConns measures Node.Close on a client node that has
// just made N short-lived connections (dial, one-byte echo, close) to a
// workspace. conns=0 is the baseline: an idle node's Close. Only Close is
// reported (close-ms); ns/op includes joining and the connections.
func BenchmarkCloseAfterConns(b *testing.B) {
	ws, err := tailnet.New(cfg("bench-close-ws", tailnetlab.WorkspaceTag))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ws.Close() })
	if _, err := ws.Up(context.Background()); err != nil {
		b.Fatal(err)
	}
	wln, err := ws.Listen("tcp", ":7")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { wln.Close() })
	go echoServer(wln)
	addr := ws.Addr().String() + ":7"
	for _, n := range []int{0, 500, 2000, 5000} {
		b.Run(fmt.Sprintf("conns=%d", n), func(b *testing.B) {
			var closeTotal time.Duration
			for b.Loop() {
				cli, err := tailnet.New(cfg("bench-close-cli"))
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				_, err = cli.Up(ctx)
				cancel()
				if err != nil {
					cli.Close()
					b.Fatal(err)
				}
				churn(b, cli, addr, n)
				start := time.Now()
				if err := cli.Close(); err != nil {
					b.Fatal(err)
				}
				closeTotal += time.Since(start)
			}
			b.ReportMetric(float64(closeTotal.Microseconds())/1e3/float64(b.N), "close-ms/op")
		})
	}
}
