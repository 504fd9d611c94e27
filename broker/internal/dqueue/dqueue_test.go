package dqueue

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestBounds(t *testing.T) {
	q := New(2, 10)
	if !q.Push(Item{Channel: "a", Payload: make([]byte, 20)}) {
		t.Fatal("a message over the byte limit is refused by an empty queue")
	}
	if q.Push(Item{Channel: "b"}) {
		t.Fatal("the byte limit is not enforced")
	}
	q = New(2, 100)
	for i := range 3 {
		if ok := q.Push(Item{Channel: "c", Payload: []byte{byte(i)}}); ok != (i < 2) {
			t.Fatalf("push %d: %v", i, ok)
		}
	}
	if q.Len() != 2 || q.Dropped() != 1 || q.Low() {
		t.Fatalf("Len %d, Dropped %d, Low %v", q.Len(), q.Dropped(), q.Low())
	}
}

func TestRun(t *testing.T) {
	q := New(8, 100)
	for _, ch := range []string{"x", "skip", "y", "stop"} {
		q.Push(Item{Channel: ch, Payload: []byte(ch)})
	}
	ctx, cancel := context.WithCancel(context.Background())
	var got []string
	q.Run(ctx, func(ch string) bool { return ch != "skip" }, func(ch string, p []byte) {
		got = append(got, string(p))
		if ch == "stop" {
			cancel()
		}
	})
	if want := "[x y stop]"; fmt.Sprint(got) != want {
		t.Fatalf("delivered %v, want %s", got, want)
	}
	if !q.Low() || q.bytes.Load() != 0 {
		t.Fatalf("bytes %d after delivery", q.bytes.Load())
	}
}

func TestOverflowError(t *testing.T) {
	errOverflow := errors.New("full")
	err := OverflowError(errOverflow, 3)
	if !errors.Is(err, errOverflow) || err.Error() != "full (3 so far): Handler.Deliver is too slow for the traffic" {
		t.Fatal(err)
	}
}
