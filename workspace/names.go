package workspace

import (
	"crypto/rand"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
)

// ScaletestPrefix is the name prefix Coder's own scaletest cleanup
// recognises for users and workspaces.
const ScaletestPrefix = "scaletest-"

// ScaletestEmailDomain is the email domain of scaletest users.
const ScaletestEmailDomain = "scaletest.local"

const runIDAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// maxNameLen is Coder's limit for usernames and workspace names.
const maxNameLen = 32

// NewRunID returns a random 8-character run identifier of lowercase letters
// and digits.
func NewRunID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = runIDAlphabet[int(b[i])%len(runIDAlphabet)]
	}
	return string(b[:])
}

// Namer generates scaletest names for one run: workspaces and users are
// scaletest-<runid>-<n>, emails <runid>-<n>@scaletest.local. It is safe for
// concurrent use.
type Namer struct {
	runID string
	n     atomic.Uint64
}

// NewNamer returns a Namer for runID, which must be 1–16 lowercase letters or
// digits; an empty runID gets a random one.
func NewNamer(runID string) (*Namer, error) {
	if runID == "" {
		runID = NewRunID()
	}
	if len(runID) > 16 {
		return nil, fmt.Errorf("run id %q: longer than 16 characters", runID)
	}
	for _, r := range runID {
		if !strings.ContainsRune(runIDAlphabet, r) {
			return nil, fmt.Errorf("run id %q: only lowercase letters and digits are allowed", runID)
		}
	}
	return &Namer{runID: runID}, nil
}

// RunID returns the run identifier.
func (n *Namer) RunID() string { return n.runID }

// Prefix returns "scaletest-<runid>-", shared by every name of the run.
func (n *Namer) Prefix() string { return ScaletestPrefix + n.runID + "-" }

// Next returns the next sequence number (starting at 1).
func (n *Namer) Next() uint64 { return n.n.Add(1) }

// Name returns the workspace or user name for sequence number i.
func (n *Namer) Name(i uint64) string {
	s := n.Prefix() + strconv.FormatUint(i, 10)
	if len(s) > maxNameLen {
		s = s[:maxNameLen]
	}
	return s
}

// Email returns the scaletest email for sequence number i.
func (n *Namer) Email(i uint64) string {
	return n.runID + "-" + strconv.FormatUint(i, 10) + "@" + ScaletestEmailDomain
}

// IsScaletestName reports whether a user or workspace name belongs to a
// scaletest (any run).
func IsScaletestName(name string) bool { return strings.HasPrefix(name, ScaletestPrefix) }

// IsScaletestEmail reports whether an email belongs to a scaletest user.
func IsScaletestEmail(email string) bool {
	return strings.HasSuffix(email, "@"+ScaletestEmailDomain)
}

// BelongsToRun reports whether a scaletest name was made for run runID:
// scaletest-<runid>-<n>, or scaletest-<runid>c<k>-<n> for the k-th
// provider of a cdeload process whose run id is runID.
func BelongsToRun(name, runID string) bool {
	rest, ok := strings.CutPrefix(name, ScaletestPrefix+runID)
	if !ok {
		return false
	}
	if after, ok := strings.CutPrefix(rest, "c"); ok {
		digits := 0
		for digits < len(after) && after[digits] >= '0' && after[digits] <= '9' {
			digits++
		}
		if digits == 0 {
			return false
		}
		rest = after[digits:]
	}
	return strings.HasPrefix(rest, "-")
}
