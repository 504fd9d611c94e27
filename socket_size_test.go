package socketcluster

import (
	"testing"
	"unsafe"
)

// TestSocketSize fails when the Socket struct grows past the 288-byte size
// class: every idle connection holds one, and the next class up is 32 bytes
// more per connection. Put a field that idle sockets seldom need in
// socketMore instead.
func TestSocketSize(t *testing.T) {
	t.Parallel()
	if n := unsafe.Sizeof(Socket{}); n > 288 {
		t.Fatalf("Socket is %d bytes, more than 288: move rarely used fields into socketMore", n)
	}
}
