package protocol

import (
	"errors"
	"fmt"
)

// Error codes carried in an error answer's result.
const (
	// CodeBadRequest: the body is not valid JSON, not an object, its "in" is
	// missing or not a string, or the method cannot take its params.
	CodeBadRequest = "bad_request"
	// CodeUnknownMethod: no handler is registered under "in".
	CodeUnknownMethod = "unknown_method"
	// CodeInternal: the handler failed (it panicked or returned an error that
	// carries no code). The connection and the worker carry on.
	CodeInternal = "internal"
	// CodeFrameTooLarge: the length prefix exceeds the server's maximum. The
	// server closes the connection after answering.
	CodeFrameTooLarge = "frame_too_large"
	// CodeBadFrame: the length prefix is zero. The server closes the connection
	// after answering.
	CodeBadFrame = "bad_frame"
	// CodeOverloaded: the server has no room to queue the request now; it was
	// not run, and may be sent again later.
	CodeOverloaded = "overloaded"
	// CodeTimeout: the handler did not answer within the server's handler
	// timeout. It may still have run, in part or in full.
	CodeTimeout = "timeout"
	// CodeUnavailable: a service the method depends on (such as the cache's
	// Redis) is not configured or not reachable now. The connection carries on.
	CodeUnavailable = "unavailable"
)

// Error is an error answer: a code from the Code* constants (or a handler's own)
// and a human-readable message.
type Error struct {
	Code    string
	Message string
}

// Errorf returns an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// ErrorFor is the error answer for err: the *Error err is or wraps, else an
// *Error with code and err's text.
func ErrorFor(err error, code string) *Error {
	if e := (*Error)(nil); errors.As(err, &e) {
		return e
	}
	return &Error{Code: code, Message: err.Error()}
}
