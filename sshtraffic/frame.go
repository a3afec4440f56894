package sshtraffic

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Frame format. Every frame is printable ASCII and ends with "\n", so it
// survives a cooked terminal:
//
//	offset size
//	0      4    magic "cdl1"
//	4      16   sequence number, lowercase hex
//	20     16   send time, nanoseconds since the stream started, lowercase hex
//	36     8    total frame length in bytes (including header and "\n"), lowercase hex
//	44     1    '|'
//	45     n    filler: fillerAlphabet repeated, aligned to the frame start
//	45+n   1    '\n'
const (
	// FrameHeaderSize is the size of the fixed frame header.
	FrameHeaderSize = 45
	// MinFrameSize is the smallest frame: header plus the final newline.
	MinFrameSize = FrameHeaderSize + 1
	// MaxFrameSize bounds a frame (and so EchoConfig.BytesPerTick).
	MaxFrameSize = 64 << 20
)

const (
	frameMagic     = "cdl1"
	fillerAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
	hexDigits      = "0123456789abcdef"
)

// ErrBadFrame is returned (wrapped) when echoed data is not a valid frame.
var ErrBadFrame = errors.New("malformed echo frame")

// FrameHeader is the decoded header of one frame.
type FrameHeader struct {
	Seq       uint64
	SendNanos int64
	Length    int
}

// NewFrame returns a frame buffer of size bytes with header placeholder,
// filler and final newline in place; PutFrameHeader fills in each frame.
func NewFrame(size int) ([]byte, error) {
	if size < MinFrameSize || size > MaxFrameSize {
		return nil, fmt.Errorf("frame size %d out of range [%d, %d]", size, MinFrameSize, MaxFrameSize)
	}
	f := make([]byte, size)
	for i := FrameHeaderSize; i < size-1; i++ {
		f[i] = fillerAlphabet[i%len(fillerAlphabet)]
	}
	f[size-1] = '\n'
	copy(f, frameMagic)
	putHex(f[36:44], uint64(size))
	f[44] = '|'
	return f, nil
}

// PutFrameHeader writes seq and sendNanos into a buffer made by NewFrame.
func PutFrameHeader(frame []byte, seq uint64, sendNanos int64) {
	putHex(frame[4:20], seq)
	putHex(frame[20:36], uint64(sendNanos))
}

func putHex(dst []byte, v uint64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = hexDigits[v&0xf]
		v >>= 4
	}
}

func parseHex(b []byte) (uint64, bool) {
	var v uint64
	for _, c := range b {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		default:
			return 0, false
		}
		v = v<<4 | uint64(d)
	}
	return v, true
}

// ParseFrameHeader decodes the first FrameHeaderSize bytes of a frame.
func ParseFrameHeader(b []byte) (FrameHeader, error) {
	if len(b) < FrameHeaderSize {
		return FrameHeader{}, fmt.Errorf("%w: header is %d bytes, want %d", ErrBadFrame, len(b), FrameHeaderSize)
	}
	if string(b[:4]) != frameMagic || b[44] != '|' {
		return FrameHeader{}, fmt.Errorf("%w: bad magic or separator in %q", ErrBadFrame, printable(b[:FrameHeaderSize]))
	}
	seq, ok1 := parseHex(b[4:20])
	ts, ok2 := parseHex(b[20:36])
	n, ok3 := parseHex(b[36:44])
	if !ok1 || !ok2 || !ok3 {
		return FrameHeader{}, fmt.Errorf("%w: bad hex field in %q", ErrBadFrame, printable(b[:FrameHeaderSize]))
	}
	if n < MinFrameSize || n > MaxFrameSize {
		return FrameHeader{}, fmt.Errorf("%w: length %d out of range", ErrBadFrame, n)
	}
	return FrameHeader{Seq: seq, SendNanos: int64(ts), Length: int(n)}, nil
}

func printable(b []byte) string {
	if len(b) > 64 {
		b = b[:64]
	}
	return fmt.Sprintf("%q", b)
}

// FrameReader reads frames of one fixed size from an echoed byte stream,
// verifying every byte.
type FrameReader struct {
	br     *bufio.Reader
	filler []byte // a frame as made by NewFrame: the expected body bytes
	hdr    [FrameHeaderSize]byte
}

// NewFrameReader reads frames of size bytes from r. With stripCR, every '\r'
// byte is removed first (a terminal's output translation adds them; frames
// never contain one).
func NewFrameReader(r io.Reader, size int, stripCR bool) (*FrameReader, error) {
	f, err := NewFrame(size)
	if err != nil {
		return nil, err
	}
	if stripCR {
		r = &crStripper{r: r}
	}
	return &FrameReader{br: bufio.NewReaderSize(r, 64<<10), filler: f}, nil
}

// Next reads one whole frame and returns its header. It returns io.EOF if
// the stream ends cleanly between frames, io.ErrUnexpectedEOF inside one,
// and a wrapped ErrBadFrame if any byte differs from the expected frame.
func (fr *FrameReader) Next() (FrameHeader, error) {
	if _, err := io.ReadFull(fr.br, fr.hdr[:]); err != nil {
		return FrameHeader{}, err
	}
	h, err := ParseFrameHeader(fr.hdr[:])
	if err != nil {
		return FrameHeader{}, err
	}
	if h.Length != len(fr.filler) {
		return h, fmt.Errorf("%w: frame %d has length %d, want %d", ErrBadFrame, h.Seq, h.Length, len(fr.filler))
	}
	off := FrameHeaderSize
	for off < h.Length {
		want := min(h.Length-off, fr.br.Size())
		got, err := fr.br.Peek(want)
		if len(got) > 0 {
			if !bytes.Equal(got, fr.filler[off:off+len(got)]) {
				return h, fmt.Errorf("%w: frame %d body differs at byte %d", ErrBadFrame, h.Seq, off+firstDiff(got, fr.filler[off:]))
			}
			fr.br.Discard(len(got))
			off += len(got)
		}
		if err != nil && off < h.Length {
			if errors.Is(err, io.EOF) {
				return h, io.ErrUnexpectedEOF
			}
			if !errors.Is(err, bufio.ErrBufferFull) {
				return h, err
			}
		}
	}
	return h, nil
}

func firstDiff(a, b []byte) int {
	for i := range a {
		if i >= len(b) || a[i] != b[i] {
			return i
		}
	}
	return len(a)
}

// crStripper removes '\r' bytes from a stream.
type crStripper struct{ r io.Reader }

func (c *crStripper) Read(p []byte) (int, error) {
	for {
		n, err := c.r.Read(p)
		if n > 0 {
			j := 0
			for _, b := range p[:n] {
				if b != '\r' {
					p[j] = b
					j++
				}
			}
			if j > 0 || err != nil {
				return j, err
			}
			continue
		}
		return 0, err
	}
}
