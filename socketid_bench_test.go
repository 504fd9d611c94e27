package socketcluster

import "testing"

// BenchmarkNewSocketID: the cost of one socket id (one per connection).
func BenchmarkNewSocketID(b *testing.B) {
	b.ReportAllocs()
	var id string
	for b.Loop() {
		id = newSocketID()
	}
	if len(id) != 20 {
		b.Fatalf("id %q", id)
	}
}

// TestNewSocketIDShape: 20 URL-safe base64 characters, distinct ids.
func TestNewSocketIDShape(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 1000 {
		id := newSocketID()
		if len(id) != 20 {
			t.Fatalf("id %q: %d characters", id, len(id))
		}
		for _, c := range id {
			if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				t.Fatalf("id %q: character %q", id, c)
			}
		}
		if seen[id] {
			t.Fatalf("id %q twice", id)
		}
		seen[id] = true
	}
}
