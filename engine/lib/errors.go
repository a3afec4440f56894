package lib

import (
	"errors"
	"fmt"
)

// ExitCode is a process exit code with k6's meaning.
type ExitCode int

// k6's exit codes.
const (
	ExitOK               ExitCode = 0
	ExitThresholdsFailed ExitCode = 99
	ExitSetupTimeout     ExitCode = 100
	ExitTeardownTimeout  ExitCode = 101
	ExitGenericTimeout   ExitCode = 102
	ExitStoppedByAPI     ExitCode = 103
	ExitInvalidConfig    ExitCode = 104
	ExitExternalAbort    ExitCode = 105
	ExitCannotStartAPI   ExitCode = 106
	ExitScriptException  ExitCode = 107
	ExitScriptAborted    ExitCode = 108
	ExitGoPanic          ExitCode = 109
	ExitMarkedAsFailed   ExitCode = 110
	ExitUnknown          ExitCode = 255
)

// CodedError is an error that carries the exit code it causes.
type CodedError struct {
	Code ExitCode
	Err  error
}

func (e *CodedError) Error() string { return e.Err.Error() }
func (e *CodedError) Unwrap() error { return e.Err }

// WithExitCode wraps err so that it carries code. A nil err stays nil.
func WithExitCode(code ExitCode, err error) error {
	if err == nil {
		return nil
	}
	return &CodedError{Code: code, Err: err}
}

// Errorf is fmt.Errorf with an exit code.
func Errorf(code ExitCode, format string, args ...any) error {
	return &CodedError{Code: code, Err: fmt.Errorf(format, args...)}
}

// ExitCodeOf returns the exit code carried by err: ExitOK for nil, the
// first CodedError in its chain, else ExitUnknown.
func ExitCodeOf(err error) ExitCode {
	if err == nil {
		return ExitOK
	}
	var ce *CodedError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return ExitUnknown
}

// ErrInterrupted is returned by RunOnce when the iteration was cut short by
// the end of its RunContext: it counts as interrupted, not complete.
var ErrInterrupted = errors.New("iteration interrupted")

// AbortError is returned by RunOnce after exec.test.abort(): the whole run
// stops with exit code 108.
type AbortError struct {
	Reason string
	// Location is the script frame that called abort, as k6 prints it
	// ("default (file:///path/script.js:11:13(4))"); empty when unknown.
	Location string
}

func (e *AbortError) Error() string {
	msg := "test aborted"
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	if e.Location != "" {
		msg += " at " + e.Location
	}
	return msg
}
