package socketcluster_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
)

// The examples talk to the server with a raw test client that prints the
// exact frames on the wire; a real application uses the official
// socketcluster-client, which sends and reads the same frames.

// start serves srv on a free loopback port and returns the address and a
// function that shuts everything down.
func start(srv *sc.Server) (addr string, stop func()) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Print(err)
		}
	}()
	return l.Addr().String(), func() {
		_ = srv.Close(context.Background())
		<-served
	}
}

// client connects and completes the SocketCluster handshake (cid 1).
func client(addr string) *sctest.Client {
	c, err := sctest.Connect(addr, nil)
	if err != nil {
		log.Fatal(err)
	}
	c.Handshake(nil)
	return c
}

// A server with the reference defaults on a listener of your choice. The
// zero Options is a valid configuration.
func ExampleNew() {
	srv, err := sc.New(sc.Options{})
	if err != nil {
		log.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l) // returns http.ErrServerClosed after Close
	}()

	fmt.Println(srv.Path(), srv.IsReady(), srv.Options().PingTimeout)

	// Graceful shutdown: every client gets a close frame with code 1001.
	if err := srv.Close(context.Background()); err != nil {
		log.Fatal(err)
	}
	<-done
	// Output: /socketcluster/ true 30s
}

// ListenAndServe is the one-line way to run a server; the Server is also an
// http.Handler to mount on a mux of your own.
func ExampleServer_ListenAndServe() {
	srv, err := sc.New(sc.Options{PingInterval: 8 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	srv.HandleProcedure("echo", func(r *sc.Request) { _ = r.End(r.Data) })
	if err := srv.ListenAndServe(":8000"); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// ServeTLS serves wss:// with a certificate; its sockets are read like
// plain ones, with no goroutine per idle connection. With an http.Server
// of your own (HTTPServer), serve it on NewTLSListener instead.
func ExampleServer_ServeTLS() {
	srv, err := sc.New(sc.Options{})
	if err != nil {
		log.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair("cert.pem", "key.pem")
	if err != nil {
		log.Fatal(err)
	}
	l, err := net.Listen("tcp", ":8443")
	if err != nil {
		log.Fatal(err)
	}
	err = srv.ServeTLS(l, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// HandleProcedure serves one procedure name for every socket, without a
// goroutine per connection.
func ExampleServer_HandleProcedure() {
	srv, err := sc.New(sc.Options{})
	if err != nil {
		log.Fatal(err)
	}
	srv.HandleProcedure("upper", func(req *sc.Request) {
		var s string
		if err := req.Data.Decode(&s); err != nil {
			_ = req.Error(sc.NewError("BadArgumentError", "upper takes a string"))
			return
		}
		_ = req.End(strings.ToUpper(s))
	})
	addr, stop := start(srv)
	defer stop()

	c := client(addr)
	defer c.Close()
	fmt.Println(c.Invoke("upper", "hello").Raw)
	fmt.Println(c.Invoke("upper", 42).Raw)
	// Output:
	// {"rid":2,"data":"HELLO"}
	// {"rid":3,"error":{"message":"upper takes a string","name":"BadArgumentError"}}
}

// HandleReceiver serves one transmit (fire-and-forget) event for every
// socket, without a goroutine per connection. Here it echoes the data back
// to the sender as another event.
func ExampleServer_HandleReceiver() {
	srv, err := sc.New(sc.Options{})
	if err != nil {
		log.Fatal(err)
	}
	srv.HandleReceiver("shout", func(s *sc.Socket, data sc.Data) {
		var text string
		if data.Decode(&text) != nil {
			return // a transmit has no answer: ignore what cannot be used
		}
		_ = s.Transmit("heard", strings.ToUpper(text))
	})
	addr, stop := start(srv)
	defer stop()

	c := client(addr)
	defer c.Close()
	c.Transmit("shout", 42) // not a string: ignored
	c.Transmit("shout", "hello")
	fmt.Println(c.NextText())
	// Output: {"event":"heard","data":"HELLO"}
}

// Each socket has its own procedure streams; a loop per socket answers
// the invokes of one name in order.
func ExampleProcedures_Procedure() {
	srv, err := sc.New(sc.Options{})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Consumers exist from the moment they are made: make them before the
	// events they must see can happen.
	connections := sc.Listen[sc.ConnectionEvent](srv).Consumer()
	served := make(chan struct{}) // this example has one client
	go func() {
		for ev := range connections.All(ctx) {
			reqs := ev.Socket.Procedure("add").Consumer()
			close(served)
			go func() {
				// The loop ends when the socket ends (its streams are
				// killed) or ctx is done.
				for req := range reqs.All(ctx) {
					var xs []float64
					if err := req.Data.Decode(&xs); err != nil || len(xs) != 2 {
						_ = req.Error(sc.NewError("BadArgumentError", "add takes two numbers"))
						continue
					}
					_ = req.End(xs[0] + xs[1])
				}
			}()
		}
	}()
	addr, stop := start(srv)
	defer stop()

	c := client(addr)
	defer c.Close()
	<-served
	fmt.Println(c.Invoke("add", []float64{1, 2.5}).Raw)
	// Output: {"rid":2,"data":3.5}
}

// Listen gives a typed stream of one server (or socket) event.
func ExampleListen() {
	srv, err := sc.New(sc.Options{})
	if err != nil {
		log.Fatal(err)
	}
	// Register the consumer before anything can connect: events emitted
	// while nobody listens are lost.
	connections := sc.Listen[sc.ConnectionEvent](srv).Consumer()
	defer connections.Stop()
	addr, stop := start(srv)
	defer stop()

	c := client(addr)
	defer c.Close()
	ev, err := connections.Next(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ev.ID == c.ID, ev.IsAuthenticated, ev.PingTimeout, srv.ClientsCount())
	// Output: true false 30s 1
}

// The exchange subscribes the server itself to a channel: client publishes
// arrive in the channel's stream.
func ExampleExchange_Subscribe() {
	srv, err := sc.New(sc.Options{})
	if err != nil {
		log.Fatal(err)
	}
	addr, stop := start(srv)
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	ch, err := srv.Exchange().Subscribe(ctx, "news")
	if err != nil {
		log.Fatal(err)
	}
	received := make(chan struct{})
	go func() {
		defer close(received)
		for data := range ch.All(ctx) {
			fmt.Println("server got", data)
			break
		}
	}()

	c := client(addr)
	defer c.Close()
	c.Subscribe("news")
	c.SendText(`{"event":"#publish","data":{"channel":"news","data":{"title":"hi"}}}`)
	<-received
	fmt.Println("client got", c.NextText())
	// Output:
	// server got {"title":"hi"}
	// client got {"event":"#publish","data":{"channel":"news","data":{"title":"hi"}}}
}

// Middleware decides on every action of a line; returning an *Error
// blocks the action and gives the client that error.
func ExampleServer_SetMiddleware() {
	srv, err := sc.New(sc.Options{})
	if err != nil {
		log.Fatal(err)
	}
	err = srv.SetMiddleware(sc.MiddlewareInbound, func(ctx context.Context, a *sc.Action) error {
		switch {
		case a.Type == sc.ActionInvoke && strings.HasPrefix(a.Procedure, "admin/") && a.Socket.AuthToken() == nil:
			return sc.NewError("AuthRequiredError", "log in first").With("procedure", a.Procedure)
		case a.Type == sc.ActionSubscribe && strings.HasPrefix(a.Channel, "private/"):
			return sc.ErrBlocked // the client gets a SilentMiddlewareBlockedError
		}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	srv.HandleProcedure("admin/stats", func(r *sc.Request) { _ = r.End(srv.ClientsCount()) })
	addr, stop := start(srv)
	defer stop()

	c := client(addr)
	defer c.Close()
	fmt.Println(c.Invoke("admin/stats", nil).Raw)
	fmt.Println(c.Invoke("#subscribe", map[string]string{"channel": "private/x"}).Raw)
	// Output:
	// {"rid":2,"error":{"message":"log in first","name":"AuthRequiredError","procedure":"admin/stats"}}
	// {"rid":3,"error":{"message":"The subscribe AGAction was blocked by inbound middleware","name":"SilentMiddlewareBlockedError","type":"inbound"}}
}
