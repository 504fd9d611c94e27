package socketcluster

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkDecideInbound is the cost of one inbound action decided by a
// middleware that allows it unchanged: what every RPC, transmit, subscribe
// and publish of a server with inbound middleware pays on top of the work.
// The immediate variant is a function set with SetImmediateMiddleware.
func BenchmarkDecideInbound(b *testing.B) {
	for _, immediate := range []bool{false, true} {
		b.Run(fmt.Sprintf("immediate=%v", immediate), func(b *testing.B) {
			srv, err := New(Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Close(context.Background())
			set := srv.SetMiddleware
			if immediate {
				set = srv.SetImmediateMiddleware
			}
			if err := set(MiddlewareInbound, func(ctx context.Context, a *Action) error { return nil }); err != nil {
				b.Fatal(err)
			}
			a := &Action{Type: ActionInvoke, Procedure: "p", Data: Data(`1`)}
			b.ReportAllocs()
			for b.Loop() {
				if err := srv.runInbound(nil, a); err != nil {
					b.Fatal(err)
				}
			}
		})
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
