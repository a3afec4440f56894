package k6http

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
)

// k6's error codes for failed requests (error_code tag and res.error_code).
const (
	codeGeneric         = 1000
	codeNonTCPNetwork   = 1010
	codeInvalidURL      = 1020
	codeRequestTimeout  = 1050
	codeDNS             = 1100
	codeNoIP            = 1101
	codeTCPDial         = 1200
	codeDialTimeout     = 1201
	codeConnRefused     = 1202
	codeTCPReset        = 1210
	codeTCPPipe         = 1220
	codeTLS             = 1300
	codeTLSUnknownAuth  = 1310
	codeTLSHostMismatch = 1311
	codeHTTP2Generic    = 1600
)

// errTimeout is the error of a request that ran out of its timeout.
var errTimeout = errors.New("request timeout")

// classify returns k6's error code and message for a request error.
func classify(err error) (int, string) {
	if err == nil {
		return 0, ""
	}
	msg := err.Error()
	var ue *url.Error
	if errors.As(err, &ue) {
		msg = ue.Err.Error()
	}
	switch {
	case errors.Is(err, errTimeout), errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return codeRequestTimeout, errTimeout.Error()
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		if dnsErr.IsNotFound {
			return codeNoIP, msg
		}
		return codeDNS, msg
	}
	var unk x509.UnknownAuthorityError
	if errors.As(err, &unk) {
		return codeTLSUnknownAuth, "x509: certificate signed by unknown authority"
	}
	var host x509.HostnameError
	if errors.As(err, &host) {
		return codeTLSHostMismatch, msg
	}
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) {
		return codeTLS, msg
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			return codeConnRefused, msg
		case errors.Is(err, syscall.ECONNRESET):
			return codeTCPReset, msg
		case errors.Is(err, syscall.EPIPE):
			return codeTCPPipe, msg
		case opErr.Op == "dial":
			if opErr.Timeout() {
				return codeDialTimeout, msg
			}
			return codeTCPDial, msg
		case opErr.Op == "remote error" || strings.Contains(msg, "tls:"):
			return codeTLS, msg
		}
		return codeNonTCPNetwork, msg
	}
	if strings.Contains(msg, "tls:") {
		return codeTLS, msg
	}
	if strings.Contains(msg, "http2:") {
		return codeHTTP2Generic, msg
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return codeGeneric, msg
	}
	return codeGeneric, msg
}
