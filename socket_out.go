package socketcluster

import (
	"sync"
	"time"

	"github.com/socketcluster-go/socketcluster/internal/wire"
	"github.com/socketcluster-go/socketcluster/internal/wsconn"
	"github.com/socketcluster-go/socketcluster/protocol"
)

// The outbound path. Every frame a socket sends goes through one ordered
// queue (outQ, guarded by outMu). There is no writer goroutine per socket:
// the first enqueue onto an idle queue starts a short-lived flusher
// goroutine that writes everything queued with one writev per round and
// exits when the queue is empty. Publishers therefore never block on a slow
// socket; a socket whose queue grows over OutboundQueueLimit bytes is
// disconnected with [protocol.CloseSlowConsumer].
//
// Frames are immutable: a publish frame is encoded once and the same bytes
// are queued to every subscriber; with permessage-deflate, it is also
// compressed once, and the compressed bytes are queued to every subscriber
// that negotiated it (publication.deflatedFrame). Other frames are
// compressed for their socket when it is built (Socket.packetFrame).

type closeRequest struct {
	code   int
	reason string
}

// newPacketBuf returns a buffer with room for a frame header in front.
func newPacketBuf(sizeHint int) []byte {
	return make([]byte, wsconn.MaxHeader, wsconn.MaxHeader+sizeHint+32)
}

// packetFrame turns a JSON packet built in buf (after the reserved header
// room) into an uncompressed frame for this server's codec.
func (srv *Server) packetFrame(buf []byte) ([]byte, error) {
	payload, bin, err := srv.packetPayload(buf)
	if err != nil {
		return nil, err
	}
	return srv.plainFrame(buf, payload, bin), nil
}

// packetPayload returns the message that carries a JSON packet built in
// buf: the packet itself (buf after the header room), or its encoding by
// the server's codec.
func (srv *Server) packetPayload(buf []byte) (payload []byte, binary bool, err error) {
	if srv.codec == nil {
		return buf[wsconn.MaxHeader:], false, nil
	}
	tree, err := jsonToTree(buf[wsconn.MaxHeader:])
	if err != nil {
		return nil, false, err
	}
	return srv.codec.Encode(tree)
}

// plainFrame frames the payload packetPayload returned for buf, in place
// in buf when the payload is the JSON packet itself.
func (srv *Server) plainFrame(buf, payload []byte, binary bool) []byte {
	if srv.codec == nil {
		start := wsconn.PutHeader(buf, false, len(payload))
		return buf[start:]
	}
	return wsconn.Frame(binary, payload)
}

// packetFrame is Server.packetFrame for this socket: the frame is
// compressed when the socket negotiated permessage-deflate and the
// compressor finds it worth it (threshold, gain).
func (s *Socket) packetFrame(buf []byte) ([]byte, error) {
	if !s.conn.Deflate() {
		return s.server.packetFrame(buf)
	}
	payload, bin, err := s.server.packetPayload(buf)
	if err != nil {
		return nil, err
	}
	if f := s.server.compressor.Frame(bin, payload); f != nil {
		return f, nil
	}
	return s.server.plainFrame(buf, payload, bin), nil
}

// addToBatch appends a JSON packet to the batch when the socket is
// batching, and reports whether it did. While no socket of the server
// batches (the common case), it takes no lock.
func (s *Socket) addToBatch(packet []byte) bool {
	if s.server.batchingSockets.Load() == 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.more
	if m == nil || !m.batching && !m.manualBatch {
		return false
	}
	m.batch = append(m.batch, packet)
	return true
}

// sendPacket queues a JSON packet (in buf, after the header room), through
// the batch when batching.
func (s *Socket) sendPacket(buf []byte) {
	if s.addToBatch(buf[wsconn.MaxHeader:]) {
		return
	}
	frame, err := s.packetFrame(buf)
	if err != nil {
		s.emitError(err)
		return
	}
	s.enqueuePacket(frame)
}

func (s *Socket) sendResponse(rid float64, data, errRaw []byte) {
	buf := newPacketBuf(len(data) + len(errRaw))
	buf = wire.AppendResponse(buf, rid, data, errRaw)
	s.sendPacket(buf)
}

func (s *Socket) sendEvent(event string, data []byte) {
	buf := newPacketBuf(len(event) + len(data))
	buf = wire.AppendEvent(buf, event, data, 0, false)
	s.sendPacket(buf)
}

func (s *Socket) sendInvoke(event string, cid float64, data []byte) {
	buf := newPacketBuf(len(event) + len(data))
	buf = wire.AppendEvent(buf, event, data, cid, true)
	s.sendPacket(buf)
}

// enqueue queues a complete frame that is never merged with others (raw
// sends, pings, batches, the handshake answer). It reports false when the
// socket no longer sends.
func (s *Socket) enqueue(frame []byte) bool {
	return s.enqueueFrame(frame, false)
}

// coalesces reports whether queued JSON packets may be merged into array
// frames (Options.CoalescePackets, with the default JSON codec).
func (srv *Server) coalesces() bool { return srv.codec == nil && srv.opts.CoalescePackets }

// enqueuePacket queues a frame holding one JSON packet: the flusher may
// send it inside an array frame with its neighbours (coalesce).
func (s *Socket) enqueuePacket(frame []byte) bool {
	return s.enqueueFrame(frame, s.server.coalesces())
}

func (s *Socket) enqueueFrame(frame []byte, packet bool) bool {
	return s.queueFrame(frame, packet, false)
}

// queueFrame queues frame; when no flusher runs, the caller becomes it:
// with inline, in this goroutine for one write (flushInline), else in a
// goroutine started for it.
func (s *Socket) queueFrame(frame []byte, packet, inline bool) bool {
	s.outMu.Lock()
	if s.outClosed {
		s.outMu.Unlock()
		return false
	}
	s.outQ = append(s.outQ, frame)
	if s.server.coalesces() {
		f := s.packetFlagsLocked()
		f.q = append(f.q, packet)
	}
	s.outBytes += len(frame)
	s.outboundPrepared.Add(1)
	over := s.outBytes > s.server.opts.OutboundQueueLimit && !s.slow
	if over {
		s.slow = true
	}
	start := !s.flushing
	if start {
		s.flushing = true
	}
	queued := s.outBytes
	s.outMu.Unlock()
	if over {
		go s.slowConsumer(queued)
	}
	switch {
	case !start:
	case inline:
		s.flushInline()
	default:
		go s.flush()
	}
	return true
}

// batchChangedLocked keeps Server.batchingSockets counting the open
// sockets that batch (periodically or a manual batch), after either flag
// changed or the socket closed; s.mu must be held.
func (s *Socket) batchChangedLocked() {
	m := s.more
	on := (m.batching || m.manualBatch) && s.stateCode() != stClosed
	if on == m.batchCounted {
		return
	}
	m.batchCounted = on
	if on {
		s.server.batchingSockets.Add(1)
	} else {
		s.server.batchingSockets.Add(-1)
	}
}

// packetFlagsLocked returns the socket's packetFlags, making it. s.outMu
// must be held.
func (s *Socket) packetFlagsLocked() *packetFlags {
	if s.outFlags == nil {
		s.outFlags = new(packetFlags)
	}
	return s.outFlags
}

// dropQueueLocked drops the queued frames. s.outMu must be held.
func (s *Socket) dropQueueLocked() {
	s.outQ = nil
	if s.outFlags != nil {
		s.outFlags.q = nil
	}
}

// slowConsumer disconnects a socket that does not read fast enough. Its
// queued frames are dropped so that memory is freed at once, and the write
// under way stops at the end of its current frame (wsconn.AbortWrites), so
// that the close frame comes right after the bytes already sent and the
// client's close event carries its code and reason. A client that reads
// nothing more is cut when that frame's or the close frame's write times
// out, or closeGrace after the close frame.
func (s *Socket) slowConsumer(queued int) {
	s.conn.AbortWrites()
	s.server.counters.slowConsumers.Add(1)
	ev := SlowConsumerEvent{Socket: s, QueuedBytes: queued}
	s.emit(ev)
	s.server.emit(ev)
	s.server.slowLog.log(s.server.opts.Logger, "socketcluster: disconnecting slow consumers (Options.OutboundQueueLimit)", "socket", s.id, "queuedBytes", queued)
	s.outMu.Lock()
	dropped := len(s.outQ)
	s.dropQueueLocked()
	s.outBytes = 0
	s.outMu.Unlock()
	s.outboundSent.Add(int64(dropped))
	s.closeWith(protocol.CloseSlowConsumer, protocol.SlowConsumerReason, true)
}

// spareQueues lends flushers the array of a socket's next queue while they
// write the current one, and takes that one's back after the write: a
// socket keeps no spare of its own (TestSocketSize).
var spareQueues = sync.Pool{New: func() any { return new([][]byte) }}

// flush writes queued frames until the queue is empty.
func (s *Socket) flush() {
	for s.flushOnce(false) {
	}
}

// flushInline is flush for a caller that must not be held up (the
// socket's reader, writing its handshake answer): it writes what is
// queued now, once, and leaves what was queued meanwhile to a flusher
// goroutine; a failed write ends the socket in a goroutine, as a
// flusher's would.
func (s *Socket) flushInline() {
	if !s.flushOnce(true) {
		return
	}
	s.outMu.Lock()
	if len(s.outQ) == 0 && s.closeReq == nil {
		s.flushing = false
		s.outMu.Unlock()
		return
	}
	s.outMu.Unlock()
	go s.flush()
}

// flushOnce writes the frames queued now, as the socket's flusher, and
// reports whether the caller is still the flusher and must look again.
// With the queue empty it gives the role up, after the close frame when
// one was asked for. A failed write ends the socket: here, or with
// detach in a goroutine of its own (closing runs the application's
// handlers).
func (s *Socket) flushOnce(detach bool) bool {
	s.outMu.Lock()
	if len(s.outQ) == 0 {
		cr := s.closeReq
		s.closeReq = nil
		s.flushing = false
		s.outMu.Unlock()
		if cr != nil {
			s.conn.WriteClose(cr.code, cr.reason)
			s.afterCloseSent()
		}
		return false
	}
	// A spare array from the pool becomes the queue: no other slice
	// keeps it. The pool's holder takes q's array back after the write.
	q := s.outQ
	spare := spareQueues.Get().(*[][]byte)
	s.outQ, *spare = (*spare)[:0], nil
	var pk []bool
	if f := s.outFlags; f != nil {
		pk, f.q, f.spare = f.q, f.spare[:0], nil
	}
	s.outBytes = 0
	s.outMu.Unlock()

	n := len(q)
	w, arrays := coalesce(q, pk)
	size := 0
	for _, f := range w {
		size += len(f)
	}
	err := s.conn.WriteFrames(w)
	s.outboundSent.Add(int64(n))
	if err == nil {
		s.server.counters.bytesOut.Add(int64(size))
	}
	if arrays != nil {
		releaseArrays(arrays) // written: nothing holds them now
	}
	clear(q)
	// A queue of one frame is not kept for the next burst: most
	// sockets send one frame at a time, seldom (an idle socket after
	// its handshake answer).
	if cap(q) > 1 {
		*spare = q[:0]
	}
	spareQueues.Put(spare)
	if f := s.outFlags; f != nil && cap(q) > 1 {
		s.outMu.Lock()
		f.spare = pk[:0]
		s.outMu.Unlock()
	}
	if err == wsconn.ErrAborted {
		// A slow consumer: the frames are dropped, the close frame
		// follows (queueClose).
		return true
	}
	if err != nil {
		if detach {
			go s.writeFailed(err)
		} else {
			s.writeFailed(err)
		}
		return false
	}
	return true
}

// writeFailed ends the socket after a failed write, as its flusher: the
// queue is dropped and refused from now on, and the connection closed
// (1006 unless a close was already under way).
func (s *Socket) writeFailed(err error) {
	s.outMu.Lock()
	s.outClosed = true
	s.dropQueueLocked()
	cr := s.closeReq
	s.closeReq = nil
	s.flushing = false
	s.outMu.Unlock()
	if cr == nil {
		s.closeWith(protocol.CloseAbnormal, err.Error(), false)
	}
	_ = s.conn.Close()
}

// maxCoalesced bounds the payload of an array frame built by coalesce.
const maxCoalesced = 64 << 10

// coalesce merges runs of adjacent frames marked as plain JSON packets
// (pk) into one JSON array frame each, in order, in place in q, and
// returns the frames to write. A run stops at any other frame (raw, ping,
// binary, compressed, batch) and before its payload would pass
// maxCoalesced; a run of one keeps its frame as it is. The shared frame of
// a publication is copied into the array, never re-encoded. The arrays'
// buffers come from a pool: arrays holds them (nil when there are none)
// for releaseArrays once they are written.
func coalesce(q [][]byte, pk []bool) (frames [][]byte, arrays *arrayBufs) {
	if len(q) < 2 || len(pk) != len(q) {
		return q, nil
	}
	out := q[:0]
	for i := 0; i < len(q); {
		p, ok := packetPayload(q, pk, i)
		if !ok {
			out = append(out, q[i])
			i++
			continue
		}
		j, size := i+1, 2+len(p)
		for ; j < len(q); j++ {
			pj, ok := packetPayload(q, pk, j)
			if !ok || size+1+len(pj) > maxCoalesced {
				break
			}
			size += 1 + len(pj)
		}
		if j-i == 1 {
			out = append(out, q[i])
			i++
			continue
		}
		if arrays == nil {
			arrays = arrayBufsPool.Get().(*arrayBufs)
		}
		buf := arrays.get(wsconn.MaxHeader + size)
		buf = append(buf, '[')
		for k := i; k < j; k++ {
			if k > i {
				buf = append(buf, ',')
			}
			pl, _ := wsconn.PlainTextPayload(q[k])
			buf = append(buf, pl...)
		}
		buf = append(buf, ']')
		start := wsconn.PutHeader(buf, false, len(buf)-wsconn.MaxHeader)
		out = append(out, buf[start:])
		i = j
	}
	return out, arrays
}

// arrayBufs holds the buffers of one flush's array frames. They are
// pooled: a socket that sends a burst per write as an array would
// otherwise allocate the burst's bytes again for every write.
type arrayBufs struct{ held []*[]byte }

var (
	arrayBufsPool = sync.Pool{New: func() any { return new(arrayBufs) }}
	arrayPool     = sync.Pool{New: func() any { return new([]byte) }}
)

// get returns an empty frame buffer with room for n bytes: MaxHeader
// bytes of header room, then the array. It is held until releaseArrays.
func (a *arrayBufs) get(n int) []byte {
	p := arrayPool.Get().(*[]byte)
	if cap(*p) < n {
		*p = make([]byte, 0, max(n, 1024))
	}
	a.held = append(a.held, p)
	return (*p)[:wsconn.MaxHeader]
}

// releaseArrays gives a flush's array buffers back, once written.
func releaseArrays(a *arrayBufs) {
	for i, p := range a.held {
		arrayPool.Put(p)
		a.held[i] = nil
	}
	a.held = a.held[:0]
	arrayBufsPool.Put(a)
}

// packetPayload returns the JSON packet in q[i] when it may be coalesced.
func packetPayload(q [][]byte, pk []bool, i int) ([]byte, bool) {
	if !pk[i] {
		return nil, false
	}
	return wsconn.PlainTextPayload(q[i])
}

// queueClose makes the close frame the last thing written: everything
// queued before it is flushed first, nothing after it is accepted.
func (s *Socket) queueClose(code protocol.CloseCode, reason string) {
	s.outMu.Lock()
	if s.outClosed {
		s.outMu.Unlock()
		return
	}
	s.outClosed = true
	s.closeReq = &closeRequest{code: int(code), reason: reason}
	start := !s.flushing
	if start {
		s.flushing = true
	}
	s.outMu.Unlock()
	if start {
		go s.flush()
	}
}

// afterCloseSent gives the peer a moment to answer the close frame, then
// the reader's deadline ends the connection.
func (s *Socket) afterCloseSent() {
	_ = s.conn.SetReadDeadline(time.Now().Add(closeGrace))
}

// closeGrace is how long a socket waits for the peer's close frame.
const closeGrace = 3 * time.Second

// ---- Batching (docs/protocol.md §2.4) ----

// StartBatching batches outbound packets, flushing them as one array frame
// every BatchInterval until StopBatching or CancelBatching.
func (s *Socket) StartBatching() {
	s.mu.Lock()
	s.moreLocked().userBatchLock = true
	s.startBatchingLocked()
	s.mu.Unlock()
}

func (s *Socket) startBatchingLocked() {
	m := s.moreLocked()
	if m.batching {
		return
	}
	m.batching = true
	s.batchChangedLocked()
	s.armBatchTimerLocked()
}

func (s *Socket) armBatchTimerLocked() {
	m := s.moreLocked()
	if m.batchTimer == nil {
		m.batchTimer = time.AfterFunc(s.server.opts.BatchInterval, s.batchTick)
	} else {
		m.batchTimer.Reset(s.server.opts.BatchInterval)
	}
}

func (s *Socket) batchTick() {
	s.mu.Lock()
	if s.more == nil || !s.more.batching || s.stateCode() == stClosed {
		s.mu.Unlock()
		return
	}
	pending := s.takeBatchLocked()
	s.armBatchTimerLocked()
	s.mu.Unlock()
	s.writeBatch(pending)
}

func (s *Socket) takeBatchLocked() [][]byte {
	if s.more == nil {
		return nil
	}
	b := s.more.batch
	s.more.batch = nil
	return b
}

// writeBatch sends packets as one JSON array frame.
func (s *Socket) writeBatch(packets [][]byte) {
	if len(packets) == 0 {
		return
	}
	n := 2
	for _, p := range packets {
		n += len(p) + 1
	}
	buf := newPacketBuf(n)
	buf = append(buf, '[')
	for i, p := range packets {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, p...)
	}
	buf = append(buf, ']')
	frame, err := s.packetFrame(buf)
	if err != nil {
		s.emitError(err)
		return
	}
	s.enqueue(frame)
}

// StopBatching flushes and stops periodic batching.
func (s *Socket) StopBatching() {
	s.mu.Lock()
	m := s.moreLocked()
	m.userBatchLock = false
	m.batching = false
	s.batchChangedLocked()
	if m.batchTimer != nil {
		m.batchTimer.Stop()
	}
	var pending [][]byte
	if !m.manualBatch {
		pending = s.takeBatchLocked()
	}
	s.mu.Unlock()
	s.writeBatch(pending)
}

// CancelBatching stops periodic batching and discards the unsent packets.
func (s *Socket) CancelBatching() {
	s.mu.Lock()
	m := s.moreLocked()
	m.userBatchLock = false
	m.batching = false
	s.batchChangedLocked()
	if m.batchTimer != nil {
		m.batchTimer.Stop()
	}
	m.batch = nil
	s.mu.Unlock()
}

// IsBatching reports whether periodic batching is on.
func (s *Socket) IsBatching() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.more != nil && s.more.batching
}

// StartBatch starts one manual batch, sent by FlushBatch.
func (s *Socket) StartBatch() {
	s.mu.Lock()
	s.moreLocked().manualBatch = true
	s.batchChangedLocked()
	s.mu.Unlock()
}

// FlushBatch sends the manual batch as one array frame.
func (s *Socket) FlushBatch() {
	s.mu.Lock()
	m := s.moreLocked()
	m.manualBatch = false
	s.batchChangedLocked()
	var pending [][]byte
	if !m.batching {
		pending = s.takeBatchLocked()
	}
	s.mu.Unlock()
	s.writeBatch(pending)
}

// CancelBatch discards the manual batch.
func (s *Socket) CancelBatch() {
	s.mu.Lock()
	m := s.moreLocked()
	m.manualBatch = false
	s.batchChangedLocked()
	if !m.batching {
		m.batch = nil
	}
	s.mu.Unlock()
}
