package socketcluster

import (
	"testing"
	"unsafe"
)

// TestSocketSize fails when the Socket struct grows past the 256-byte size
// class: every idle connection holds one, and the next class up is 32 bytes
// more per connection. Put a field that idle sockets seldom need in
// socketMore instead, and keep the one-byte fields together.
func TestSocketSize(t *testing.T) {
	t.Parallel()
	if n := unsafe.Sizeof(Socket{}); n > 256 {
		t.Fatalf("Socket is %d bytes, more than 256: move rarely used fields into socketMore", n)
	}
}
