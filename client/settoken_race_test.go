package client

import (
	"context"
	"testing"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
)

// A token the server sets the moment the socket is connected (a gateway
// applying its backend's answer) may reach the client's reader before the
// client finished handling the handshake response: it must be kept.
func TestSetAuthTokenRightAfterHandshake(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{}, func(srv *sc.Server) {
		cons := sc.Listen[sc.ConnectionEvent](srv).Consumer()
		go func() {
			defer cons.Stop()
			for {
				ev, err := cons.Next(context.Background())
				if err != nil {
					return
				}
				_ = ev.Socket.SetAuthToken(context.Background(), sc.AuthToken{"sub": ev.ID}, nil)
			}
		}()
		t.Cleanup(func() { cons.Stop() })
	})
	for i := 0; i < 20; i++ {
		c := ts.dial(t, nil)
		deadline := time.Now().Add(wait)
		for c.AuthToken()["sub"] != c.ID() {
			if time.Now().After(deadline) {
				t.Fatalf("connection %d: the token set at connection was lost (state %s)", i, c.AuthState())
			}
			time.Sleep(5 * time.Millisecond)
		}
		_ = c.Close(1000, "")
	}
}
