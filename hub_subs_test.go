package socketcluster

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socketcluster-go/socketcluster/broker"
)

// TestSubSetModel adds and removes sockets at random and checks the set
// against a map after every step: the view holds each member exactly once
// and nothing else, and the index names each member's slot.
func TestSubSetModel(t *testing.T) {
	t.Parallel()
	var ss subSet
	model := map[*Socket]bool{}
	pool := make([]*Socket, 300)
	for i := range pool {
		pool[i] = &Socket{}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for step := range 20000 {
		s := pool[r.IntN(len(pool))]
		// Grow for a while, then shrink, so that both rebuilds happen.
		if (step/2000)%2 == 0 == (r.IntN(10) < 7) {
			ss.add(s)
			model[s] = true
		} else {
			ss.remove(s)
			delete(model, s)
		}
		seen := map[*Socket]bool{}
		view := ss.view()
		for i := range view {
			if m := view[i].Load(); m != nil {
				if seen[m] {
					t.Fatalf("step %d: socket twice in the view", step)
				}
				seen[m] = true
				if j, ok := ss.find(m); !ok || j != i {
					t.Fatalf("step %d: find says %d, %v; slot is %d", step, j, ok, i)
				}
			}
		}
		if len(seen) != len(model) || ss.len() != len(model) {
			t.Fatalf("step %d: view %d, len %d, model %d", step, len(seen), ss.len(), len(model))
		}
		for m := range model {
			if !seen[m] {
				t.Fatalf("step %d: member missing from the view", step)
			}
		}
		if (ss.index != nil) != (cap(view) > smallSet) {
			t.Fatalf("step %d: index %v with %d slots", step, ss.index != nil, cap(view))
		}
		if live := len(model); live > 0 && len(view) > 16 && cap(view) > 4*2*live+16 {
			t.Fatalf("step %d: %d slots for %d members", step, cap(view), live)
		}
	}
}

// TestSubSetConcurrentReaders: readers iterate while a writer churns.
// Sockets that stay subscribed throughout are seen by every iteration,
// none is seen twice, and (under -race) reading needs no lock.
func TestSubSetConcurrentReaders(t *testing.T) {
	t.Parallel()
	var ss subSet
	var mu sync.Mutex // the channel's lock, for writers only
	stable := make([]*Socket, 100)
	for i := range stable {
		stable[i] = &Socket{}
		ss.add(stable[i])
	}
	churn := make([]*Socket, 1000)
	for i := range churn {
		churn[i] = &Socket{}
	}
	isStable := map[*Socket]bool{}
	for _, s := range stable {
		isStable[s] = true
	}
	var stop atomic.Bool
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		r := rand.New(rand.NewPCG(3, 4))
		for !stop.Load() {
			s := churn[r.IntN(len(churn))]
			mu.Lock()
			if r.IntN(2) == 0 {
				ss.add(s)
			} else {
				ss.remove(s)
			}
			mu.Unlock()
		}
	}()
	errs := make(chan error, 2)
	var readers sync.WaitGroup
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for range 2000 {
				seen := map[*Socket]bool{}
				n := 0
				view := ss.view()
				for i := range view {
					if s := view[i].Load(); s != nil {
						if seen[s] {
							errs <- fmt.Errorf("a socket seen twice in one fan-out")
							return
						}
						seen[s] = true
						if isStable[s] {
							n++
						}
					}
				}
				if n != len(stable) {
					errs <- fmt.Errorf("a fan-out saw %d of the %d sockets subscribed throughout", n, len(stable))
					return
				}
			}
		}()
	}
	readers.Wait()
	stop.Store(true)
	<-writerDone
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// stateBroker records which channels are subscribed and flags a
// subscribe of a subscribed channel or an unsubscribe of one that is not.
type stateBroker struct {
	fail error // returned by Subscribe when set

	mu         sync.Mutex
	subscribed map[string]bool
	bad        []string
}

func (b *stateBroker) Start(context.Context, broker.Handler) error { return nil }
func (b *stateBroker) Close() error                                { return nil }
func (b *stateBroker) Publish(context.Context, string, []byte) error {
	return nil
}

func (b *stateBroker) Subscribe(_ context.Context, chs []string) error {
	time.Sleep(time.Duration(rand.IntN(100)) * time.Microsecond)
	if b.fail != nil {
		return b.fail
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, ch := range chs {
		if b.subscribed[ch] {
			b.bad = append(b.bad, "subscribe of subscribed "+ch)
		}
		b.subscribed[ch] = true
	}
	return nil
}

func (b *stateBroker) Unsubscribe(_ context.Context, chs []string) error {
	time.Sleep(time.Duration(rand.IntN(100)) * time.Microsecond)
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, ch := range chs {
		if !b.subscribed[ch] {
			b.bad = append(b.bad, "unsubscribe of unsubscribed "+ch)
		}
		b.subscribed[ch] = false
	}
	return nil
}

func (b *stateBroker) isSubscribed(ch string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.subscribed[ch]
}

func hubServer(t *testing.T, b broker.Broker) *Server {
	t.Helper()
	srv, err := New(Options{Broker: b, Logger: discardLogger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	return srv
}

// waitNoChannels waits until the hub has forgotten every channel.
func waitNoChannels(t *testing.T, h *hub) {
	t.Helper()
	for i := 0; h.channelCount() != 0; i++ {
		if i == 2000 {
			t.Fatalf("%d channels still known after everyone left", h.channelCount())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestHubReconcileConcurrent: concurrent subscribes and unsubscribes on a
// few channels keep the broker in step: a subscribe is confirmed only
// with the broker subscribed, the broker never gets a redundant call, and
// once everyone left every channel is unsubscribed and forgotten.
func TestHubReconcileConcurrent(t *testing.T) {
	t.Parallel()
	for _, inproc := range []bool{false, true} {
		t.Run(fmt.Sprintf("inprocess=%v", inproc), func(t *testing.T) { testHubReconcileConcurrent(t, inproc) })
	}
}

// inprocBroker is a stateBroker the hub calls without goroutines of its
// own (broker.InProcess).
type inprocBroker struct{ *stateBroker }

func (inprocBroker) InProcess() bool { return true }

func testHubReconcileConcurrent(t *testing.T, inproc bool) {
	sb := &stateBroker{subscribed: map[string]bool{}}
	var b broker.Broker = sb
	if inproc {
		b = inprocBroker{sb}
	}
	srv := hubServer(t, b)
	if srv.hub.inproc != inproc {
		t.Fatalf("hub.inproc = %v", srv.hub.inproc)
	}
	h := srv.hub
	channels := []string{"a", "b", "c", "d"}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 9))
			socks := make([]*Socket, 10)
			for i := range socks {
				socks[i] = dummySocket(srv)
			}
			in := map[[2]int]bool{}
			for range 400 {
				si, ci := r.IntN(len(socks)), r.IntN(len(channels))
				k := [2]int{si, ci}
				if in[k] {
					h.remove(socks[si], channels[ci])
					delete(in, k)
					continue
				}
				if err := h.addWait(socks[si], channels[ci]); err != nil {
					errs <- err
					return
				}
				in[k] = true
				if !sb.isSubscribed(channels[ci]) {
					errs <- fmt.Errorf("subscribe to %s confirmed, broker not subscribed", channels[ci])
					return
				}
			}
			for k := range in {
				h.remove(socks[k[0]], channels[k[1]])
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitNoChannels(t, h)
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if len(sb.bad) > 0 {
		t.Fatalf("broker out of step: %v", sb.bad[:min(5, len(sb.bad))])
	}
	for ch, on := range sb.subscribed {
		if on {
			t.Fatalf("%s still subscribed on the broker after everyone left", ch)
		}
	}
}

// TestHubSubscribeFailure: when the broker refuses, every waiting
// subscriber gets the error and the channel is forgotten.
func TestHubSubscribeFailure(t *testing.T) {
	t.Parallel()
	sb := &stateBroker{subscribed: map[string]bool{}, fail: fmt.Errorf("refused")}
	srv := hubServer(t, sb)
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.hub.addWait(dummySocket(srv), "x"); err == nil || err.Error() != "refused" {
				t.Errorf("addWait: %v, want the broker's error", err)
			}
		}()
	}
	wg.Wait()
	waitNoChannels(t, srv.hub)
	if got := srv.hub.Channels(); len(got) != 0 {
		t.Fatalf("Channels() = %v", got)
	}
}
