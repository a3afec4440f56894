package tailnet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"tailscale.com/health"
	"tailscale.com/tailcfg"
)

// Why a join failed, wrapped in Up's errors so that the caller learns the
// cause as soon as it is known instead of a bare timeout.
var (
	// ErrControlUnreachable: the control URL refused or failed the
	// connection (nothing listens there, a bad host name).
	ErrControlUnreachable = errors.New("control server unreachable")
	// ErrNotControlServer: something answered at the control URL, but not
	// as a tailnet control server does (a web page, another API).
	ErrNotControlServer = errors.New("not a tailnet control server")
	// ErrControlNoAnswer: the control server accepted the connection but
	// did not answer in time.
	ErrControlNoAnswer = errors.New("no answer from the control server")
	// ErrAuthKeyRejected: the control server refused the node's auth key.
	ErrAuthKeyRejected = errors.New("auth key rejected by the control server")
)

// controlProbeTimeout bounds the control server check Up starts with.
const controlProbeTimeout = 10 * time.Second

// probeControl checks that controlURL is a reachable tailnet control server
// by fetching its public key (GET /key, as every client does first), so
// that a wrong URL fails at once with its cause. timeout bounds the check
// on top of ctx.
func probeControl(ctx context.Context, controlURL string, timeout time.Duration) error {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	noAnswer := func() error {
		if parent.Err() != nil { // the caller's own bound ran out first
			return fmt.Errorf("%w: %w", ErrControlNoAnswer, parent.Err())
		}
		return fmt.Errorf("%w within %v: %w", ErrControlNoAnswer, timeout, ctx.Err())
	}
	u := strings.TrimSuffix(controlURL, "/") + fmt.Sprintf("/key?v=%d", tailcfg.CurrentCapabilityVersion)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotControlServer, err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return noAnswer()
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the join's error names the URL already
		}
		return fmt.Errorf("%w: %w", ErrControlUnreachable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		if ctx.Err() != nil {
			return noAnswer()
		}
		return fmt.Errorf("%w: read the key: %w", ErrControlUnreachable, err)
	}
	what := fmt.Sprintf("GET /key answered %s", resp.Status)
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		what += " with " + ct
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: %s", ErrNotControlServer, what)
	}
	var keys tailcfg.OverTLSPublicKeyResponse
	if err := json.Unmarshal(body, &keys); err != nil || keys.PublicKey.IsZero() {
		return fmt.Errorf("%w: %s, not the server's public key", ErrNotControlServer, what)
	}
	return nil
}

// authKeyError matches a login error about the auth key, as control
// servers word it ("invalid authkey", "AuthKey not found", "invalid key").
var authKeyError = regexp.MustCompile(`(?i)auth[ _-]?key|invalid key`)

// loginRejected returns the control server's refusal of the node's auth
// key, once the node's login has failed with it, else nil. Other login
// errors may be transient and are retried by the node.
func (n *Node) loginRejected() error {
	ht, ok := n.srv.Sys().HealthTracker.GetOK()
	if !ok {
		return nil
	}
	w, ok := ht.CurrentState().Warnings[health.LoginStateWarnable.Code]
	if !ok {
		return nil
	}
	if msg := w.Args[health.ArgError]; msg != "" && authKeyError.MatchString(msg) {
		return fmt.Errorf("%w: %s", ErrAuthKeyRejected, msg)
	}
	return nil
}
