package workspaces

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// DefaultUser is the SSH user name simulated workspaces expect.
const DefaultUser = "coder"

// Credentials are the SSH keys of a lab: one client key accepted by every
// workspace and one host key every workspace presents.
type Credentials struct {
	// User is the SSH user name to log in as.
	User string
	// PrivateKeyPEM is the client's private key (OpenSSH PEM, unencrypted).
	PrivateKeyPEM []byte
	// Signer is the client's key as an ssh.Signer.
	Signer ssh.Signer
	// HostSigner is the workspaces' host key.
	HostSigner ssh.Signer
}

// NewCredentials generates a fresh ed25519 client key and host key.
func NewCredentials() (*Credentials, error) {
	_, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("workspaces: generate client key: %w", err)
	}
	blk, err := ssh.MarshalPrivateKey(clientPriv, "cdeload lab client")
	if err != nil {
		return nil, fmt.Errorf("workspaces: encode client key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(clientPriv)
	if err != nil {
		return nil, fmt.Errorf("workspaces: client signer: %w", err)
	}
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("workspaces: generate host key: %w", err)
	}
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		return nil, fmt.Errorf("workspaces: host signer: %w", err)
	}
	return &Credentials{User: DefaultUser, PrivateKeyPEM: pem.EncodeToMemory(blk), Signer: signer, HostSigner: hostSigner}, nil
}

// HostKey is the workspaces' public host key.
func (c *Credentials) HostKey() ssh.PublicKey { return c.HostSigner.PublicKey() }

// AuthorizedKey is the client's public key in authorized_keys format
// (without a trailing newline).
func (c *Credentials) AuthorizedKey() string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(c.Signer.PublicKey())))
}

// HostKeyLine is the host public key in authorized_keys form
// ("ssh-ed25519 AAAA...").
func (c *Credentials) HostKeyLine() string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(c.HostKey())))
}

// KnownHostsLine returns a known_hosts line binding the host key to the
// given addresses (host or host:port).
func (c *Credentials) KnownHostsLine(addrs ...string) string {
	return knownhosts.Line(addrs, c.HostKey())
}
