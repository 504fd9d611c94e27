package wire

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestAnyNumberIntegers: the integer fast path gives what ParseFloat gives,
// sign of zero included, and leaves everything else to it.
func TestAnyNumberIntegers(t *testing.T) {
	in := []string{"0", "-0", "1", "-1", "7", "42", "123456789012345", "-123456789012345",
		"1234567890123456", "9007199254740993", "-", "1.5", "1e3", "-2.0", "12a", "00", "0123"}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		in = append(in, strconv.FormatInt(r.Int64N(1_000_000_000_000_000)-500_000_000_000_000, 10))
	}
	for _, s := range in {
		got, ok := anyNumber([]byte(s))
		want, err := strconv.ParseFloat(s, 64)
		if wantOK := err == nil; ok != wantOK || (ok && (got != want || math.Signbit(got) != math.Signbit(want))) {
			t.Errorf("anyNumber(%q) = %v, %v; ParseFloat: %v, %v", s, got, ok, want, err)
		}
	}
}
