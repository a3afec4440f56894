package coder

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// MaxTerminalChunk is the largest data chunk sent in one reconnecting-PTY
// frame (Coder's server reads frames with a ~32 KiB limit; its own clients
// send at most 1024 bytes of data per frame).
const MaxTerminalChunk = 1024

// TerminalConfig configures OpenTerminal.
type TerminalConfig struct {
	// Width and Height are the terminal size (defaults 80×24).
	Width, Height uint16
	// Command runs instead of the user's shell (optional).
	Command string
	// BackendType is "buffered" (default) or "screen".
	BackendType string
	// Reconnect is the session UUID; reusing one reattaches to the session.
	// Empty picks a random one.
	Reconnect string
}

// ReconnectingPTYRequest is a client → server frame of the reconnecting-PTY
// websocket.
type ReconnectingPTYRequest struct {
	Data   string `json:"data,omitempty"`
	Height uint16 `json:"height,omitempty"`
	Width  uint16 `json:"width,omitempty"`
}

// Terminal is a web-terminal session (Coder's reconnecting PTY) as an
// io.ReadWriteCloser: Write sends keystrokes (split into JSON frames of at
// most MaxTerminalChunk bytes of data), Read returns raw PTY output
// including the terminal's echo. Data must be valid UTF-8 (the protocol
// carries JSON strings). Read and Write may be called concurrently.
type Terminal struct {
	conn   *websocket.Conn
	rd     net.Conn
	ctx    context.Context
	cancel context.CancelFunc
	wmu    sync.Mutex
	once   sync.Once
	id     string
}

// OpenTerminal opens a reconnecting-PTY session on an agent through
// GET /api/v2/workspaceagents/{id}/pty. ctx bounds the dial only; the
// session lives until Close.
func (c *Client) OpenTerminal(ctx context.Context, agentID string, cfg TerminalConfig) (*Terminal, error) {
	t, err := c.openTerminal(ctx, agentID, cfg)
	return t, c.redact(err)
}

func (c *Client) openTerminal(ctx context.Context, agentID string, cfg TerminalConfig) (*Terminal, error) {
	if cfg.Width == 0 {
		cfg.Width = 80
	}
	if cfg.Height == 0 {
		cfg.Height = 24
	}
	switch cfg.BackendType {
	case "":
		cfg.BackendType = "buffered"
	case "buffered", "screen":
	default:
		return nil, fmt.Errorf("terminal: backend type %q: allowed values are \"buffered\" and \"screen\"", cfg.BackendType)
	}
	if cfg.Reconnect == "" {
		cfg.Reconnect = NewUUID()
	} else if _, ok := parseUUID(cfg.Reconnect); !ok {
		return nil, fmt.Errorf("terminal: reconnect %q: must be a UUID", cfg.Reconnect)
	}
	u := c.URL()
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	default:
		u.Scheme = "ws"
	}
	path := "/api/v2/workspaceagents/" + esc(agentID) + "/pty"
	u.Path += path
	q := url.Values{}
	q.Set("reconnect", cfg.Reconnect)
	q.Set("width", strconv.Itoa(int(cfg.Width)))
	q.Set("height", strconv.Itoa(int(cfg.Height)))
	if cfg.Command != "" {
		q.Set("command", cfg.Command)
	}
	q.Set("backend_type", cfg.BackendType)
	u.RawQuery = q.Encode()

	h := http.Header{}
	h.Set("User-Agent", c.opts.UserAgent)
	if c.token != "" {
		h.Set(SessionTokenHeader, c.token)
	}
	if c.opts.BypassRateLimit {
		h.Set(BypassRatelimitHeader, "true")
	}
	c.stats.requests.Add(1)
	conn, resp, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{
		HTTPClient:      c.http,
		HTTPHeader:      h,
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			apiErr := &APIError{Method: http.MethodGet, Path: path, Status: resp.StatusCode}
			if resp.Body != nil {
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
				if json.Unmarshal(body, &apiErr.Response) != nil || apiErr.Message == "" {
					apiErr.Message = truncate(string(body), 200)
				}
			}
			return nil, fmt.Errorf("terminal on agent %s: %w", agentID, apiErr)
		}
		return nil, fmt.Errorf("terminal on agent %s: GET %s: %w", agentID, path, err)
	}
	conn.SetReadLimit(1 << 20)
	tctx, cancel := context.WithCancel(context.Background())
	return &Terminal{
		conn:   conn,
		rd:     websocket.NetConn(tctx, conn, websocket.MessageBinary),
		ctx:    tctx,
		cancel: cancel,
		id:     cfg.Reconnect,
	}, nil
}

// ReconnectID returns the session's reconnect UUID.
func (t *Terminal) ReconnectID() string { return t.id }

// Read reads PTY output. It returns io.EOF when the session ended.
func (t *Terminal) Read(p []byte) (int, error) {
	return t.rd.Read(p)
}

// Write sends p as keystrokes, in frames of at most MaxTerminalChunk bytes
// split on UTF-8 boundaries.
func (t *Terminal) Write(p []byte) (int, error) {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	written := 0
	for len(p) > 0 {
		n := min(len(p), MaxTerminalChunk)
		if n < len(p) {
			for k := 0; k < utf8.UTFMax-1 && n > 1 && !utf8.RuneStart(p[n]); k++ {
				n--
			}
		}
		if err := t.send(ReconnectingPTYRequest{Data: string(p[:n])}); err != nil {
			return written, err
		}
		written += n
		p = p[n:]
	}
	return written, nil
}

// Resize changes the terminal size.
func (t *Terminal) Resize(width, height uint16) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	return t.send(ReconnectingPTYRequest{Width: width, Height: height})
}

func (t *Terminal) send(req ReconnectingPTYRequest) error {
	msg, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("terminal: encode frame: %w", err)
	}
	if err := t.conn.Write(t.ctx, websocket.MessageBinary, msg); err != nil {
		return fmt.Errorf("terminal: write: %w", err)
	}
	return nil
}

// Close sends Ctrl-C to the session and closes the websocket.
func (t *Terminal) Close() error {
	var err error
	t.once.Do(func() {
		t.wmu.Lock()
		wctx, cancel := context.WithTimeout(t.ctx, time.Second)
		msg, _ := json.Marshal(ReconnectingPTYRequest{Data: "\x03"})
		_ = t.conn.Write(wctx, websocket.MessageBinary, msg)
		cancel()
		t.wmu.Unlock()
		err = t.conn.Close(websocket.StatusNormalClosure, "")
		if errors.Is(err, net.ErrClosed) || websocket.CloseStatus(err) != -1 {
			err = nil
		}
		t.cancel()
	})
	return err
}

// NewUUID returns a random (version 4) UUID string.
func NewUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	const hexd = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, x := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hexd[x>>4], hexd[x&15])
	}
	return string(out)
}
