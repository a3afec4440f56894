package sshtraffic

import (
	"context"
	"io"
	"testing"
	"time"
)

// BenchmarkEchoStreamTCP pushes 32 KiB frames through EchoStream over a
// loopback TCP echo as fast as the schedule allows (1ns ticks, shorter than any write, so the writer never sleeps on a timer; missed ticks
// are expected). BenchmarkEchoStreamTCPBaseline moves the same bytes over
// the same kind of connection with plain writes and a reader, with no
// framing, schedule or parsing.
func BenchmarkEchoStreamTCP(b *testing.B) {
	const size = 32 << 10
	c := serveOne(b, plainEcho)
	b.SetBytes(size)
	b.ResetTimer()
	res, err := EchoStream(context.Background(), c, StreamConfig{BytesPerTick: size, TickInterval: time.Nanosecond, TotalBytes: int64(b.N) * size, NoWarmup: true}, nil)
	if err != nil {
		b.Fatalf("EchoStream: %v", err)
	}
	b.StopTimer()
	if res.FramesReceived != int64(b.N) {
		b.Fatalf("received %d frames, want %d", res.FramesReceived, b.N)
	}
	b.ReportMetric(float64(res.RTT.P50.Microseconds()), "p50-rtt-µs")
}

func BenchmarkEchoStreamTCPBaseline(b *testing.B) {
	const size = 32 << 10
	c := serveOne(b, plainEcho)
	chunk := make([]byte, size)
	b.SetBytes(size)
	b.ResetTimer()
	done := make(chan error, 1)
	go func() {
		_, err := io.CopyN(io.Discard, c, int64(b.N)*size)
		done <- err
	}()
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
