package sshserver

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"golang.org/x/crypto/ssh"
)

// maxCanonLine is Linux's canonical-mode line limit (N_TTY_BUF_SIZE - 1).
const maxCanonLine = 4095

// termModes holds terminal mode values keyed by RFC 4254 opcode.
type termModes map[uint8]uint32

// linuxDefaultModes are the settings of a fresh Linux pty, the starting point
// that a pty-req's modes are applied to.
func linuxDefaultModes() termModes {
	return termModes{
		ssh.VINTR: 3, ssh.VQUIT: 28, ssh.VERASE: 127, ssh.VKILL: 21, ssh.VEOF: 4,
		ssh.ICRNL: 1, ssh.IXON: 1,
		ssh.ISIG: 1, ssh.ICANON: 1, ssh.ECHO: 1, ssh.ECHOE: 1, ssh.ECHOK: 1,
		ssh.ECHOCTL: 1, ssh.ECHOKE: 1, ssh.IEXTEN: 1,
		ssh.OPOST: 1, ssh.ONLCR: 1,
	}
}

// parseModes decodes the encoded terminal modes of a pty-req (RFC 4254
// section 8) on top of Linux's defaults.
func parseModes(b []byte) (termModes, error) {
	m := linuxDefaultModes()
	for len(b) > 0 {
		op := b[0]
		if op == 0 || op >= 160 { // TTY_OP_END, or opcodes without a defined argument
			break
		}
		if len(b) < 5 {
			return nil, fmt.Errorf("terminal mode %d: truncated argument", op)
		}
		m[op] = binary.BigEndian.Uint32(b[1:5])
		b = b[5:]
	}
	return m, nil
}

func (m termModes) on(op uint8) bool { return m[op] != 0 }

// isChar reports whether c is the (enabled) control character for op.
func (m termModes) isChar(op uint8, c byte) bool {
	v, ok := m[op]
	return ok && v != 0 && v != 255 && uint32(c) == v
}

// lineDiscipline is a small model of Linux's N_TTY line discipline between
// the SSH channel (the pty master) and the command (the pty slave).
type lineDiscipline struct {
	modes termModes

	sizeMu     sync.Mutex
	cols, rows uint32

	outMu     sync.Mutex // serialises tty echo and command output, like n_tty's output lock
	outClosed bool       // under outMu: the channel's output side is shut

	pr      *io.PipeReader
	pw      *io.PipeWriter
	deliver func(sig string)
	line    []byte
}

func newLineDiscipline(m termModes, cols, rows uint32) *lineDiscipline {
	return &lineDiscipline{modes: m, cols: cols, rows: rows}
}

func (t *lineDiscipline) setSize(cols, rows uint32) {
	t.sizeMu.Lock()
	t.cols, t.rows = cols, rows
	t.sizeMu.Unlock()
}

// start creates the command's input and returns it; deliver is called for
// tty-generated signals.
func (t *lineDiscipline) start(_ ssh.Channel, deliver func(string)) io.Reader {
	t.pr, t.pw = io.Pipe()
	t.deliver = deliver
	return t.pr
}

// closeInput makes the command's pending and future reads return EOF.
func (t *lineDiscipline) closeInput() {
	t.pw.Close()
}

// output returns the command's stdout/stderr: output processing applied,
// writes serialised with the tty's echo.
func (t *lineDiscipline) output(w io.Writer) io.Writer {
	return &ttyWriter{t: t, w: w}
}

type ttyWriter struct {
	t   *lineDiscipline
	w   io.Writer
	buf []byte
}

func (tw *ttyWriter) Write(b []byte) (int, error) {
	tw.t.outMu.Lock()
	defer tw.t.outMu.Unlock()
	if tw.t.outClosed {
		return 0, io.ErrClosedPipe
	}
	out := tw.t.processOutput(tw.buf[:0], b)
	tw.buf = out[:0]
	if _, err := tw.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}

// processOutput appends b to dst with OPOST translations applied.
func (t *lineDiscipline) processOutput(dst, b []byte) []byte {
	if !t.modes.on(ssh.OPOST) || (!t.modes.on(ssh.ONLCR) && !t.modes.on(ssh.OCRNL)) {
		return append(dst, b...)
	}
	for _, c := range b {
		switch {
		case c == '\n' && t.modes.on(ssh.ONLCR):
			dst = append(dst, '\r', '\n')
		case c == '\r' && t.modes.on(ssh.OCRNL):
			dst = append(dst, '\n')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// echo writes b back to the master side through output processing.
func (t *lineDiscipline) echo(w io.Writer, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	t.outMu.Lock()
	defer t.outMu.Unlock()
	if t.outClosed {
		return io.ErrClosedPipe
	}
	_, err := w.Write(t.processOutput(nil, b))
	return err
}

// shutOutput runs shut (which ends the channel's output: exit status,
// EOF, close) with the output lock held, and makes later echo and command
// writes fail, so nothing writes to the channel while or after it closes.
func (t *lineDiscipline) shutOutput(shut func()) {
	t.outMu.Lock()
	defer t.outMu.Unlock()
	t.outClosed = true
	shut()
}

// echoChar returns how c is echoed (ECHOCTL shows control chars as ^X).
func (t *lineDiscipline) echoChar(dst []byte, c byte) []byte {
	if t.modes.on(ssh.ECHOCTL) && (c < 0x20 || c == 0x7f) && c != '\n' && c != '\t' {
		return append(dst, '^', c^0x40)
	}
	return append(dst, c)
}

// pump reads the master side (the SSH channel) and feeds the command until
// the channel's input ends. As with sshd, the channel's EOF is not turned
// into an EOF for the command.
func (t *lineDiscipline) pump(ctx context.Context, ch ssh.Channel) {
	buf := make([]byte, 32<<10)
	var echoBuf, inBuf []byte
	for ctx.Err() == nil {
		n, err := ch.Read(buf)
		if n > 0 {
			echoBuf, inBuf = echoBuf[:0], inBuf[:0]
			var eof bool
			echoBuf, inBuf, eof = t.input(buf[:n], echoBuf, inBuf)
			if t.modes.on(ssh.ECHO) || t.modes.on(ssh.ECHONL) {
				if t.echo(ch, echoBuf) != nil {
					return
				}
			}
			if len(inBuf) > 0 {
				if _, werr := t.pw.Write(inBuf); werr != nil {
					return
				}
			}
			if eof {
				t.pw.Close()
			}
		}
		if err != nil {
			return
		}
	}
}

// input runs the input half of the line discipline over b, appending what
// to echo and what the command may now read. eof reports a VEOF on an empty
// line.
func (t *lineDiscipline) input(b, echoBuf, inBuf []byte) (_, _ []byte, eof bool) {
	m := t.modes
	echoOn := m.on(ssh.ECHO)
	for _, c := range b {
		if m.on(ssh.ISTRIP) {
			c &= 0x7f
		}
		switch {
		case c == '\r' && m.on(ssh.IGNCR):
			continue
		case c == '\r' && m.on(ssh.ICRNL):
			c = '\n'
		case c == '\n' && m.on(ssh.INLCR):
			c = '\r'
		}
		if m.on(ssh.ISIG) {
			sig := ""
			switch {
			case m.isChar(ssh.VINTR, c):
				sig = "INT"
			case m.isChar(ssh.VQUIT, c):
				sig = "QUIT"
			}
			if sig != "" {
				if echoOn {
					echoBuf = t.echoChar(echoBuf, c)
				}
				t.line = t.line[:0]
				t.deliver(sig)
				continue
			}
		}
		if !m.on(ssh.ICANON) {
			if echoOn {
				echoBuf = append(echoBuf, c)
			}
			inBuf = append(inBuf, c)
			continue
		}
		switch {
		case m.isChar(ssh.VERASE, c):
			if len(t.line) > 0 {
				t.line = t.line[:len(t.line)-1]
				if echoOn && m.on(ssh.ECHOE) {
					echoBuf = append(echoBuf, '\b', ' ', '\b')
				}
			}
		case m.isChar(ssh.VKILL, c):
			if echoOn {
				if m.on(ssh.ECHOKE) {
					echoBuf = append(echoBuf, bytes.Repeat([]byte("\b \b"), len(t.line))...)
				} else {
					echoBuf = t.echoChar(echoBuf, c)
					if m.on(ssh.ECHOK) {
						echoBuf = append(echoBuf, '\n')
					}
				}
			}
			t.line = t.line[:0]
		case m.isChar(ssh.VEOF, c):
			if len(t.line) == 0 {
				return echoBuf, inBuf, true
			}
			inBuf = append(inBuf, t.line...)
			t.line = t.line[:0]
		case c == '\n':
			if echoOn || m.on(ssh.ECHONL) {
				echoBuf = append(echoBuf, '\n')
			}
			inBuf = append(append(inBuf, t.line...), '\n')
			t.line = t.line[:0]
		default:
			if len(t.line) >= maxCanonLine {
				continue // Linux drops characters beyond the line limit
			}
			if echoOn {
				echoBuf = t.echoChar(echoBuf, c)
			}
			t.line = append(t.line, c)
		}
	}
	return echoBuf, inBuf, false
}
