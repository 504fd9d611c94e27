package socketcluster_test

import (
	"sync/atomic"
	"testing"

	sc "github.com/socketcluster-go/socketcluster"
	scclient "github.com/socketcluster-go/socketcluster/client"
)

// BenchmarkTLSEcho measures RPC calls over TLS (the Go client, 32
// connections, calls from all of them at once) against a server whose
// sockets are read event-driven (ServeTLS) and one whose sockets each have
// a reading goroutine (Serve over tls.NewListener). Client and server
// share the process, so ns/op is the cost of both; compare the variants.
//
//	go test -run '^$' -bench TLSEcho -benchmem .
func BenchmarkTLSEcho(b *testing.B) {
	for _, v := range []struct {
		name        string
		stdListener bool
	}{{"listener=ServeTLS", false}, {"listener=tls.NewListener", true}} {
		b.Run(v.name, func(b *testing.B) {
			ts := startTLSServer(b, sc.Options{}, v.stdListener)
			ctx := ctxT(b)
			clients := make([]*scclient.Client, 32)
			for i := range clients {
				c, err := scclient.Dial(ctx, "wss://"+ts.addr+"/socketcluster/", &scclient.Options{TLSConfig: ts.client})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = c.Close(1000, "") })
				clients[i] = c
			}
			var next atomic.Int32
			b.SetParallelism(len(clients) / 2) // GOMAXPROCS × 16 goroutines: all clients busy on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				c := clients[int(next.Add(1)-1)%len(clients)]
				for pb.Next() {
					if _, err := c.Invoke(ctx, "echo", "ping"); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
