package client

import (
	"context"
	"math"
	"sync/atomic"
	"time"

	"github.com/socketcluster-go/socketcluster/internal/wire"
	"github.com/socketcluster-go/socketcluster/protocol"
)

// Invoke calls the server's procedure and waits for its answer, at most
// Options.AckTimeout (a TimeoutError) and at most ctx. data follows the
// server API's rules: socketcluster.Undefined sends no data, nil sends
// null, a socketcluster.Data is sent as raw JSON, anything else through
// encoding/json.
//
// The answer is raw JSON: nil when the server answered without data,
// Data("null") for null. An error answer is an *socketcluster.Error (name,
// message, fields) or, for a non-object error, a *protocol.ValueError.
// When the connection drops before the answer, Invoke fails with a
// BadConnectionError; an invoke made while reconnecting is queued and sent
// once connected. On a closed client it returns ErrClosed.
func (c *Client) Invoke(ctx context.Context, procedure string, data any) (protocol.Data, error) {
	raw, err := protocol.MarshalData(data)
	if err != nil {
		return nil, err
	}
	return c.invoke(ctx, procedure, raw)
}

func (c *Client) invoke(ctx context.Context, event string, raw []byte) (protocol.Data, error) {
	res := make(chan result, 1)
	cl := &call{event: event, done: func(d protocol.Data, err error) { res <- result{d, err} }}
	cid, err := c.send(event, raw, cl)
	if err != nil {
		return nil, err
	}
	timer := time.NewTimer(c.opts.AckTimeout)
	defer timer.Stop()
	select {
	case r := <-res:
		return r.data, r.err
	case <-timer.C:
		err = protocol.TimeoutError(event)
	case <-ctx.Done():
		err = ctx.Err()
	}
	if c.abandon(cid) {
		return nil, err
	}
	r := <-res // answered meanwhile
	return r.data, r.err
}

// Transmit sends an event to the server (fire and forget): the server's
// socket.Receiver(event) or Server.HandleReceiver gets data. While
// reconnecting it is queued and dropped if not sent within AckTimeout.
func (c *Client) Transmit(event string, data any) error {
	raw, err := protocol.MarshalData(data)
	if err != nil {
		return err
	}
	_, err = c.send(event, raw, nil)
	return err
}

// send writes an invoke (cl != nil) or a transmit now if the client is
// open, or queues it while connecting.
func (c *Client) send(event string, raw []byte, cl *call) (uint64, error) {
	c.mu.Lock()
	if c.terminal || c.state == StateClosed {
		c.mu.Unlock()
		return 0, ErrClosed
	}
	var cid uint64
	var f []byte
	if cl != nil {
		c.nextCid++
		cid = c.nextCid
		c.calls[cid] = cl
		f = appendInvoke(nil, event, raw, cid)
	} else {
		f = appendTransmit(nil, event, raw)
	}
	if c.state != StateOpen {
		c.outbox = append(c.outbox, outItem{frame: f, cid: cid, deadline: time.Now().Add(c.opts.AckTimeout)})
		c.mu.Unlock()
		return cid, nil
	}
	cn := c.cn
	if cl != nil {
		cl.cn = cn
	}
	c.mu.Unlock()
	if err := cn.write(f); err != nil && cl == nil {
		// An invoke is failed by the close that follows; a transmit is lost.
		return 0, err
	}
	return cid, nil
}

// abandon forgets a call (timeout, ctx); false if it was already answered.
func (c *Client) abandon(cid uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.calls[cid]; !ok {
		return false
	}
	delete(c.calls, cid)
	for i, it := range c.outbox {
		if it.cid == cid {
			c.outbox = append(c.outbox[:i], c.outbox[i+1:]...)
			break
		}
	}
	return true
}

// Request is an invoke from the server, delivered to Procedure(name).
// Answer it once with End or Error.
type Request struct {
	// Procedure is the invoked name.
	Procedure string
	// Data is what the server sent (nil when absent).
	Data protocol.Data
	// ID is the server's cid.
	ID float64

	cn   *conn
	sent atomic.Bool
}

// Sent reports whether the request was answered.
func (r *Request) Sent() bool { return r.sent.Load() }

func (r *Request) claim() error {
	if r.sent.Swap(true) {
		return protocol.NewError("InvalidActionError", "Response to request "+string(wire.AppendNumber(nil, r.ID))+" has already been sent")
	}
	return nil
}

// End answers with data (same rules as Invoke's data; Undefined answers
// {"rid":N} without data).
func (r *Request) End(data any) error {
	raw, err := protocol.MarshalData(data)
	if err != nil {
		return err
	}
	if err := r.claim(); err != nil {
		return err
	}
	return r.cn.write(wire.AppendResponse(nil, r.ID, raw, nil))
}

// Error answers with an error: an *socketcluster.Error keeps its name and
// fields, a protocol.StringError is sent as a bare string, any other
// error as {"message": err.Error()}. A nil err answers without data.
func (r *Request) Error(err error) error {
	if err == nil {
		return r.End(protocol.Undefined)
	}
	raw, encErr := encodeError(err)
	if encErr != nil {
		return encErr
	}
	if e := r.claim(); e != nil {
		return e
	}
	return r.cn.write(wire.AppendResponse(nil, r.ID, nil, raw))
}

// ---- Inbound ----

// handleText handles one text frame (reader goroutine).
func (c *Client) handleText(cn *conn, payload []byte) {
	if c.opts.ProtocolVersion == 2 && len(payload) == 0 {
		cn.resetPing(0)
		_ = cn.write(nil)
		return
	}
	if c.opts.ProtocolVersion == 1 && string(payload) == "#1" {
		cn.resetPing(0)
		_ = cn.write([]byte("#2"))
		return
	}
	var kind wire.Kind
	cn.packets, cn.oks, kind = wire.Parse(payload, cn.packets[:0], cn.oks[:0])
	if kind == wire.Raw {
		c.emit(RawEvent{Message: payload})
		return
	}
	for i := range cn.packets {
		if !cn.oks[i] {
			c.emit(RawEvent{Message: payload})
			continue
		}
		c.handlePacket(cn, &cn.packets[i])
	}
	clear(cn.packets)
}

func (c *Client) handlePacket(cn *conn, p *wire.Packet) {
	if !p.HasEvent {
		c.handleResponse(p)
		return
	}
	data := protocol.Data(p.Data)
	if !p.HasCid {
		switch p.Event {
		case protocol.EventPublish:
			c.handlePublish(data)
		case protocol.EventKickOut:
			c.handleKickOut(data)
		case "sc.recovery":
			c.handleRecovery(data) // history.go
			c.receivers.Write(p.Event, data)
		case protocol.EventSetAuthToken:
			c.handleSetAuthToken(cn, data, 0, false)
		case protocol.EventRemoveAuthToken:
			c.handleRemoveAuthToken(cn, 0, false)
		default:
			c.receivers.Write(p.Event, data)
		}
		return
	}
	switch p.Event {
	case protocol.EventSetAuthToken:
		c.handleSetAuthToken(cn, data, p.Cid, true)
	case protocol.EventRemoveAuthToken:
		c.handleRemoveAuthToken(cn, p.Cid, true)
	default:
		c.procedures.Write(p.Event, &Request{Procedure: p.Event, Data: data, ID: p.Cid, cn: cn})
	}
}

func (c *Client) handleResponse(p *wire.Packet) {
	if p.Rid < 1 || p.Rid != math.Trunc(p.Rid) || p.Rid > 1<<53 {
		return // not one of our cids
	}
	cid := uint64(p.Rid)
	c.mu.Lock()
	cl, ok := c.calls[cid]
	if ok {
		delete(c.calls, cid)
	}
	c.mu.Unlock()
	if !ok {
		return // unknown rid: ignored
	}
	if err := protocol.UnmarshalError(p.Error); err != nil {
		cl.done(nil, err)
		return
	}
	cl.done(protocol.Data(p.Data), nil)
}
