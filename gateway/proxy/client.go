// Package proxy hands socket events to an application backend over HTTP,
// so that the backend (in any language) decides who connects, who
// subscribes and publishes where, answers procedures, and refreshes
// tokens. See docs/gateway.md for the protocol seen by the backend.
//
// Each proxied event is one POST of a JSON Request to the URL configured
// for it. The backend answers 200 with a JSON object holding exactly one of:
//
//	{"result": {...}}                            allowed / the answer
//	{"error": {"name": "…", "message": "…"}}     refused: the client gets this error
//	{"disconnect": {"code": 4403, "reason": "…"}} refused, and the socket is closed
//
// Anything else (a status other than 200, a redirect, a body that is not
// such an object, no answer within the timeout) is a failure of the
// backend: the client gets a BackendUnavailableError or a
// BackendTimeoutError, the failure is logged and counted, and nothing is
// allowed.
package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/socketcluster-go/socketcluster/protocol"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
)

// Request is the body the backend receives.
type Request struct {
	// Event is "connect", "subscribe", "publish", "rpc" or "refresh".
	Event         string            `json:"event"`
	SocketID      string            `json:"socketId"`
	User          string            `json:"user,omitempty"`
	AuthToken     map[string]any    `json:"authToken,omitempty"`
	RemoteAddress string            `json:"remoteAddress,omitempty"`
	Headers       map[string]string `json:"headers,omitempty"`
	Query         string            `json:"query,omitempty"`     // the upgrade URL's query string (connect)
	Channel       string            `json:"channel,omitempty"`   // subscribe, publish
	Procedure     string            `json:"procedure,omitempty"` // rpc
	Data          json.RawMessage   `json:"data,omitempty"`      // publish, rpc, subscribe
}

// Reply is the backend's answer.
type Reply struct {
	Result     json.RawMessage `json:"result"`
	Error      json.RawMessage `json:"error"`
	Disconnect *Disconnect     `json:"disconnect"`
}

// Disconnect asks for the socket to be closed.
type Disconnect struct {
	Code   protocol.CloseCode `json:"code"`
	Reason string             `json:"reason"`
}

// Errors of the backend as the client gets them (their Name).
const (
	ErrNameUnavailable = "BackendUnavailableError"
	ErrNameTimeout     = "BackendTimeoutError"
	ErrNameBusy        = "BackendBusyError"
)

// Stats count the proxied requests by outcome.
type Stats struct {
	OK          int64 `json:"ok"`          // result
	Refused     int64 `json:"refused"`     // error or disconnect
	Timeouts    int64 `json:"timeouts"`    // no answer in time
	Unavailable int64 `json:"unavailable"` // transport failure, status, redirect, garbage
	Busy        int64 `json:"busy"`        // no free slot in time
}

// caller posts requests to the backend with a bounded number in flight.
type caller struct {
	hc           *http.Client
	timeout      time.Duration
	queueTimeout time.Duration
	maxBody      int64
	slots        chan struct{}
	log          *slog.Logger
	logLimit     rateLimit

	ok, refused, timeouts, unavailable, busy atomic.Int64
}

// refusal is a backend's explicit no.
type refusal struct {
	err        *sc.Error
	disconnect *Disconnect
}

func (r *refusal) Error() string { return r.err.Error() }

// backendError is a failure of the backend, already in client form.
type backendError struct{ err *sc.Error }

func (b *backendError) Error() string { return b.err.Error() }

// call posts req to url and returns the result, a *refusal, or a
// *backendError.
func (c *caller) call(ctx context.Context, url string, req *Request) (json.RawMessage, error) {
	qctx, qcancel := context.WithTimeout(ctx, c.queueTimeout)
	select {
	case c.slots <- struct{}{}:
		qcancel()
		defer func() { <-c.slots }()
	case <-qctx.Done():
		qcancel()
		c.busy.Add(1)
		c.warn("no free slot for a backend request", req, url, qctx.Err())
		return nil, &backendError{sc.NewError(ErrNameBusy, "The backend has too many requests in flight")}
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(hr)
	if err != nil {
		return nil, c.failed(ctx, req, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
	if err != nil {
		return nil, c.failed(ctx, req, url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, c.failed(ctx, req, url, fmt.Errorf("status %s", resp.Status))
	}
	if int64(len(raw)) > c.maxBody {
		return nil, c.failed(ctx, req, url, fmt.Errorf("answer larger than %d bytes", c.maxBody))
	}
	rep, err := parseReply(raw)
	if err != nil {
		return nil, c.failed(ctx, req, url, err)
	}
	if rep.Result != nil {
		c.ok.Add(1)
		return rep.Result, nil
	}
	c.refused.Add(1)
	ref := &refusal{disconnect: rep.Disconnect}
	if rep.Disconnect != nil {
		ref.err = sc.NewError("BackendRefusedError", rep.Disconnect.Reason)
	} else {
		ref.err = backendErr(rep.Error)
	}
	return nil, ref
}

// parseReply requires exactly one of result, error, disconnect.
func parseReply(raw []byte) (*Reply, error) {
	var rep Reply
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&rep); err != nil {
		return nil, fmt.Errorf("answer is not a JSON object: %v", err)
	}
	if dec.More() {
		return nil, errors.New("answer has data after the JSON object")
	}
	n := 0
	if rep.Result != nil && string(rep.Result) != "null" {
		n++
	} else {
		rep.Result = nil
	}
	if rep.Error != nil && string(rep.Error) != "null" {
		n++
	} else {
		rep.Error = nil
	}
	if rep.Disconnect != nil {
		n++
		if !rep.Disconnect.Code.Valid() || rep.Disconnect.Code < 4000 {
			return nil, fmt.Errorf("disconnect code %d is not an application close code (4000-4999)", rep.Disconnect.Code)
		}
	}
	if n != 1 {
		return nil, errors.New(`answer must hold exactly one of "result", "error", "disconnect"`)
	}
	return &rep, nil
}

// backendErr turns the backend's error (an object with name and message,
// or a string) into the client's error.
func backendErr(raw json.RawMessage) *sc.Error {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return sc.NewError("BackendError", s)
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return sc.NewError("BackendError", string(raw))
	}
	name, _ := m["name"].(string)
	msg, _ := m["message"].(string)
	if name == "" {
		name = "BackendError"
	}
	e := sc.NewError(name, msg)
	for k, v := range m {
		if k != "name" && k != "message" && k != "stack" {
			e.With(k, v)
		}
	}
	return e
}

func (c *caller) failed(ctx context.Context, req *Request, url string, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		c.timeouts.Add(1)
		c.warn("backend request timed out", req, url, err)
		return &backendError{sc.NewError(ErrNameTimeout, fmt.Sprintf("The backend did not answer within %v", c.timeout))}
	}
	c.unavailable.Add(1)
	c.warn("backend request failed", req, url, err)
	return &backendError{sc.NewError(ErrNameUnavailable, "The backend is unavailable")}
}

func (c *caller) warn(msg string, req *Request, url string, err error) {
	if c.logLimit.allow() {
		c.log.Warn("proxy: "+msg, "event", req.Event, "url", url, "socket", req.SocketID, "error", err.Error(), "suppressed", c.logLimit.takeSuppressed())
	}
}

func (c *caller) stats() Stats {
	return Stats{OK: c.ok.Load(), Refused: c.refused.Load(), Timeouts: c.timeouts.Load(), Unavailable: c.unavailable.Load(), Busy: c.busy.Load()}
}

// rateLimit lets one log line a second through, counting the rest.
type rateLimit struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (r *rateLimit) allow() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.last) < time.Second {
		r.suppressed++
		return false
	}
	r.last = time.Now()
	return true
}

func (r *rateLimit) takeSuppressed() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.suppressed
	r.suppressed = 0
	return n
}
