package socketcluster_test

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/gobwas/ws"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
	"github.com/socketcluster-go/socketcluster/protocol"
)

// dialStatus dials and returns 101 or the HTTP status of the refusal.
func dialStatus(t *testing.T, addr string, header http.Header) (int, *sctest.Client) {
	t.Helper()
	c, err := sctest.DialErr(t, addr, &sctest.Options{Header: header})
	if err == nil {
		return 101, c
	}
	var se ws.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("dial: %v, want an HTTP status", err)
	}
	return int(se), nil
}

func TestLimitMaxConnections(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	ts := newServer(t, sc.Options{MaxConnections: 2, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	a, _ := ts.connect(t, nil)
	ts.dial(t, nil) // pending (no handshake) counts too
	for i := 0; i < 5; i++ {
		if code, _ := dialStatus(t, ts.addr, nil); code != http.StatusServiceUnavailable {
			t.Fatalf("connection over the limit: %d, want 503", code)
		}
	}
	if n := ts.Stats().RefusedConnections; n != 5 {
		t.Fatalf("Stats.RefusedConnections = %d, want 5", n)
	}
	// Counted each time, logged once per burst.
	if n := strings.Count(logs.String(), "refusing WebSocket upgrades over a connection limit"); n != 1 {
		t.Fatalf("%d log lines for a burst of 5 refusals, want 1:\n%s", n, logs.String())
	}
	barrier(t, a) // the refusal harmed no one
	a.Close()
	// The slot is given back when the socket's reader ends.
	eventually(t, "a free slot after a client left", func() bool {
		code, c := dialStatus(t, ts.addr, nil)
		if c != nil {
			c.Close()
		}
		return code == 101
	})
}

func TestLimitMaxConnectionsPerAddress(t *testing.T) {
	t.Parallel()
	xff := func(v string) http.Header { return http.Header{"X-Forwarded-For": {v}} }
	t.Run("peer address", func(t *testing.T) {
		// Without ClientAddressHeader, the header is not trusted: both
		// come from 127.0.0.1.
		ts := newServer(t, sc.Options{MaxConnectionsPerAddress: 1})
		if code, _ := dialStatus(t, ts.addr, xff("10.0.0.1")); code != 101 {
			t.Fatalf("first: %d", code)
		}
		if code, _ := dialStatus(t, ts.addr, xff("10.0.0.2")); code != http.StatusTooManyRequests {
			t.Fatalf("second from the same peer: %d, want 429", code)
		}
		if n := ts.Stats().RefusedPerAddress; n != 1 {
			t.Fatalf("Stats.RefusedPerAddress = %d", n)
		}
	})
	t.Run("proxy header", func(t *testing.T) {
		ts := newServer(t, sc.Options{MaxConnectionsPerAddress: 2, ClientAddressHeader: "X-Forwarded-For"})
		for i, tc := range []struct {
			header string
			want   int
		}{
			{"10.0.0.1", 101},
			{"192.0.2.9, 10.0.0.1", 101}, // the last entry is the proxy's
			{"10.0.0.1", http.StatusTooManyRequests},
			{"10.0.0.1, 10.0.0.2", 101},
			{"[2001:db8::1]:1234", 101},
			{"2001:db8:0::1", 101}, // the same address, second connection
			{"2001:db8::1", http.StatusTooManyRequests},
		} {
			if code, _ := dialStatus(t, ts.addr, xff(tc.header)); code != tc.want {
				t.Fatalf("#%d X-Forwarded-For %q: %d, want %d", i, tc.header, code, tc.want)
			}
		}
		if n := ts.Stats().RefusedPerAddress; n != 2 {
			t.Fatalf("Stats.RefusedPerAddress = %d, want 2", n)
		}
	})
}

func TestLimitHandshakesPerSecond(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{MaxHandshakesPerSecond: 1})
	// One per second passes; dialling in a loop meets the limit unless
	// every dial takes a second (bounded by the loop).
	refused := false
	for i := 0; i < 30 && !refused; i++ {
		code, c := dialStatus(t, ts.addr, nil)
		switch code {
		case 101:
			c.Close()
		case http.StatusServiceUnavailable:
			refused = true
		default:
			t.Fatalf("status %d", code)
		}
	}
	if !refused {
		t.Fatal("30 handshakes in a row were never refused at 1 per second")
	}
	if n := ts.Stats().RefusedHandshakeRate; n < 1 {
		t.Fatalf("Stats.RefusedHandshakeRate = %d", n)
	}
}

func TestInboundRateLimit(t *testing.T) {
	t.Parallel()
	t.Run("messages", func(t *testing.T) {
		ts := newServer(t, sc.Options{InboundMessageRate: 2, InboundMessageBurst: 10})
		calm, _ := ts.connect(t, nil)
		flood, _ := ts.connect(t, nil)
		barrier(t, calm)
		for i := 0; i < 200; i++ {
			if flood.TrySendText(sctest.EventPacket("x", i, 0)) != nil {
				break
			}
		}
		code, reason, _ := flood.ExpectClose()
		if code != protocol.CloseInboundRateLimit || reason != protocol.InboundRateLimitReason {
			t.Fatalf("close %d %q, want %d %q", code, reason, protocol.CloseInboundRateLimit, protocol.InboundRateLimitReason)
		}
		barrier(t, calm) // within its burst: still served
		if n := ts.Stats().RateLimitedSockets; n != 1 {
			t.Fatalf("Stats.RateLimitedSockets = %d, want 1", n)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		ts := newServer(t, sc.Options{InboundByteRate: 100, InboundByteBurst: 100})
		c, _ := ts.connect(t, nil) // the handshake's bytes are within the burst
		big := strings.Repeat("a", 1000)
		// The first message takes the bucket into debt (a message larger
		// than the burst is not refused for its size alone); the next one
		// within 9 s is refused.
		c.Transmit("x", big)
		_ = c.TrySendText(sctest.EventPacket("x", big, 0))
		if code, _, _ := c.ExpectClose(); code != protocol.CloseInboundRateLimit {
			t.Fatalf("close %d, want %d", code, protocol.CloseInboundRateLimit)
		}
	})
}

func TestLimitOptionsValidate(t *testing.T) {
	t.Parallel()
	for _, o := range []sc.Options{
		{MaxConnections: -1}, {MaxConnectionsPerAddress: -1}, {MaxHandshakesPerSecond: -1},
		{InboundMessageRate: -1}, {InboundByteBurst: -1}, {ClientAddressHeader: "X-Forwarded-For: 1"},
	} {
		if err := o.Validate(); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}

// TestOriginRefusalsCountedAndLogged: upgrades from an origin that is not
// allowed are counted, and logged once per burst.
func TestOriginRefusalsCountedAndLogged(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	ts := newServer(t, sc.Options{Origins: "example.com:443", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for i := 0; i < 3; i++ {
		if code, _ := dialStatus(t, ts.addr, http.Header{"Origin": {"https://evil.example"}}); code != http.StatusForbidden {
			t.Fatalf("bad origin: %d, want 403", code)
		}
	}
	if code, _ := dialStatus(t, ts.addr, http.Header{"Origin": {"https://example.com"}}); code != 101 {
		t.Fatalf("allowed origin: %d", code)
	}
	if n := ts.Stats().RefusedOrigins; n != 3 {
		t.Fatalf("Stats.RefusedOrigins = %d, want 3", n)
	}
	if s := logs.String(); strings.Count(s, "origins not in Options.Origins") != 1 || !strings.Contains(s, "https://evil.example") {
		t.Fatalf("want one log line naming the origin:\n%s", s)
	}
}
