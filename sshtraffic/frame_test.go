package sshtraffic

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestFrameRoundTrip(t *testing.T) {
	f, err := NewFrame(100)
	if err != nil {
		t.Fatal(err)
	}
	var stream bytes.Buffer
	for i := uint64(0); i < 3; i++ {
		PutFrameHeader(f, i+40, int64(i)*1e9+7)
		stream.Write(f)
	}
	for _, c := range f {
		if c < 0x20 && c != '\n' || c > 0x7e {
			t.Fatalf("frame has non-printable byte %#x", c)
		}
	}
	fr, err := NewFrameReader(&stream, 100, false)
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(0); i < 3; i++ {
		h, err := fr.Next()
		if err != nil || h.Seq != i+40 || h.SendNanos != int64(i)*1e9+7 || h.Length != 100 {
			t.Fatalf("frame %d: got %+v, %v", i, h, err)
		}
	}
	if _, err := fr.Next(); err != io.EOF {
		t.Fatalf("after last frame: got %v, want io.EOF", err)
	}
}

func TestFrameReaderRejects(t *testing.T) {
	f, _ := NewFrame(64)
	PutFrameHeader(f, 1, 2)
	corrupt := func(i int, c byte) []byte {
		g := bytes.Clone(f)
		g[i] = c
		return g
	}
	other, _ := NewFrame(80)
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"body byte", corrupt(50, '!'), ErrBadFrame},
		{"newline", corrupt(63, 'x'), ErrBadFrame},
		{"magic", corrupt(0, 'x'), ErrBadFrame},
		{"hex", corrupt(10, 'g'), ErrBadFrame},
		{"other size", other, ErrBadFrame},
		{"truncated", f[:50], io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		fr, _ := NewFrameReader(bytes.NewReader(tt.in), 64, false)
		if _, err := fr.Next(); !errors.Is(err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
		}
	}
	if _, err := NewFrame(MinFrameSize - 1); err == nil {
		t.Error("NewFrame below MinFrameSize: got nil error")
	}
}

func TestFrameReaderStripsCR(t *testing.T) {
	f, _ := NewFrame(64)
	PutFrameHeader(f, 9, 0)
	cooked := strings.ReplaceAll(string(f), "\n", "\r\n")
	// Deliver one byte at a time to exercise the stripper's boundaries.
	fr, _ := NewFrameReader(&oneByteReader{r: strings.NewReader(cooked + "\r")}, 64, true)
	if h, err := fr.Next(); err != nil || h.Seq != 9 {
		t.Fatalf("got %+v, %v", h, err)
	}
	if _, err := fr.Next(); err != io.EOF {
		t.Fatalf("trailing CR: got %v, want io.EOF", err)
	}
}

type oneByteReader struct{ r io.Reader }

func (o *oneByteReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return o.r.Read(p)
}

func TestRTTSummary(t *testing.T) {
	var r rttRecorder
	for i := 100; i >= 1; i-- {
		r.add(time.Duration(i) * time.Millisecond)
	}
	s := r.summary()
	if s.Count != 100 || s.Min != time.Millisecond || s.Max != 100*time.Millisecond ||
		s.P50 != 50*time.Millisecond || s.P95 != 95*time.Millisecond || s.P99 != 99*time.Millisecond || s.Mean != 50500*time.Microsecond {
		t.Fatalf("summary = %+v", s)
	}
}
