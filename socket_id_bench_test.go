package socketcluster

import "testing"

func BenchmarkNewSocketID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = newSocketID()
	}
}
