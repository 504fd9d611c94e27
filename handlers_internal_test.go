package socketcluster

import "testing"

// BenchmarkProcedureHandler: the handler lookup every invoke makes, from
// all cores at once (the workers of several sockets).
func BenchmarkProcedureHandler(b *testing.B) {
	srv := &Server{}
	for _, name := range []string{"echo", "getUser", "setUser", "list"} {
		srv.HandleProcedure(name, func(*Request) {})
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if srv.procedureHandler("echo") == nil {
				b.Error("no handler")
				return
			}
		}
	})
}
