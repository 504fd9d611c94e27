//go:build linux && !scnoepoll

package socketcluster_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
)

// With OwnDescriptors, a listener from ListenTCP served through
// UpgradeListener takes the WebSocket upgrades off net/http: the socket
// works, owns its descriptor and has the request net/http would have
// given it, while the mux's other routes and the Server's own non-upgrade
// answers still come from net/http.
func TestUpgradeListenerTakesUpgrades(t *testing.T) {
	srv, err := sc.New(sc.Options{Logger: quietLogger, OwnDescriptors: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.HandleProcedure("echo", func(r *sc.Request) { _ = r.End(r.Data) })
	mux := http.NewServeMux()
	mux.Handle(srv.Options().Path, srv)
	mux.HandleFunc("/hi", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hi") })
	hs := srv.HTTPServer(mux)
	var netHTTP atomic.Int32
	guard := hs.ConnState
	hs.ConnState = func(c net.Conn, st http.ConnState) {
		if st == http.StateNew {
			netHTTP.Add(1)
		}
		guard(c, st)
	}
	l, err := srv.ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ul := srv.UpgradeListener(l, hs)
	if ul == l {
		t.Fatal("UpgradeListener did not take a ListenTCP listener with OwnDescriptors")
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ul) }()
	defer func() {
		_ = srv.Close(context.Background())
		_ = hs.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	}()
	addr := ul.Addr().String()

	cons := sc.Listen[sc.ConnectionEvent](srv).Consumer()
	defer cons.Stop()
	c := sctest.Dial(t, addr, nil)
	c.Handshake(nil)
	ev := next(t, cons)
	if !sc.OwnsDescriptor(ev.Socket) {
		t.Error("the socket does not own its descriptor")
	}
	r := ev.Socket.Request()
	_, port, _ := net.SplitHostPort(r.RemoteAddr)
	if port != strconv.Itoa(ev.Socket.RemotePort()) || r.Host != addr ||
		r.Header.Get("Host") != "" || r.Header.Get("Sec-Websocket-Key") == "" || r.URL.Path != srv.Options().Path {
		t.Errorf("request: RemoteAddr %q, Host %q, header Host %q, key %q, path %q",
			r.RemoteAddr, r.Host, r.Header.Get("Host"), r.Header.Get("Sec-Websocket-Key"), r.URL.Path)
	}
	barrier(t, c)
	if n := netHTTP.Load(); n != 0 {
		t.Errorf("net/http saw %d connections for an upgrade", n)
	}

	for path, want := range map[string]int{"/hi": 200, srv.Options().Path: http.StatusNotImplemented} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	if netHTTP.Load() == 0 {
		t.Error("plain requests did not reach net/http")
	}
}

// Without OwnDescriptors, or for another kind of listener, UpgradeListener
// leaves the listener as it is.
func TestUpgradeListenerLeavesOthers(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts sc.Options
		own  bool // the listener is ListenTCP's
	}{
		{"without OwnDescriptors", sc.Options{}, true},
		{"net.Listen's listener", sc.Options{OwnDescriptors: true}, false},
		{"with DisableEventReads", sc.Options{OwnDescriptors: true, DisableEventReads: true}, true},
		{"with PingTimeoutDisabled", sc.Options{OwnDescriptors: true, PingTimeoutDisabled: true}, true},
	} {
		tc.opts.Logger = quietLogger
		srv, err := sc.New(tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		var l net.Listener
		if tc.own {
			l, err = srv.ListenTCP("127.0.0.1:0")
		} else {
			l, err = net.Listen("tcp", "127.0.0.1:0")
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := srv.UpgradeListener(l, srv.HTTPServer(nil)); got != l {
			t.Errorf("%s: UpgradeListener replaced the listener", tc.name)
		}
		_ = l.Close()
		_ = srv.Close(context.Background())
	}
}
