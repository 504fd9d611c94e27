package client_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/client"
)

// A client calls a procedure, subscribes to a channel, publishes to it,
// and serves a procedure the server invokes. The server runs in the same
// process here; any SocketCluster server (the Node reference too) works.
func Example() {
	srv, err := sc.New(sc.Options{})
	if err != nil {
		log.Fatal(err)
	}
	srv.HandleProcedure("echo", func(req *sc.Request) { _ = req.End(req.Data) })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := client.Dial(ctx, "ws://"+l.Addr().String()+"/socketcluster/", &client.Options{
		AutoReconnect: true, // reconnect and resubscribe as the official client does
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(1000, "")

	// Log connection events while the client lives.
	go func() {
		for ev := range c.Listener("disconnect").All(ctx) {
			log.Printf("disconnected: %+v", ev)
		}
	}()

	// RPC: the answer is raw JSON.
	answer, err := c.Invoke(ctx, "echo", map[string]any{"hello": "world"})
	if err != nil {
		log.Fatal(err)
	}
	var m map[string]string
	_ = answer.Decode(&m)
	fmt.Println(m["hello"])

	// Serve a procedure the server may invoke (socket.Invoke on the server).
	go func() {
		for req := range c.Procedure("ping").All(ctx) {
			_ = req.End("pong")
		}
	}()

	// Pub/sub: subscribe, then publish to the channel (the publisher gets
	// its own message too).
	ch, err := c.Subscribe(ctx, "news")
	if err != nil {
		log.Fatal(err)
	}
	data := ch.Consumer()
	if err := c.InvokePublish(ctx, "news", "extra, extra"); err != nil {
		log.Fatal(err)
	}
	msg, err := data.Next(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(msg))
	_ = ch.Unsubscribe()
	// Output:
	// world
	// "extra, extra"
}
