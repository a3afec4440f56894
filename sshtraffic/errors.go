package sshtraffic

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// ErrNoHostKeyPolicy is returned by Connect when ClientConfig sets no host
// key policy. The message uses the option names of the JavaScript API.
var ErrNoHostKeyPolicy = errors.New("no host key policy: set knownHostKey, knownHostsFile or insecureSkipHostKeyCheck")

// ErrAuthFailed is returned (wrapped) by Connect when the server rejected
// every authentication method offered.
var ErrAuthFailed = errors.New("ssh authentication failed")

// ErrNoExitStatus is returned (wrapped) when a remote command's channel
// closed without an exit-status or exit-signal.
var ErrNoExitStatus = errors.New("remote command ended without an exit status")

// ErrFarEndClosed is returned (wrapped) by Echo when the far end closed the
// stream or the connection before every frame came back.
var ErrFarEndClosed = errors.New("far end closed the stream")

// ExitError reports a remote command that exited with a non-zero status or
// was killed by a signal.
type ExitError struct {
	// Code is the exit status; for a signal it is 128 + the signal number
	// (as a shell reports it), or 128 if the signal is unknown.
	Code int
	// Signal is the signal name without "SIG" (e.g. "TERM"), or empty.
	Signal string
	// Stderr holds the start of the command's standard error, if captured.
	Stderr []byte
}

func (e *ExitError) Error() string {
	var b strings.Builder
	if e.Signal != "" {
		fmt.Fprintf(&b, "remote command killed by signal %s", e.Signal)
	} else {
		fmt.Fprintf(&b, "remote command exited with status %d", e.Code)
	}
	if msg := firstLine(e.Stderr, 200); msg != "" {
		fmt.Fprintf(&b, ": %s", msg)
	}
	return b.String()
}

func firstLine(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}

// HostKeyError reports a host key that the configured policy rejected.
type HostKeyError struct {
	// Host is the address the key was checked for.
	Host string
	// Got is the key the server presented.
	Got ssh.PublicKey
	// Want lists the keys the policy accepts for Host; empty means the host
	// is not in the known_hosts file at all.
	Want []ssh.PublicKey
	// Revoked is set when the key is marked @revoked in known_hosts.
	Revoked bool
}

func (e *HostKeyError) Error() string {
	got := ssh.FingerprintSHA256(e.Got)
	switch {
	case e.Revoked:
		return fmt.Sprintf("host key for %s is revoked: %s %s", e.Host, e.Got.Type(), got)
	case len(e.Want) == 0:
		return fmt.Sprintf("host key for %s is unknown (not in known_hosts): server presented %s %s", e.Host, e.Got.Type(), got)
	}
	want := make([]string, len(e.Want))
	for i, k := range e.Want {
		want[i] = k.Type() + " " + ssh.FingerprintSHA256(k)
	}
	return fmt.Sprintf("host key mismatch for %s: server presented %s %s, want %s", e.Host, e.Got.Type(), got, strings.Join(want, " or "))
}

// exitErrorFrom converts x/crypto/ssh's wait errors; ok is false for other
// errors.
func exitErrorFrom(err error, stderr []byte) (*ExitError, bool, error) {
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		return &ExitError{Code: ee.ExitStatus(), Signal: ee.Signal(), Stderr: stderr}, true, nil
	}
	var em *ssh.ExitMissingError
	if errors.As(err, &em) {
		return nil, false, ErrNoExitStatus
	}
	return nil, false, err
}
