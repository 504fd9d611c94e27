// Package client is a SocketCluster client in Go: it speaks the protocol
// of socketcluster-client 20.x (the official JavaScript client) to any
// SocketCluster server, this module's or the Node reference.
//
// Dial connects and returns once the handshake is done:
//
//	c, err := client.Dial(ctx, "ws://127.0.0.1:8000/socketcluster/", &client.Options{AutoReconnect: true})
//	if err != nil { … }
//	defer c.Close(1000, "")
//
//	answer, err := c.Invoke(ctx, "echo", map[string]any{"hello": "world"})
//	ch, err := c.Subscribe(ctx, "news")
//	for data := range ch.All(ctx) { … }
//
// New makes a client without connecting, so that listeners exist before
// the first connection; Connect then dials (Dial is New plus Connect).
//
// What it does as the official client does (docs/protocol.md §12):
//
//   - Pings: every ping ("" with protocol version 2, "#1" with version 1)
//     is answered at once; when none comes within the pingTimeout the
//     handshake announced, the client closes the connection with 4000.
//   - Reconnects (Options.AutoReconnect): at once after 4000, 4001 and
//     1005, never after 1000 and 4500–4999, after a back-off otherwise.
//     Channels are subscribed again after every reconnect, and invokes and
//     transmits made while reconnecting are sent once connected.
//   - Tokens: the token of Options.AuthToken is presented in every
//     handshake; #setAuthToken from the server replaces it (answered with
//     {"rid"} when the server asks for a receipt), #removeAuthToken drops
//     it. AuthToken decodes the JWT payload without verifying it.
//   - RPC both ways: Invoke (bounded by Options.AckTimeout and a context)
//     and Transmit to the server; Procedure and Receiver streams for the
//     server's invokes and transmits. Absent data (nil Data) and null
//     (Data("null")) stay distinct; error answers arrive as
//     *socketcluster.Error values with their name and fields.
//   - Events (Listener, or typed with Listen): connecting, connect,
//     connectAbort, disconnect, close, error, kickOut, subscribe,
//     subscribeFail, unsubscribe, authStateChange, authenticate,
//     deauthenticate, removeAuthToken, raw.
//
// Only the default JSON codec is supported.
//
// # Goroutines
//
// A connection has one reader goroutine, which also answers pings; writes
// are serialised by a mutex, so there is no writer goroutine. A reconnect
// runs in one goroutine while it waits or dials. Close waits for all of
// them; the client starts none after Close. Streams never block the
// reader: each consumer has its own queue.
package client
