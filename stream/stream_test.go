package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// next reads one item with a deadline so a broken test fails instead of
// hanging.
func next[T any](t *testing.T, c *Consumer[T]) (T, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.Next(ctx)
}

func mustNext[T comparable](t *testing.T, c *Consumer[T], want T) {
	t.Helper()
	got, err := next(t, c)
	if err != nil {
		t.Fatalf("consumer %d: Next: unexpected error %v (want %v)", c.ID(), err, want)
	}
	if got != want {
		t.Fatalf("consumer %d: Next = %v, want %v", c.ID(), got, want)
	}
}

func mustEnd[T any](t *testing.T, c *Consumer[T]) {
	t.Helper()
	if _, err := next(t, c); !errors.Is(err, ErrEnded) {
		t.Fatalf("consumer %d: Next error = %v, want ErrEnded", c.ID(), err)
	}
}

func TestOrderPerConsumer(t *testing.T) {
	d := NewDemux[int]()
	c := d.NewConsumer("a", 0)
	defer c.Stop()
	for i := range 1000 {
		d.Write("a", i)
	}
	if bp := c.Backpressure(); bp != 1000 {
		t.Fatalf("Backpressure = %d, want 1000", bp)
	}
	for i := range 1000 {
		mustNext(t, c, i)
	}
	if bp := c.Backpressure(); bp != 0 {
		t.Fatalf("Backpressure after drain = %d, want 0", bp)
	}
}

func TestConsumersIndependent(t *testing.T) {
	d := NewDemux[string]()
	c1 := d.NewConsumer("x", 0)
	defer c1.Stop()
	d.Write("x", "one")
	c2 := d.NewConsumer("x", 0)
	defer c2.Stop()
	d.Write("x", "two")
	d.Write("y", "other") // different name: nobody

	if got, want := c1.Backpressure(), 2; got != want {
		t.Fatalf("c1 backpressure = %d, want %d", got, want)
	}
	if got, want := c2.Backpressure(), 1; got != want {
		t.Fatalf("c2 backpressure = %d, want %d", got, want)
	}
	// c2 reads first and does not affect c1.
	mustNext(t, c2, "two")
	mustNext(t, c1, "one")
	mustNext(t, c1, "two")
	if d.Backpressure("x") != 0 {
		t.Fatalf("stream backpressure = %d, want 0", d.Backpressure("x"))
	}
}

func TestDroppedWithoutConsumer(t *testing.T) {
	d := NewDemux[int]()
	if d.HasConsumers("a") {
		t.Fatal("HasConsumers on empty demux")
	}
	d.Write("a", 1) // dropped
	c := d.NewConsumer("a", 0)
	defer c.Stop()
	if !d.HasConsumers("a") {
		t.Fatal("HasConsumers = false with a consumer")
	}
	d.Write("a", 2)
	mustNext(t, c, 2)
	c.Stop()
	if d.HasConsumers("a") || len(d.Names()) != 0 {
		t.Fatalf("stream still present after Stop: %v", d.Names())
	}
	d.Write("a", 3) // dropped
	c2 := d.NewConsumer("a", 0)
	defer c2.Stop()
	d.Write("a", 4)
	mustNext(t, c2, 4)
}

func TestCloseDrainsThenEnds(t *testing.T) {
	d := NewDemux[int]()
	c := d.NewConsumer("a", 0)
	idle := d.NewConsumer("a", 0)
	other := d.NewConsumer("b", 0)
	defer other.Stop()
	d.Write("a", 1)
	d.Write("a", 2)
	mustNext(t, idle, 1)
	mustNext(t, idle, 2)

	d.Close("a")
	// idle had nothing queued: it ends and is unregistered at once.
	if d.HasAnyConsumer(idle.ID()) {
		t.Fatal("drained consumer still registered after Close")
	}
	mustEnd(t, idle)
	// c keeps its backlog and stays visible until it drains it.
	if !d.HasConsumer("a", c.ID()) || d.Backpressure("a") != 2 {
		t.Fatalf("closing consumer: registered=%v backpressure=%d", d.HasConsumer("a", c.ID()), d.Backpressure("a"))
	}
	if d.HasConsumers("a") {
		t.Fatal("HasConsumers counts a closing consumer")
	}

	d.Write("a", 3) // after close: not for c, and nobody else listens
	fresh := d.NewConsumer("a", 0)
	defer fresh.Stop()
	d.Write("a", 4)

	mustNext(t, c, 1)
	mustNext(t, c, 2)
	mustEnd(t, c)
	mustEnd(t, c) // stays ended
	if d.HasAnyConsumer(c.ID()) {
		t.Fatal("closed consumer still registered after draining")
	}
	mustNext(t, fresh, 4)
	if fresh.Backpressure() != 0 {
		t.Fatalf("fresh consumer saw items from before its creation")
	}
	// Other names are untouched.
	d.Write("b", 5)
	mustNext(t, other, 5)
}

func TestCloseAll(t *testing.T) {
	d := NewDemux[int]()
	a := d.NewConsumer("a", 0)
	b := d.NewConsumer("b", 0)
	d.Write("a", 1)
	d.CloseAll()
	mustEnd(t, b)
	mustNext(t, a, 1)
	mustEnd(t, a)
	if n := d.Names(); n != nil {
		t.Fatalf("Names after CloseAll+drain = %v", n)
	}
}

func TestCloseWakesWaiter(t *testing.T) {
	d := NewDemux[int]()
	c := d.NewConsumer("a", 0)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Next(context.Background())
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	d.Close("a")
	select {
	case err := <-errc:
		if !errors.Is(err, ErrEnded) {
			t.Fatalf("err = %v, want ErrEnded", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiter not woken by Close")
	}
}

func TestKillDiscards(t *testing.T) {
	d := NewDemux[int]()
	c1 := d.NewConsumer("a", 0)
	c2 := d.NewConsumer("a", 0)
	keep := d.NewConsumer("b", 0)
	defer keep.Stop()
	for i := range 10 {
		d.Write("a", i)
	}
	d.Write("b", 42)
	if d.Backpressure("a") != 10 || d.BackpressureAll() != 10 {
		t.Fatalf("before kill: %d %d", d.Backpressure("a"), d.BackpressureAll())
	}
	d.Kill("a")
	if d.Backpressure("a") != 0 || c1.Backpressure() != 0 || d.BackpressureAll() != 1 {
		t.Fatalf("after kill: stream=%d c1=%d all=%d", d.Backpressure("a"), c1.Backpressure(), d.BackpressureAll())
	}
	mustEnd(t, c1)
	mustEnd(t, c2)
	if d.HasConsumer("a", c1.ID()) || d.HasAnyConsumer(c2.ID()) {
		t.Fatal("killed consumers still registered")
	}
	fresh := d.NewConsumer("a", 0)
	defer fresh.Stop()
	d.Write("a", 100)
	mustNext(t, fresh, 100)
	mustNext(t, keep, 42)

	d.KillAll()
	mustEnd(t, fresh)
	mustEnd(t, keep)
	if d.StatsAll() != nil || d.BackpressureAll() != 0 {
		t.Fatalf("after KillAll: %v", d.StatsAll())
	}
}

func TestKillAfterClose(t *testing.T) {
	d := NewDemux[int]()
	c := d.NewConsumer("a", 0)
	d.Write("a", 1)
	d.Close("a")
	d.Kill("a")
	mustEnd(t, c)
	if d.HasAnyConsumer(c.ID()) {
		t.Fatal("still registered")
	}
}

func TestKillConsumer(t *testing.T) {
	d := NewDemux[int]()
	c1 := d.NewConsumer("a", 0)
	c2 := d.NewConsumer("a", 0)
	defer c2.Stop()
	d.Write("a", 1)
	d.Write("a", 2)

	errc := make(chan error, 1)
	mustNext(t, c1, 1)
	mustNext(t, c1, 2)
	go func() {
		_, err := c1.Next(context.Background())
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	d.KillConsumer(c1.ID())
	if err := <-errc; !errors.Is(err, ErrEnded) {
		t.Fatalf("killed waiter err = %v", err)
	}
	d.KillConsumer(c1.ID()) // unknown now: no-op
	d.KillConsumer(999)
	if d.HasAnyConsumer(c1.ID()) || !d.HasConsumer("a", c2.ID()) {
		t.Fatal("wrong consumer killed")
	}
	if d.ConsumerBackpressure(c2.ID()) != 2 || d.ConsumerBackpressure(c1.ID()) != 0 {
		t.Fatalf("consumer backpressure: c2=%d c1=%d", d.ConsumerBackpressure(c2.ID()), d.ConsumerBackpressure(c1.ID()))
	}
	mustNext(t, c2, 1)
}

func TestStatsAndIDs(t *testing.T) {
	d := NewDemux[int]()
	a1 := d.NewConsumer("a", 0)
	b := d.NewConsumer("b", 2*time.Second)
	a2 := d.NewConsumer("a", 0)
	defer a1.Stop()
	defer b.Stop()
	defer a2.Stop()
	if a1.ID() != 1 || b.ID() != 2 || a2.ID() != 3 {
		t.Fatalf("ids = %d %d %d, want 1 2 3", a1.ID(), b.ID(), a2.ID())
	}
	if a1.Name() != "a" || b.Name() != "b" {
		t.Fatal("wrong names")
	}
	d.Write("a", 1)
	d.Write("a", 2)
	d.Write("b", 3)
	mustNext(t, a2, 1)

	want := []ConsumerStats{{ID: 1, Backpressure: 2, Stream: "a"}, {ID: 3, Backpressure: 1, Stream: "a"}}
	if got := d.Stats("a"); !slices.Equal(got, want) {
		t.Fatalf("Stats(a) = %+v, want %+v", got, want)
	}
	wantAll := []ConsumerStats{want[0], {ID: 2, Backpressure: 1, Stream: "b", Timeout: 2 * time.Second}, want[1]}
	if got := d.StatsAll(); !slices.Equal(got, wantAll) {
		t.Fatalf("StatsAll = %+v, want %+v", got, wantAll)
	}
	if d.Stats("none") != nil {
		t.Fatal("Stats of unknown name not nil")
	}
	if got := d.Names(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("Names = %v", got)
	}
	if d.Backpressure("a") != 2 || d.Backpressure("b") != 1 || d.BackpressureAll() != 2 {
		t.Fatal("wrong backpressure")
	}
	if !d.HasConsumer("a", 3) || d.HasConsumer("b", 3) || !d.HasAnyConsumer(2) || d.HasAnyConsumer(4) {
		t.Fatal("HasConsumer/HasAnyConsumer wrong")
	}
	js, err := json.Marshal(d.Stats("a")[0])
	if err != nil || string(js) != `{"id":1,"backpressure":2,"stream":"a"}` {
		t.Fatalf("json = %s, %v", js, err)
	}
	// Ids are never reused.
	a1.Stop()
	if c := d.NewConsumer("a", 0); c.ID() != 4 {
		t.Fatalf("next id = %d, want 4", c.ID())
	} else {
		c.Stop()
	}
}

func TestOnce(t *testing.T) {
	d := NewDemux[string]()
	got := make(chan string, 1)
	go func() {
		v, err := d.Once(context.Background(), "ev")
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		got <- v
	}()
	for !d.HasConsumers("ev") {
		time.Sleep(time.Millisecond)
	}
	d.Write("ev", "hello")
	d.Write("ev", "again")
	if v := <-got; v != "hello" {
		t.Fatalf("Once = %q", v)
	}
	if d.HasConsumers("ev") || d.StatsAll() != nil {
		t.Fatal("Once left its consumer registered")
	}

	// A kill does not make Once return; only ctx does.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := d.Once(ctx, "ev")
		errc <- err
	}()
	for !d.HasConsumers("ev") {
		time.Sleep(time.Millisecond)
	}
	d.Kill("ev")
	select {
	case err := <-errc:
		t.Fatalf("Once returned %v before ctx", err)
	case <-time.After(10 * time.Millisecond):
	}
	if err := <-errc; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Once err = %v, want DeadlineExceeded", err)
	}
}

func TestContextCancel(t *testing.T) {
	d := NewDemux[int]()
	c := d.NewConsumer("a", 0)
	defer c.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Next(ctx)
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want Canceled", err)
	}
	// Still registered and usable.
	d.Write("a", 7)
	mustNext(t, c, 7)
	// A done ctx wins even if an item is queued.
	d.Write("a", 8)
	if _, err := c.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want Canceled", err)
	}
	mustNext(t, c, 8)
}

func TestTimeout(t *testing.T) {
	d := NewDemux[int]()
	c := d.NewConsumer("a", 20*time.Millisecond)
	defer c.Stop()
	start := time.Now()
	_, err := c.Next(context.Background())
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if el := time.Since(start); el < 20*time.Millisecond {
		t.Fatalf("timed out after %v", el)
	}
	if err.Error() != "Stream consumer iteration timed out" {
		t.Fatalf("message = %q", err.Error())
	}
	var te interface{ Timeout() bool }
	if !errors.As(err, &te) || !te.Timeout() {
		t.Fatal("ErrTimeout has no Timeout() true")
	}
	// Usable after a timeout.
	if !d.HasConsumer("a", c.ID()) {
		t.Fatal("consumer unregistered by timeout")
	}
	go func() {
		time.Sleep(5 * time.Millisecond)
		d.Write("a", 1)
	}()
	mustNext(t, c, 1)
	// The timeout does not apply when an item is already queued.
	d.Write("a", 2)
	time.Sleep(30 * time.Millisecond)
	mustNext(t, c, 2)
}

func TestAllBreakStops(t *testing.T) {
	d := NewDemux[int]()
	c := d.NewConsumer("a", 0)
	for i := range 5 {
		d.Write("a", i)
	}
	var got []int
	for v := range c.All(context.Background()) {
		got = append(got, v)
		if v == 2 {
			break
		}
	}
	if !slices.Equal(got, []int{0, 1, 2}) {
		t.Fatalf("got %v", got)
	}
	if d.HasAnyConsumer(c.ID()) || c.Backpressure() != 0 {
		t.Fatal("break did not stop the consumer")
	}
	mustEnd(t, c)
}

func TestAllEnds(t *testing.T) {
	d := NewDemux[int]()

	// Ends after Close with the backlog delivered.
	c := d.NewConsumer("a", 0)
	d.Write("a", 1)
	d.Write("a", 2)
	d.Close("a")
	var got []int
	for v := range c.All(context.Background()) {
		got = append(got, v)
	}
	if !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("got %v", got)
	}

	// Ends on timeout, and stops the consumer.
	c = d.NewConsumer("a", 10*time.Millisecond)
	d.Write("a", 3)
	got = got[:0]
	for v := range c.All(context.Background()) {
		got = append(got, v)
	}
	if !slices.Equal(got, []int{3}) || d.HasAnyConsumer(c.ID()) {
		t.Fatalf("timeout: got %v, registered %v", got, d.HasAnyConsumer(c.ID()))
	}

	// Ends on ctx.
	c = d.NewConsumer("a", 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	for range c.All(ctx) {
		t.Fatal("unexpected item")
	}
	if d.HasAnyConsumer(c.ID()) {
		t.Fatal("ctx end did not stop the consumer")
	}
}

func TestStopIdempotent(t *testing.T) {
	d := NewDemux[int]()
	c := d.NewConsumer("a", 0)
	d.Write("a", 1)
	c.Stop()
	c.Stop()
	mustEnd(t, c)
	if c.Backpressure() != 0 || d.HasConsumers("a") {
		t.Fatal("Stop left state behind")
	}
	d.Kill("a")
	d.KillConsumer(c.ID())
	d.Close("a")
}

func TestMemoryReleased(t *testing.T) {
	d := NewDemux[[64]byte]()
	c := d.NewConsumer("a", 0)
	defer c.Stop()
	for range 10000 {
		d.Write("a", [64]byte{})
	}
	// While draining, the buffer shrinks with the queue.
	for range 9990 {
		if _, err := next(t, c); err != nil {
			t.Fatal(err)
		}
	}
	c.mu.Lock()
	if capNow := cap(c.buf); capNow > 4*shrinkCap {
		c.mu.Unlock()
		t.Fatalf("cap with 10 items queued = %d", capNow)
	}
	c.mu.Unlock()
	for range 10 {
		if _, err := next(t, c); err != nil {
			t.Fatal(err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cap(c.buf) > idleCap {
		t.Fatalf("idle consumer keeps cap %d", cap(c.buf))
	}
}

func TestSteadyQueueDoesNotGrow(t *testing.T) {
	d := NewDemux[int]()
	c := d.NewConsumer("a", 0)
	defer c.Stop()
	for i := range 10 {
		d.Write("a", i)
	}
	// Queue length stays 10 while 100k items go through it.
	for i := 10; i < 100010; i++ {
		d.Write("a", i)
		mustNext(t, c, i-10)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cap(c.buf) > idleCap {
		t.Fatalf("cap = %d for a queue of 10", cap(c.buf))
	}
}

func TestConcurrentStress(t *testing.T) {
	const (
		writers   = 4
		perWriter = 2000
		readers   = 4
	)
	d := NewDemux[[2]int]() // {writer, seq}
	consumers := make([]*Consumer[[2]int], readers)
	for i := range consumers {
		consumers[i] = d.NewConsumer("s", 0)
	}

	var wg sync.WaitGroup
	errs := make(chan error, readers+1)
	orders := make([][][2]int, readers)
	for i, c := range consumers {
		wg.Go(func() {
			last := make([]int, writers)
			for w := range last {
				last[w] = -1
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			for v := range c.All(ctx) {
				w, seq := v[0], v[1]
				if seq != last[w]+1 {
					errs <- fmt.Errorf("reader %d: writer %d seq %d after %d", i, w, seq, last[w])
					return
				}
				last[w] = seq
				orders[i] = append(orders[i], v)
			}
			for w, l := range last {
				if l != perWriter-1 {
					errs <- fmt.Errorf("reader %d: writer %d ended at %d", i, w, l)
					return
				}
			}
		})
	}
	// Background noise: stats, other names, short-lived consumers.
	stop := make(chan struct{})
	var noise sync.WaitGroup
	noise.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = d.StatsAll()
			_ = d.BackpressureAll()
			_ = d.Backpressure("s")
			tmp := d.NewConsumer("s", 0)
			d.Write("t", [2]int{})
			tmp.Stop()
		}
	})
	var ww sync.WaitGroup
	for w := range writers {
		ww.Go(func() {
			for i := range perWriter {
				d.Write("s", [2]int{w, i})
			}
		})
	}
	ww.Wait()
	close(stop)
	noise.Wait()
	d.Close("s")
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Every reader saw the same interleaving of the concurrent writers.
	for i := 1; i < readers; i++ {
		if !slices.Equal(orders[0], orders[i]) {
			t.Fatalf("reader %d saw a different order than reader 0", i)
		}
	}
	if d.StatsAll() != nil {
		t.Fatalf("consumers left: %v", d.StatsAll())
	}
}

func TestConcurrentNextOnOneConsumer(t *testing.T) {
	const n = 5000
	d := NewDemux[int]()
	c := d.NewConsumer("a", 0)
	var mu sync.Mutex
	seen := make(map[int]bool, n)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				v, err := c.Next(context.Background())
				if err != nil {
					return
				}
				mu.Lock()
				seen[v] = true
				mu.Unlock()
			}
		})
	}
	for i := range n {
		d.Write("a", i)
	}
	d.Close("a")
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("got %d distinct items, want %d", len(seen), n)
	}
}
