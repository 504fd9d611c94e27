package socketcluster

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"testing"

	"github.com/socketcluster-go/socketcluster/internal/wsconn"
)

// Benchmarks of every hub path whose cost could depend on the number of
// sockets, channels or subscriptions, at 1 000, 10 000 and 100 000. The
// sockets are dummies (no connection, their queue closed): what is
// measured is the hub's own work, not writing. Figures and their history
// are in docs/performance.md.
//
//	go test -run '^$' -bench 'Hub' -benchtime 1x .   (the one-shot ones)
//	go test -run '^$' -bench 'Hub' .

var hubSizes = []int{1_000, 10_000, 100_000}

var discardLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

func benchServer(b *testing.B) *Server {
	b.Helper()
	srv, err := New(Options{Logger: discardLogger})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Close(context.Background()) })
	return srv
}

// dummySocket is a socket without a connection whose outbound queue is
// closed: deliveries to it cost the hub's work and the queue's refusal.
func dummySocket(srv *Server) *Socket {
	s := &Socket{server: srv, conn: &wsconn.Conn{}, id: newSocketID(), slot: -1, outClosed: true}
	s.state.Store(uint32(stOpen))
	return s
}

func dummySockets(srv *Server, n int) []*Socket {
	socks := make([]*Socket, n)
	for i := range socks {
		socks[i] = dummySocket(srv)
	}
	return socks
}

// join subscribes s to channel as a client's #subscribe does, and waits
// for the broker.
func join(tb testing.TB, s *Socket, channel string) {
	s.mu.Lock()
	if s.channels == nil {
		s.channels = make(map[string]struct{})
	}
	s.channels[channel] = struct{}{}
	s.mu.Unlock()
	if err := s.server.hub.addWait(s, channel); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkHubSubscribeMany: n sockets subscribe to one channel (a
// broadcast channel after a restart). Reported per subscribe.
func BenchmarkHubSubscribeMany(b *testing.B) {
	for _, n := range hubSizes {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				srv := benchServer(b)
				socks := dummySockets(srv, n)
				b.StartTimer()
				for _, s := range socks {
					join(b, s, "all")
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/subscribe")
		})
	}
}

// BenchmarkHubSubUnsub: one subscribe and one unsubscribe on a channel of
// n subscribers.
func BenchmarkHubSubUnsub(b *testing.B) {
	for _, n := range hubSizes {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			srv := benchServer(b)
			for _, s := range dummySockets(srv, n) {
				join(b, s, "all")
			}
			s := dummySocket(srv)
			b.ResetTimer()
			for range b.N {
				join(b, s, "all")
				s.leave("all")
			}
		})
	}
}

// BenchmarkHubPublishOther: a publish on a small channel while the hub
// holds a channel of n subscribers (the cost must not depend on n).
func BenchmarkHubPublishOther(b *testing.B) {
	for _, n := range hubSizes {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			srv := benchServer(b)
			for _, s := range dummySockets(srv, n) {
				join(b, s, "all")
			}
			join(b, dummySocket(srv), "small")
			data := []byte(`"x"`)
			b.ResetTimer()
			for range b.N {
				if err := srv.hub.deliverLocal("small", data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHubPublishFanout: a publish to a channel of n subscribers,
// reported per delivery (it must stay flat as n grows).
func BenchmarkHubPublishFanout(b *testing.B) {
	for _, n := range hubSizes {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			srv := benchServer(b)
			for _, s := range dummySockets(srv, n) {
				join(b, s, "all")
			}
			data := []byte(`"x"`)
			b.ResetTimer()
			for range b.N {
				if err := srv.hub.deliverLocal("all", data); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/delivery")
		})
	}
}

// BenchmarkHubUnsubscribeAll: n sockets in one channel each disconnect
// (unsubscribe-all), reported per socket.
func BenchmarkHubUnsubscribeAll(b *testing.B) {
	for _, n := range hubSizes {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				srv := benchServer(b)
				socks := dummySockets(srv, n)
				for _, s := range socks {
					join(b, s, "all")
					join(b, s, "own/"+s.id)
				}
				b.StartTimer()
				for _, s := range socks {
					s.unsubscribeAll()
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/socket")
		})
	}
}

// BenchmarkHubKickOut: one socket subscribed to n channels is kicked out
// of all of them, reported per channel.
func BenchmarkHubKickOut(b *testing.B) {
	for _, n := range hubSizes {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				srv := benchServer(b)
				s := dummySocket(srv)
				for i := range n {
					join(b, s, "c"+strconv.Itoa(i))
				}
				b.StartTimer()
				if err := s.KickOut(nil, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/channel")
		})
	}
}

// BenchmarkHubChannels: the broker's resubscribe-all after a reconnection
// asks the hub for its n channels.
func BenchmarkHubChannels(b *testing.B) {
	for _, n := range hubSizes {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			srv := benchServer(b)
			s := dummySocket(srv)
			for i := range n {
				join(b, s, "c"+strconv.Itoa(i))
			}
			b.ResetTimer()
			for range b.N {
				if got := srv.hub.Channels(); len(got) != n {
					b.Fatalf("%d channels, want %d", len(got), n)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/channel")
		})
	}
}

// BenchmarkHubStats: Server.Stats with n channels.
func BenchmarkHubStats(b *testing.B) {
	for _, n := range hubSizes {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			srv := benchServer(b)
			s := dummySocket(srv)
			for i := range n {
				join(b, s, "c"+strconv.Itoa(i))
			}
			b.ResetTimer()
			for range b.N {
				if st := srv.Stats(); st.Channels != n {
					b.Fatalf("%d channels, want %d", st.Channels, n)
				}
			}
		})
	}
}

// BenchmarkHubDeadlines: scheduling and cancelling one socket in a
// schedule of n sockets.
func BenchmarkHubDeadlines(b *testing.B) {
	for _, n := range hubSizes {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			var d deadlines
			defer func() {
				if d.timer != nil {
					d.timer.Stop()
				}
			}()
			far := monoNow() + int64(1<<40)
			for i := range n {
				d.schedule(&Socket{slot: -1}, far+int64(i))
			}
			s := &Socket{slot: -1}
			b.ResetTimer()
			for i := range b.N {
				d.schedule(s, far+int64(i%n))
				d.cancel(s)
			}
		})
	}
}
