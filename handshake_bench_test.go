package socketcluster_test

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
)

// BenchmarkConnectHandshake: one WebSocket upgrade and one #handshake
// (no token) per op, through in-process pipes, then the client goes away.
// allocs/op and B/op are the server's and the in-process client's together.
func BenchmarkConnectHandshake(b *testing.B) {
	srv, err := sc.New(sc.Options{Logger: quietLogger, PingInterval: time.Hour, PingTimeout: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Close(ctxT(b)) })
	b.ReportAllocs()
	for b.Loop() {
		inR, inW := io.Pipe()
		outR, outW := io.Pipe()
		conn := &countingConn{in: inR, out: outW}
		req, _ := http.NewRequest(http.MethodGet, "http://bench.local/socketcluster/", nil)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.RemoteAddr = "127.0.0.1:1"
		go srv.ServeHTTP(&hijackWriter{h: http.Header{}, conn: conn}, req)
		br := bufio.NewReader(outR)
		resp, err := http.ReadResponse(br, req)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			b.Fatalf("upgrade: %v %v", resp, err)
		}
		go func() {
			_ = ws.WriteFrame(inW, ws.MaskFrame(ws.NewTextFrame([]byte(`{"event":"#handshake","data":{"authToken":null},"cid":1}`))))
		}()
		f, err := sctest.ReadFrame(br)
		if err != nil {
			b.Fatal(err)
		}
		if !strings.HasPrefix(string(f.Payload), `{"rid":1,"data":`) {
			b.Fatalf("handshake: %s", f.Payload)
		}
		_ = inW.Close()
		_ = outR.Close()
	}
}
