package socketcluster

import (
	"sync/atomic"

	"github.com/socketcluster-go/socketcluster/stream"
)

// Streams follow the reference's semantics (docs/protocol.md §11):
//
//   - A named stream (a listener, receiver, procedure or channel) delivers
//     each item to every consumer that exists when the item is written, in
//     order, each at its own pace. Items written while a stream has no
//     consumer are dropped: a transmit to a receiver nobody reads is lost and
//     an invoke whose procedure nobody consumes is never answered.
//   - Each consumer owns an unbounded queue; its length is the consumer's
//     backpressure.
//   - Close lets current consumers finish their backlog and end; Kill ends
//     them at once and drops their backlog. A new consumer created afterwards
//     sees only new items.
//
// In Go a consumer is made by ranging over Stream.All (the consumer is
// registered when the loop starts and removed when it ends), or explicitly
// with Stream.Consumer when it must exist before something happens (e.g.
// before triggering an event in a test).

// Stream is a named stream of items of type T: a listener
// (Stream[Event], typed with Listen), a receiver (Stream[Data]), a
// procedure (Stream[*Request]) or a channel's data (Stream[Data]). It is
// stream.Stream (package github.com/socketcluster-go/socketcluster/stream,
// where its methods are documented): a small value, copy it freely. The
// client package's Stream is the same type.
type Stream[T any] = stream.Stream[T]

// Consumer reads one stream, at its own pace, from an unbounded queue of
// its own. It is stream.TypedConsumer, documented in package stream; its
// Next returns stream.ErrEnded once the stream was closed (and the backlog
// taken) or killed, or the consumer stopped. The client package's Consumer
// is the same type.
type Consumer[T any] = stream.TypedConsumer[T]

// Listeners is the event-listener side of a Server or Socket.
type Listeners struct{ d lazyDemux }

// Listener returns the stream of the named event.
func (l *Listeners) Listener(name string) Stream[Event] {
	return stream.NewStream[Event](l.d.demux(), name)
}

// CloseListener ends the listener's consumers after their backlog.
func (l *Listeners) CloseListener(name string) { l.d.Close(name) }

// CloseAllListeners closes every listener.
func (l *Listeners) CloseAllListeners() { l.d.CloseAll() }

// KillListener ends the listener's consumers now.
func (l *Listeners) KillListener(name string) { l.d.Kill(name) }

// KillAllListeners kills every listener.
func (l *Listeners) KillAllListeners() { l.d.KillAll() }

// KillListenerConsumer kills one consumer.
func (l *Listeners) KillListenerConsumer(id int) { l.d.KillConsumer(id) }

// ListenerBackpressure is the largest backlog of the listener's consumers.
func (l *Listeners) ListenerBackpressure(name string) int { return l.d.Backpressure(name) }

// AllListenersBackpressure is the largest backlog of any listener consumer.
func (l *Listeners) AllListenersBackpressure() int { return l.d.BackpressureAll() }

// ListenerConsumerBackpressure is the backlog of one consumer.
func (l *Listeners) ListenerConsumerBackpressure(id int) int { return l.d.ConsumerBackpressure(id) }

// ListenerConsumerStats lists the listener's consumers.
func (l *Listeners) ListenerConsumerStats(name string) []stream.ConsumerStats { return l.d.Stats(name) }

// AllListenersConsumerStats lists every listener consumer.
func (l *Listeners) AllListenersConsumerStats() []stream.ConsumerStats { return l.d.StatsAll() }

// HasListenerConsumer reports whether consumer id reads the listener.
func (l *Listeners) HasListenerConsumer(name string, id int) bool { return l.d.HasConsumer(name, id) }

// HasAnyListenerConsumer reports whether consumer id reads any listener.
func (l *Listeners) HasAnyListenerConsumer(id int) bool { return l.d.HasAnyConsumer(id) }

func (l *Listeners) emit(e Event) {
	l.d.Write(e.EventName(), e)
}

// Listen returns a typed stream of one event type from a Server or a
// Socket:
//
//	for ev := range socketcluster.Listen[socketcluster.ConnectionEvent](srv).All(ctx) { … }
func Listen[E Event](from interface{ Listener(string) Stream[Event] }) Stream[E] {
	var zero E
	return stream.Retype[E](from.Listener(zero.EventName()))
}

// Receivers is the receiver side of a Socket: transmits by name.
type Receivers struct{ d lazyDemux }

// Receiver returns the stream of the data transmitted to name.
func (r *Receivers) Receiver(name string) Stream[Data] {
	return stream.NewStream[Data](r.d.demux(), name)
}

// CloseReceiver ends the receiver's consumers after their backlog.
func (r *Receivers) CloseReceiver(name string) { r.d.Close(name) }

// CloseAllReceivers closes every receiver.
func (r *Receivers) CloseAllReceivers() { r.d.CloseAll() }

// KillReceiver ends the receiver's consumers now.
func (r *Receivers) KillReceiver(name string) { r.d.Kill(name) }

// KillAllReceivers kills every receiver.
func (r *Receivers) KillAllReceivers() { r.d.KillAll() }

// KillReceiverConsumer kills one consumer.
func (r *Receivers) KillReceiverConsumer(id int) { r.d.KillConsumer(id) }

// ReceiverBackpressure is the largest backlog of the receiver's consumers.
func (r *Receivers) ReceiverBackpressure(name string) int { return r.d.Backpressure(name) }

// AllReceiversBackpressure is the largest backlog of any receiver consumer.
func (r *Receivers) AllReceiversBackpressure() int { return r.d.BackpressureAll() }

// ReceiverConsumerBackpressure is the backlog of one consumer.
func (r *Receivers) ReceiverConsumerBackpressure(id int) int { return r.d.ConsumerBackpressure(id) }

// ReceiverConsumerStats lists the receiver's consumers.
func (r *Receivers) ReceiverConsumerStats(name string) []stream.ConsumerStats { return r.d.Stats(name) }

// AllReceiversConsumerStats lists every receiver consumer.
func (r *Receivers) AllReceiversConsumerStats() []stream.ConsumerStats { return r.d.StatsAll() }

// HasReceiverConsumer reports whether consumer id reads the receiver.
func (r *Receivers) HasReceiverConsumer(name string, id int) bool { return r.d.HasConsumer(name, id) }

// HasAnyReceiverConsumer reports whether consumer id reads any receiver.
func (r *Receivers) HasAnyReceiverConsumer(id int) bool { return r.d.HasAnyConsumer(id) }

// Procedures is the procedure side of a Socket: invokes by name.
type Procedures struct{ d lazyDemux }

// Procedure returns the stream of requests invoking name.
func (p *Procedures) Procedure(name string) Stream[*Request] {
	return stream.NewStream[*Request](p.d.demux(), name)
}

// CloseProcedure ends the procedure's consumers after their backlog.
func (p *Procedures) CloseProcedure(name string) { p.d.Close(name) }

// CloseAllProcedures closes every procedure.
func (p *Procedures) CloseAllProcedures() { p.d.CloseAll() }

// KillProcedure ends the procedure's consumers now.
func (p *Procedures) KillProcedure(name string) { p.d.Kill(name) }

// KillAllProcedures kills every procedure.
func (p *Procedures) KillAllProcedures() { p.d.KillAll() }

// KillProcedureConsumer kills one consumer.
func (p *Procedures) KillProcedureConsumer(id int) { p.d.KillConsumer(id) }

// ProcedureBackpressure is the largest backlog of the procedure's consumers.
func (p *Procedures) ProcedureBackpressure(name string) int { return p.d.Backpressure(name) }

// AllProceduresBackpressure is the largest backlog of any procedure consumer.
func (p *Procedures) AllProceduresBackpressure() int { return p.d.BackpressureAll() }

// ProcedureConsumerBackpressure is the backlog of one consumer.
func (p *Procedures) ProcedureConsumerBackpressure(id int) int { return p.d.ConsumerBackpressure(id) }

// ProcedureConsumerStats lists the procedure's consumers.
func (p *Procedures) ProcedureConsumerStats(name string) []stream.ConsumerStats {
	return p.d.Stats(name)
}

// AllProceduresConsumerStats lists every procedure consumer.
func (p *Procedures) AllProceduresConsumerStats() []stream.ConsumerStats { return p.d.StatsAll() }

// HasProcedureConsumer reports whether consumer id reads the procedure.
func (p *Procedures) HasProcedureConsumer(name string, id int) bool { return p.d.HasConsumer(name, id) }

// HasAnyProcedureConsumer reports whether consumer id reads any procedure.
func (p *Procedures) HasAnyProcedureConsumer(id int) bool { return p.d.HasAnyConsumer(id) }

// lazyDemux is a stream.Demux made by the first call that needs one (a
// stream handed out for a consumer): most sockets never get a consumer on
// most of their three demuxes, and an idle socket should not hold them.
// Before that, writes are dropped and queries answer as for an empty
// demux, as the demux itself would.
type lazyDemux struct {
	p atomic.Pointer[stream.Demux[any]]
}

// demux returns the demux, making it if there is none yet.
func (l *lazyDemux) demux() *stream.Demux[any] {
	if d := l.p.Load(); d != nil {
		return d
	}
	d := stream.NewDemux[any]()
	if l.p.CompareAndSwap(nil, d) {
		return d
	}
	return l.p.Load()
}

func (l *lazyDemux) Write(name string, v any) {
	if d := l.p.Load(); d != nil {
		d.Write(name, v)
	}
}

func (l *lazyDemux) HasConsumers(name string) bool {
	d := l.p.Load()
	return d != nil && d.HasConsumers(name)
}

func (l *lazyDemux) Close(name string) {
	if d := l.p.Load(); d != nil {
		d.Close(name)
	}
}

func (l *lazyDemux) CloseAll() {
	if d := l.p.Load(); d != nil {
		d.CloseAll()
	}
}

func (l *lazyDemux) Kill(name string) {
	if d := l.p.Load(); d != nil {
		d.Kill(name)
	}
}

func (l *lazyDemux) KillAll() {
	if d := l.p.Load(); d != nil {
		d.KillAll()
	}
}

func (l *lazyDemux) KillConsumer(id int) {
	if d := l.p.Load(); d != nil {
		d.KillConsumer(id)
	}
}

func (l *lazyDemux) Backpressure(name string) int {
	if d := l.p.Load(); d != nil {
		return d.Backpressure(name)
	}
	return 0
}

func (l *lazyDemux) BackpressureAll() int {
	if d := l.p.Load(); d != nil {
		return d.BackpressureAll()
	}
	return 0
}

func (l *lazyDemux) ConsumerBackpressure(id int) int {
	if d := l.p.Load(); d != nil {
		return d.ConsumerBackpressure(id)
	}
	return 0
}

func (l *lazyDemux) Stats(name string) []stream.ConsumerStats {
	if d := l.p.Load(); d != nil {
		return d.Stats(name)
	}
	return nil
}

func (l *lazyDemux) StatsAll() []stream.ConsumerStats {
	if d := l.p.Load(); d != nil {
		return d.StatsAll()
	}
	return nil
}

func (l *lazyDemux) HasConsumer(name string, id int) bool {
	d := l.p.Load()
	return d != nil && d.HasConsumer(name, id)
}

func (l *lazyDemux) HasAnyConsumer(id int) bool {
	d := l.p.Load()
	return d != nil && d.HasAnyConsumer(id)
}
