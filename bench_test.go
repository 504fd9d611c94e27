package socketcluster_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
)

// In-process subscribers for benchmarks: each one is a real server socket
// (made by Server.ServeHTTP through a hijackable ResponseWriter) on a fake
// connection. During setup the fake connection carries the upgrade,
// #handshake and #subscribe like a pipe; after that every frame the server
// writes is counted and dropped on the spot. A benchmark then measures the
// server's own delivery path (hub, per-socket queue, flush, frame writes)
// without the kernel's loopback or a client's parsing.

type hijackWriter struct {
	h    http.Header
	conn net.Conn
}

func (w *hijackWriter) Header() http.Header         { return w.h }
func (w *hijackWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *hijackWriter) WriteHeader(int)             {}
func (w *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.conn, bufio.NewReadWriter(bufio.NewReader(w.conn), bufio.NewWriter(w.conn)), nil
}

// countingConn is the server's side of a fake connection.
type countingConn struct {
	in       *io.PipeReader // client → server
	out      *io.PipeWriter // server → client, during setup
	counting atomic.Bool
	counter  *atomic.Int64
}

func (c *countingConn) Read(b []byte) (int, error) { return c.in.Read(b) }
func (c *countingConn) Write(b []byte) (int, error) {
	if c.counting.Load() {
		// One Write per frame (net.Buffers on a non-TCP conn); pings
		// (empty text frames) are not deliveries. 0xc1: compressed
		// (permessage-deflate).
		if len(b) > 2 && (b[0] == 0x81 || b[0] == 0xc1) {
			if b[0] == 0x81 && (b[2] == '[' || len(b) > 4 && b[1] == 126 && b[4] == '[') {
				// An array frame (Options.CoalescePackets): one
				// delivery per publication in it.
				c.counter.Add(int64(bytes.Count(b, []byte(`"#publish"`))))
			} else {
				c.counter.Add(1)
			}
		}
		return len(b), nil
	}
	return c.out.Write(b)
}
func (c *countingConn) Close() error {
	_ = c.in.Close()
	_ = c.out.Close()
	return nil
}
func (c *countingConn) LocalAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8000}
}
func (c *countingConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
}
func (c *countingConn) SetDeadline(time.Time) error      { return nil }
func (c *countingConn) SetReadDeadline(time.Time) error  { return nil }
func (c *countingConn) SetWriteDeadline(time.Time) error { return nil }

// pipeSubscribe connects one in-process client, handshakes and subscribes
// to channel; from then on every frame sent to it is counted in delivered.
// The returned function closes the client's side.
func pipeSubscribe(tb testing.TB, srv *sc.Server, channel string, delivered *atomic.Int64) (closeClient func()) {
	return pipeSubscribeExt(tb, srv, channel, delivered, "")
}

// pipeSubscribeExt is pipeSubscribe with a Sec-WebSocket-Extensions offer
// (extensions, when not empty).
func pipeSubscribeExt(tb testing.TB, srv *sc.Server, channel string, delivered *atomic.Int64, extensions string) (closeClient func()) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	conn := &countingConn{in: inR, out: outW, counter: delivered}
	req, _ := http.NewRequest(http.MethodGet, "http://bench.local/socketcluster/", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	req.Header.Set("Sec-WebSocket-Version", "13")
	if extensions != "" {
		req.Header.Set("Sec-WebSocket-Extensions", extensions)
	}
	req.RemoteAddr = "127.0.0.1:1"
	go srv.ServeHTTP(&hijackWriter{h: http.Header{}, conn: conn}, req)

	br := bufio.NewReader(outR)
	resp, err := http.ReadResponse(br, req)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		tb.Fatalf("upgrade: %v %v", resp, err)
	}
	send := func(s string) {
		go func() { _ = ws.WriteFrame(inW, ws.MaskFrame(ws.NewTextFrame([]byte(s)))) }()
	}
	recv := func() string {
		f, err := sctest.ReadFrame(br)
		if err != nil {
			tb.Fatal(err)
		}
		return string(f.Payload)
	}
	send(`{"event":"#handshake","data":{"authToken":null},"cid":1}`)
	if r := recv(); !strings.HasPrefix(r, `{"rid":1,"data":`) {
		tb.Fatalf("handshake: %s", r)
	}
	conn.counting.Store(true) // the subscribe ack is the first frame counted
	send(`{"event":"#subscribe","data":{"channel":"` + channel + `"},"cid":2}`)
	return func() {
		_ = inW.Close()
		_ = outR.Close()
	}
}

// BenchmarkFanOut publishes one message per op to a channel with n local
// subscribers and waits until every subscriber has it. ns/msg and
// allocs/msg are per delivered message.
func BenchmarkFanOut(b *testing.B) {
	for _, n := range []int{1, 100, 10000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			srv, err := sc.New(sc.Options{Logger: quietLogger, PingInterval: time.Hour, PingTimeout: time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			var delivered atomic.Int64
			closers := make([]func(), n)
			for i := range closers {
				closers[i] = pipeSubscribe(b, srv, "bench", &delivered)
			}
			for delivered.Load() < int64(n) { // every subscribe acknowledged
				runtime.Gosched()
			}
			delivered.Store(0)
			defer func() {
				// The fake connections drop the server's close frames and
				// ignore deadlines: end them from the client side first.
				for _, c := range closers {
					c()
				}
				_ = srv.Close(context.Background())
			}()
			data := map[string]any{"bid": 1.0842, "ask": 1.0844, "ts": int64(1732245000123)}
			ctx := context.Background()
			exch := srv.Exchange()

			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			ops := 0
			b.ReportAllocs()
			for b.Loop() {
				ops++
				if err := exch.InvokePublish(ctx, "bench", data); err != nil {
					b.Fatal(err)
				}
				want := int64(ops * n)
				for delivered.Load() < want {
					runtime.Gosched()
				}
			}
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			msgs := float64(ops * n)
			b.ReportMetric(float64(elapsed.Nanoseconds())/msgs, "ns/msg")
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/msgs, "allocs/msg")
		})
	}
}

// BenchmarkFanOutBurst publishes bursts of 10 messages per op to a channel
// with n local subscribers, with and without Options.CoalescePackets, and
// waits until every subscriber has them all. ns/msg is per delivery.
func BenchmarkFanOutBurst(b *testing.B) {
	const burst = 10
	for _, n := range []int{100, 1000} {
		for _, coalesce := range []bool{false, true} {
			b.Run(fmt.Sprintf("subscribers=%d/coalesce=%v", n, coalesce), func(b *testing.B) {
				srv, err := sc.New(sc.Options{Logger: quietLogger, PingInterval: time.Hour, PingTimeout: time.Hour, CoalescePackets: coalesce})
				if err != nil {
					b.Fatal(err)
				}
				var delivered atomic.Int64
				closers := make([]func(), n)
				for i := range closers {
					closers[i] = pipeSubscribe(b, srv, "bench", &delivered)
				}
				for delivered.Load() < int64(n) {
					runtime.Gosched()
				}
				delivered.Store(0)
				defer func() {
					for _, c := range closers {
						c()
					}
					_ = srv.Close(context.Background())
				}()
				data := map[string]any{"bid": 1.0842, "ask": 1.0844, "ts": int64(1732245000123)}
				exch := srv.Exchange()
				start := time.Now()
				ops := 0
				b.ReportAllocs()
				for b.Loop() {
					ops++
					for range burst {
						if err := exch.TransmitPublish("bench", data); err != nil {
							b.Fatal(err)
						}
					}
					want := int64(ops * n * burst)
					for delivered.Load() < want {
						runtime.Gosched()
					}
				}
				b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(ops*n*burst), "ns/msg")
			})
		}
	}
}
