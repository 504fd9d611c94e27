package socketcluster

import (
	"sync/atomic"

	"github.com/socketcluster-go/socketcluster/internal/wire"
)

// Request is one invoke from a client, delivered to Socket.Procedure(name).
// Answer it once, with End or Error; a second answer returns an
// InvalidActionError and sends nothing. A request that is never answered
// makes the client time out.
type Request struct {
	// Procedure is the invoked name.
	Procedure string
	// Data is what the client sent (after middleware).
	Data Data
	// Socket is the socket that invoked.
	Socket *Socket
	// ID is the client's cid.
	ID float64

	sent atomic.Bool
}

// Sent reports whether the request was answered.
func (r *Request) Sent() bool { return r.sent.Load() }

func (r *Request) claim() error {
	if r.sent.Swap(true) {
		return errInvalidAction("Response to request " + string(wire.AppendNumber(nil, r.ID)) + " has already been sent")
	}
	return nil
}

// End answers with data: pass Undefined for a response without data
// ({"rid":N}), nil for null, a Data to send raw JSON back unchanged, or any
// value encoding/json can marshal.
func (r *Request) End(data any) error {
	raw, err := encodeValue(data)
	if err != nil {
		return err
	}
	if err := r.claim(); err != nil {
		return err
	}
	r.Socket.sendResponse(r.ID, raw, nil)
	return nil
}

// Error answers with an error: an *Error gives the client a named error
// with fields, a protocol.StringError a bare string, any other error
// {"message": err.Error()} (a plain JavaScript Error).
func (r *Request) Error(err error) error {
	if err == nil {
		return r.End(Undefined)
	}
	raw, encErr := appendError(nil, err)
	if encErr != nil {
		return encErr
	}
	if e := r.claim(); e != nil {
		return e
	}
	r.Socket.sendResponse(r.ID, nil, raw)
	return nil
}
