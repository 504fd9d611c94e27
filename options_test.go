package socketcluster

import (
	"strings"
	"testing"
	"time"
)

// Validate lists every problem, one per line, always in the same order.
func TestValidateReportsAllInStableOrder(t *testing.T) {
	t.Parallel()
	o := Options{
		Path:           "nope",
		PingInterval:   -time.Second,
		AckTimeout:     -time.Second,
		WriteTimeout:   -time.Second,
		AuthPublicKey:  []byte("x"),
		MaxHeaderBytes: -1,
	}
	first := o.Validate()
	if first == nil {
		t.Fatal("Validate accepted invalid options")
	}
	lines := strings.Split(first.Error(), "\n")
	want := []string{"Options.Path", "Options.PingInterval", "Options.AckTimeout", "Options.WriteTimeout", "Options.MaxHeaderBytes", "authPrivateKey"}
	if len(lines) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(lines), len(want), first)
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("problem %d is %q, want one about %s", i, lines[i], w)
		}
	}
	for range 20 {
		if again := o.Validate(); again.Error() != first.Error() {
			t.Fatalf("order changed:\n%v\n---\n%v", first, again)
		}
	}
	if err := (Options{}).Validate(); err != nil {
		t.Fatalf("zero Options: %v", err)
	}
}
