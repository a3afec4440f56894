package sshtraffic

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"
)

// BenchmarkEchoFrame measures encoding one 1 KiB frame and decoding and
// verifying it; BenchmarkEchoFrameBaseline is the floor: copying and
// comparing the same bytes without any frame logic.
func BenchmarkEchoFrame(b *testing.B) {
	const size = 1024
	frame, err := NewFrame(size)
	if err != nil {
		b.Fatal(err)
	}
	var stream bytes.Reader
	buf := make([]byte, size)
	fr, err := NewFrameReader(&stream, size, false)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		PutFrameHeader(frame, uint64(i), int64(i))
		copy(buf, frame)
		stream.Reset(buf)
		fr.br.Reset(&stream)
		h, err := fr.Next()
		if err != nil || h.Seq != uint64(i) {
			b.Fatalf("frame %d: %+v, %v", i, h, err)
		}
	}
}

func BenchmarkEchoFrameBaseline(b *testing.B) {
	const size = 1024
	frame, _ := NewFrame(size)
	want, _ := NewFrame(size)
	buf := make([]byte, size)
	dst := make([]byte, size)
	var stream bytes.Reader
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		copy(buf, frame)
		stream.Reset(buf)
		io.ReadFull(&stream, dst)
		if !bytes.Equal(dst, want) {
			b.Fatal("mismatch")
		}
	}
}

// BenchmarkEchoThroughput pushes 32 KiB frames through the lab server's cat
// over loopback TCP as fast as the schedule allows (1µs ticks; missed
// ticks are expected) and reports echoed bytes per second.
// BenchmarkEchoThroughputBaseline moves the same bytes through a bare
// x/crypto/ssh session running cat, with no framing, schedule or parsing.
func BenchmarkEchoThroughput(b *testing.B) {
	const size = 32 << 10
	s := startLab(b, nil)
	c := connect(b, s.addr, s.config())
	b.SetBytes(size)
	b.ResetTimer()
	res, err := c.Echo(context.Background(), EchoConfig{BytesPerTick: size, TickInterval: time.Microsecond, TotalBytes: int64(b.N) * size, NoWarmup: true}, nil)
	if err != nil {
		b.Fatalf("Echo: %v", err)
	}
	b.StopTimer()
	if res.FramesReceived != int64(b.N) {
		b.Fatalf("received %d frames, want %d", res.FramesReceived, b.N)
	}
	b.ReportMetric(float64(res.RTT.P50.Microseconds()), "p50-rtt-µs")
}

func BenchmarkEchoThroughputBaseline(b *testing.B) {
	const size = 32 << 10
	s := startLab(b, nil)
	c := connect(b, s.addr, s.config())
	sess, err := c.newSession(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	in, _ := sess.StdinPipe()
	out, _ := sess.StdoutPipe()
	if err := sess.Start("cat"); err != nil {
		b.Fatal(err)
	}
	chunk := make([]byte, size)
	b.SetBytes(size)
	b.ResetTimer()
	done := make(chan error, 1)
	go func() {
		_, err := io.CopyN(io.Discard, out, int64(b.N)*size)
		done <- err
	}()
	for i := 0; i < b.N; i++ {
		if _, err := in.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	in.Close()
	sess.Wait()
}
