package socketcluster

// OwnsDescriptor reports whether s's connection keeps only its socket's
// descriptor (Options.OwnDescriptors took it).
func OwnsDescriptor(s *Socket) bool { return s.conn.OwnsDescriptor() }

// HelpedBatches is the number of full batches of a fan-out that a helper
// goroutine sent while the fan-out went on (ringBatch.sendFull).
func HelpedBatches(srv *Server) int64 { return srv.rings.helped.Load() }

// RingHelpers returns how many helpers are sending a batch now.
func RingHelpers(srv *Server) int32 { return srv.rings.helpers.Load() }

// SetRingHelpers lets up to n helper goroutines send full batches at once,
// whatever Ps are free.
func SetRingHelpers(srv *Server, n int) { srv.rings.helpersSet.Store(int32(n)) }

// LendRingHelper has one full batch at a time sent by a netpoll poller
// (netpoll.Lend), whatever Ps are free.
func LendRingHelper(srv *Server) { srv.rings.helpersSet.Store(helpersLent) }

// SetSubscribeAnswered makes f run in the goroutine that answered a
// client's pending #subscribe, after the answer was sent and before what
// was queued behind it runs, until the test ends.
func SetSubscribeAnswered(t interface{ Cleanup(func()) }, f func(channel string)) {
	subscribeAnswered.Store(&f)
	t.Cleanup(func() { subscribeAnswered.Store(nil) })
}

// SetChannelLeaving makes f run when a socket leaves a channel, between
// forgetting it among its subscriptions and leaving it in the hub, until
// the test ends.
func SetChannelLeaving(t interface{ Cleanup(func()) }, f func(s *Socket, channel string)) {
	channelLeaving.Store(&f)
	t.Cleanup(func() { channelLeaving.Store(nil) })
}

// InHub reports whether the hub counts s among channel's local
// subscribers.
func InHub(srv *Server, s *Socket, channel string) bool {
	c := srv.hub.lookup(channel)
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.subs.find(s)
	return ok
}

// SetMaxQueuedBehindJoin changes how many packets may wait behind one
// channel's pending subscribe, until the test ends.
func SetMaxQueuedBehindJoin(t interface{ Cleanup(func()) }, n int) {
	old := maxQueuedBehindJoin.Swap(int32(n))
	t.Cleanup(func() { maxQueuedBehindJoin.Store(old) })
}

// BatchingSockets returns how many open sockets of srv batch.
func BatchingSockets(srv *Server) int32 { return srv.batchingSockets.Load() }
