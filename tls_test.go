package socketcluster_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	sc "github.com/socketcluster-go/socketcluster"
	scclient "github.com/socketcluster-go/socketcluster/client"
	"github.com/socketcluster-go/socketcluster/internal/netpoll"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
	"github.com/socketcluster-go/socketcluster/protocol"
)

// tlsServer is a Server served over TLS, and the configuration its
// clients trust it with.
type tlsServer struct {
	*sc.Server
	addr   string
	client *tls.Config
}

// startTLSServer serves a new Server over TLS with ServeTLS, or, with
// stdListener, with Serve over crypto/tls's tls.NewListener.
func startTLSServer(t testing.TB, opts sc.Options, stdListener bool) *tlsServer {
	t.Helper()
	opts.Logger = quietLogger
	srv, err := sc.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.HandleProcedure("echo", func(r *sc.Request) { _ = r.End(r.Data) })
	cert := sctest.SelfSignedCert(t)
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	served := make(chan error, 1)
	go func() {
		if stdListener {
			served <- srv.Serve(tls.NewListener(l, cfg))
		} else {
			served <- srv.ServeTLS(l, cfg)
		}
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = srv.Close(ctx)
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
	return &tlsServer{Server: srv, addr: addr, client: &tls.Config{RootCAs: roots}}
}

func TestServeTLS(t *testing.T) {
	t.Parallel()
	for _, own := range []bool{false, true} {
		t.Run(map[bool]string{false: "tcpconn", true: "owned-descriptors"}[own], func(t *testing.T) {
			t.Parallel()
			serveTLS(t, sc.Options{OwnDescriptors: own})
		})
	}
}

func serveTLS(t *testing.T, opts sc.Options) {
	ts := startTLSServer(t, opts, false)
	conns := sc.Listen[sc.ConnectionEvent](ts).Consumer()
	defer conns.Stop()
	ctx := ctxT(t)
	var clients []*scclient.Client
	for range 3 {
		c, err := scclient.Dial(ctx, "wss://"+ts.addr+"/socketcluster/", &scclient.Options{TLSConfig: ts.client})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close(1000, "") })
		clients = append(clients, c)
	}
	ev, err := conns.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !ev.Socket.Secure() {
		t.Fatal("a socket served by ServeTLS says it is not secure")
	}
	if ip := ev.Socket.RemoteAddress(); ip != "127.0.0.1" {
		t.Fatalf("remote address %q, want 127.0.0.1", ip)
	}
	if want := opts.OwnDescriptors && netpoll.Available(); sc.OwnsDescriptor(ev.Socket) != want {
		t.Fatalf("the socket owns its descriptor: %v, want %v", sc.OwnsDescriptor(ev.Socket), want)
	}

	// Calls small and large (many TLS records each way), from several
	// clients at once.
	big := strings.Repeat("x", 200_000)
	errc := make(chan error, len(clients))
	for i, c := range clients {
		go func() {
			for j := range 20 {
				data := big[:j*j*500]
				if (i+j)%2 == 0 {
					data = strings.Repeat("y", j)
				}
				want := `"` + data + `"`
				got, err := c.Invoke(ctx, "echo", data)
				if err != nil {
					errc <- err
					return
				}
				if string(got) != want {
					errc <- errors.New("echo answered different data")
					return
				}
			}
			errc <- nil
		}()
	}
	for range clients {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}

	// Pub/sub through the same sockets.
	ch, err := clients[0].Subscribe(ctx, "tls-news")
	if err != nil {
		t.Fatal(err)
	}
	msgs := ch.Consumer()
	defer msgs.Stop()
	if err := clients[1].InvokePublish(ctx, "tls-news", "hello"); err != nil {
		t.Fatal(err)
	}
	got, err := msgs.Next(ctx)
	if err != nil || string(got) != `"hello"` {
		t.Fatalf("publication %s, %v", got, err)
	}
}

func TestServeTLSWithoutCertificate(t *testing.T) {
	t.Parallel()
	srv, err := sc.New(sc.Options{Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Close(context.Background()) }()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	err = srv.ServeTLS(l, &tls.Config{})
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("ServeTLS without a certificate: %v", err)
	}
	if _, err := net.Dial("tcp", l.Addr().String()); err == nil {
		t.Fatal("the listener is still open after ServeTLS refused it")
	}
}

// TestIdleTLSSocketsHoldNoGoroutine is TestIdleSocketsHoldNoGoroutine over
// TLS: no goroutine per idle socket through ServeTLS, one each through
// tls.NewListener (crypto/tls then needs a blocked Read).
func TestIdleTLSSocketsHoldNoGoroutine(t *testing.T) {
	// Not parallel: it counts the process's goroutines.
	const n = 60
	for _, mode := range []struct {
		name        string
		stdListener bool
		own         bool
	}{{"ServeTLS", false, false}, {"ServeTLS/owned-descriptors", false, true}, {"tls.NewListener", true, false}} {
		t.Run(mode.name, func(t *testing.T) {
			ts := startTLSServer(t, sc.Options{OwnDescriptors: mode.own}, mode.stdListener)
			before := settledGoroutines()
			openIdle(t, ws.Dialer{TLSConfig: ts.client}, "wss://"+ts.addr+"/socketcluster/", n)
			eventually(t, "handshakes", func() bool { return ts.ClientsCount() == n })
			added := settledGoroutines() - before
			if mode.stdListener && added < n {
				t.Fatalf("%d goroutines added by %d sockets read by goroutines", added, n)
			}
			if !mode.stdListener && netpoll.Available() && added > 10 {
				t.Fatalf("%d goroutines added by %d idle TLS sockets", added, n)
			}
			t.Logf("%d idle TLS sockets: %d more goroutines", n, added)
		})
	}
}

// A TLS subscriber that stops reading is cut as a slow consumer, in both
// modes (with owned descriptors its records wait in the descriptor's
// waiting write), while a TLS subscriber that reads gets every publication.
func TestSlowConsumerTLS(t *testing.T) {
	t.Parallel()
	for _, own := range []bool{false, true} {
		t.Run(map[bool]string{false: "tcpconn", true: "owned-descriptors"}[own], func(t *testing.T) {
			t.Parallel()
			slowConsumerTLS(t, sc.Options{OwnDescriptors: own})
		})
	}
}

func slowConsumerTLS(t *testing.T, opts sc.Options) {
	const limit = 1 << 20
	opts.OutboundQueueLimit, opts.BrokerTimeout = limit, time.Minute
	ts := startTLSServer(t, opts, false)
	discs := sc.Listen[sc.DisconnectionEvent](ts).Consumer()
	defer discs.Stop()
	conns := sc.Listen[sc.ConnectionEvent](ts).Consumer()
	defer conns.Stop()
	ctx := ctxT(t)
	url := "wss://" + ts.addr + "/socketcluster/"

	// The slow subscriber handshakes and subscribes, reads both answers,
	// then never reads again.
	slow, br, _, err := ws.Dialer{TLSConfig: ts.client}.Dial(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if br != nil {
		ws.PutReader(br)
	}
	for _, m := range []string{`{"event":"#handshake","data":{},"cid":1}`, `{"event":"#subscribe","data":{"channel":"big"},"cid":2}`} {
		if err := wsutil.WriteClientText(slow, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	_ = slow.SetReadDeadline(time.Now().Add(wait))
	for {
		msg, err := wsutil.ReadServerText(slow)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(msg), `"rid":2`) {
			break
		}
	}
	slowSocket := next(t, conns).Socket
	if want := opts.OwnDescriptors && netpoll.Available(); sc.OwnsDescriptor(slowSocket) != want {
		t.Fatalf("the slow socket owns its descriptor: %v, want %v", sc.OwnsDescriptor(slowSocket), want)
	}

	fast, err := scclient.Dial(ctx, url, &scclient.Options{TLSConfig: ts.client})
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close(1000, "")
	ch, err := fast.Subscribe(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	msgs := ch.Consumer()
	defer msgs.Stop()

	pad := strings.Repeat("x", 256<<10)
	for i := 0; ts.SlowConsumerCount() == 0; i++ {
		if i == 2000 {
			t.Fatal("the slow TLS consumer was never detected")
		}
		if err := ts.Exchange().InvokePublish(ctx, "big", map[string]any{"i": i, "pad": pad}); err != nil {
			t.Fatal(err)
		}
		got, err := msgs.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf(`{"i":%d,"pad":"%s"}`, i, pad); string(got) != want {
			t.Fatalf("fast subscriber: publication %d is %.60s…", i, got)
		}
	}
	ev := next(t, discs)
	if ev.Socket != slowSocket || ev.Code != protocol.CloseSlowConsumer {
		t.Fatalf("the slow consumer was disconnected with %d %q", ev.Code, ev.Reason)
	}
	if ts.ClientsCount() != 1 {
		t.Fatalf("%d clients left, want the fast one", ts.ClientsCount())
	}
}
