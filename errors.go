package socketcluster

import (
	"errors"

	"github.com/socketcluster-go/socketcluster/protocol"
)

// Error is a SocketCluster error as it crosses the wire (docs/protocol.md
// §5.1): a message, an optional name and extra fields in order. On the wire
// it is {"message":…,"name":…,…fields}; an empty Name is left out (the
// client then sees the name "Error"). See protocol.Error.
//
// Return an *Error from a procedure (Request.Error) or a middleware to give
// the client a named error, e.g. NewError("FailError", "it failed").
type Error = protocol.Error

// NewError returns an error with a name and message.
func NewError(name, message string) *Error { return protocol.NewError(name, message) }

// Sentinel errors of the Go API.
var (
	// ErrClosed: the socket or server is closed.
	ErrClosed = errors.New("socketcluster: closed")
	// ErrAlreadySent: a request was answered twice.
	ErrAlreadySent = errors.New("socketcluster: response already sent")
)

// Errors the server produces, by name (docs/protocol.md §5.2).
func errTimeout(event string) *Error { return protocol.TimeoutError(event) }

func errBadConnection(msg, typ string, code protocol.CloseCode, reason string) *Error {
	return protocol.BadConnectionError(msg, typ, code, reason)
}

func errInvalidAction(msg string) *Error { return protocol.InvalidActionError(msg) }

func errSocketProtocol(code protocol.CloseCode, reason string) *Error {
	return protocol.SocketProtocolError(code, reason)
}

// appendError writes the wire form of err (protocol.AppendError).
func appendError(dst []byte, err error) ([]byte, error) { return protocol.AppendError(dst, err) }
