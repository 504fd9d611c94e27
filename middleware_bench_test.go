package socketcluster

import (
	"context"
	"testing"
)

// BenchmarkDecideInbound is the cost of one inbound action decided by a
// middleware that allows it unchanged: what every RPC, transmit, subscribe
// and publish of a server with inbound middleware pays on top of the work.
func BenchmarkDecideInbound(b *testing.B) {
	srv, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close(context.Background())
	if err := srv.SetMiddleware(MiddlewareInbound, func(ctx context.Context, a *Action) error { return nil }); err != nil {
		b.Fatal(err)
	}
	a := &Action{Type: ActionInvoke, Procedure: "p", Data: Data(`1`)}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := srv.runInbound(nil, a); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecideInboundParallel is BenchmarkDecideInbound from many
// sockets' readers at once.
func BenchmarkDecideInboundParallel(b *testing.B) {
	srv, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close(context.Background())
	if err := srv.SetMiddleware(MiddlewareInbound, func(ctx context.Context, a *Action) error { return nil }); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		a := &Action{Type: ActionInvoke, Procedure: "p", Data: Data(`1`)}
		for pb.Next() {
			if err := srv.runInbound(nil, a); err != nil {
				b.Fatal(err)
			}
		}
	})
}
