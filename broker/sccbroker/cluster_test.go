package sccbroker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/broker"
	"github.com/socketcluster-go/socketcluster/broker/sccbroker"
	"github.com/socketcluster-go/socketcluster/client"
	"github.com/socketcluster-go/socketcluster/scc/relay"
	"github.com/socketcluster-go/socketcluster/scc/state"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wait bounds every wait for something asynchronous; generous, as CI is
// a busy machine. No test asserts how fast anything happens.
const wait = 30 * time.Second

var quiet = slog.New(slog.DiscardHandler)

// serve serves h on a loopback port until the test ends.
func serve(t *testing.T, l net.Listener, h *http.Server) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); _ = h.Serve(l) }()
	t.Cleanup(func() { _ = h.Close(); <-done })
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func port(l net.Listener) int { return l.Addr().(*net.TCPAddr).Port }

type cluster struct {
	t         *testing.T
	state     *state.Server
	stopState func() // closes scc-state and its listener
	url       string // scc-state WebSocket URL
	key       string
}

// newCluster starts an scc-state with short delays.
func newCluster(t *testing.T, key string) *cluster {
	t.Helper()
	o := state.DefaultOptions()
	o.AuthKey = key
	o.StartupDelay, o.ScaleOutDelay, o.ScaleBackDelay, o.RetryDelay = 0, 100*time.Millisecond, 100*time.Millisecond, 200*time.Millisecond
	o.Logger = quiet
	s, err := state.New(o)
	if err != nil {
		t.Fatal(err)
	}
	l := listen(t)
	hs := s.HTTPServer()
	serve(t, l, hs)
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	stop := func() { _ = s.Close(context.Background()); _ = hs.Close() }
	return &cluster{t: t, state: s, stopState: stop, url: "ws://" + l.Addr().String() + "/socketcluster/", key: key}
}

// relay starts an scc-broker of ours; stop ends it.
func (c *cluster) relay() (r *relay.Relay, stop func()) {
	t := c.t
	t.Helper()
	l := listen(t)
	r, err := relay.New(relay.Options{StateURL: c.url, Port: port(l), AuthKey: c.key, RetryDelay: 200 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	hs := r.HTTPServer()
	done := make(chan struct{})
	go func() { defer close(done); _ = hs.Serve(l) }()
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = r.Close(context.Background())
			_ = hs.Close()
			<-done
		})
	}
	t.Cleanup(stop)
	return r, stop
}

type worker struct {
	srv *sc.Server
	b   *sccbroker.Broker
	url string
}

// worker starts a socketcluster-go server joined to the cluster.
func (c *cluster) worker(o sccbroker.Options) *worker {
	t := c.t
	t.Helper()
	l := listen(t)
	o.AuthKey, o.InstancePort, o.RetryDelay, o.Logger = c.key, port(l), 200*time.Millisecond, quiet
	b, err := sccbroker.New(c.url, o)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sc.New(sc.Options{Broker: b, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, l, srv.HTTPServer(srv))
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	return &worker{srv: srv, b: b, url: "ws://" + l.Addr().String() + "/socketcluster/"}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (w *worker) settled(t *testing.T, brokers int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d brokers, every channel confirmed", brokers), func() bool {
		s := w.b.Stats()
		return s.Joined && s.Brokers == brokers && s.Unconfirmed == 0
	})
}

func dial(t *testing.T, url string) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, err := client.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(1000, "") })
	return c
}

type msg struct {
	P int `json:"p"` // publisher
	I int `json:"i"` // sequence
}

// collector records what a client receives, per channel.
type collector struct {
	mu  sync.Mutex
	got map[string][]msg
}

func subscribeAll(t *testing.T, url string, channels []string) *collector {
	t.Helper()
	col := &collector{got: map[string][]msg{}}
	c, err := client.New(url, &client.Options{OnPublish: func(ch string, d sc.Data) {
		var m msg
		_ = json.Unmarshal(d, &m)
		col.mu.Lock()
		col.got[ch] = append(col.got[ch], m)
		col.mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(1000, "") })
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	for _, ch := range channels {
		if _, err := c.Subscribe(ctx, ch); err != nil {
			t.Fatal(err)
		}
	}
	return col
}

func (col *collector) count() int {
	col.mu.Lock()
	defer col.mu.Unlock()
	n := 0
	for _, l := range col.got {
		n += len(l)
	}
	return n
}

// check requires, per channel and publisher, the sequence 0..n-1 in
// order, exactly once.
func (col *collector) check(t *testing.T, channels []string, publishers, n int) {
	t.Helper()
	col.mu.Lock()
	defer col.mu.Unlock()
	for _, ch := range channels {
		next := make([]int, publishers)
		for _, m := range col.got[ch] {
			if m.I != next[m.P] {
				t.Fatalf("channel %s publisher %d: got %d, want %d (duplicate, loss or reorder)", ch, m.P, m.I, next[m.P])
			}
			next[m.P]++
		}
		for p, k := range next {
			if k != n {
				t.Fatalf("channel %s publisher %d: %d of %d messages", ch, p, k, n)
			}
		}
	}
}

func channelNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "room-" + strconv.Itoa(i)
	}
	return out
}

// Three Go workers, two Go relays, one Go state: every subscriber gets
// every publish of every worker exactly once, in order, on channels
// spread over both relays; batching and a pool of 2 connections on one
// worker change nothing.
func TestClusterExactlyOnceInOrder(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "secret")
	c.relay()
	c.relay()
	workers := []*worker{
		c.worker(sccbroker.Options{}),
		c.worker(sccbroker.Options{PubSubBatchDuration: 5 * time.Millisecond}),
		c.worker(sccbroker.Options{ClientPoolSize: 2}),
	}
	channels := channelNames(20)
	var cols []*collector
	for _, w := range workers {
		cols = append(cols, subscribeAll(t, w.url, channels))
	}
	for _, w := range workers {
		w.settled(t, 2)
	}
	const n = 50
	var wg sync.WaitGroup
	for p, w := range workers {
		pub := dial(t, w.url)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				for _, ch := range channels {
					if err := pub.InvokePublish(context.Background(), ch, msg{p, i}); err != nil {
						t.Errorf("publish: %v", err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	want := len(channels) * len(workers) * n
	for i, col := range cols {
		eventually(t, fmt.Sprintf("subscriber %d gets %d messages", i, want), func() bool { return col.count() >= want })
	}
	time.Sleep(200 * time.Millisecond) // room for a duplicate to show
	for _, col := range cols {
		col.check(t, channels, len(workers), n)
	}
	for i, w := range workers {
		s := w.b.Stats()
		if s.EchoDropped == 0 || s.Received == 0 || s.Published == 0 {
			t.Errorf("worker %d stats %+v", i, s)
		}
	}
	// Both relays carried channels.
	if st := c.state.Stats(); st.Brokers != 2 || st.Workers != 3 {
		t.Fatalf("state %+v", st)
	}
}

// A relay leaves mid-run and another joins: the channels move, delivery
// resumes and nothing is ever duplicated or reordered; what is lost
// meanwhile is bounded and the moves are counted.
func TestBrokerLeavesAndJoins(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "")
	_, stop1 := c.relay()
	c.relay()
	w1, w2 := c.worker(sccbroker.Options{}), c.worker(sccbroker.Options{})
	channels := channelNames(30)
	col := subscribeAll(t, w1.url, channels)
	w1.settled(t, 2)
	w2.settled(t, 2)
	pub := dial(t, w2.url)
	seq := 0
	publishRound := func() {
		for _, ch := range channels {
			_ = pub.InvokePublish(context.Background(), ch, msg{0, seq})
		}
		seq++
	}
	for range 20 {
		publishRound()
	}
	stop1()
	for range 20 {
		publishRound()
		time.Sleep(10 * time.Millisecond)
	}
	w1.settled(t, 1)
	w2.settled(t, 1)
	c.relay()
	w1.settled(t, 2)
	w2.settled(t, 2)
	from := seq
	for range 20 {
		publishRound()
	}
	eventually(t, "the last rounds after the changes", func() bool {
		col.mu.Lock()
		defer col.mu.Unlock()
		for _, ch := range channels {
			l := col.got[ch]
			if len(l) == 0 || l[len(l)-1].I != seq-1 {
				return false
			}
		}
		return true
	})
	col.mu.Lock()
	defer col.mu.Unlock()
	for _, ch := range channels {
		last := -1
		have := map[int]bool{}
		for _, m := range col.got[ch] {
			if m.I <= last {
				t.Fatalf("%s: %d after %d (duplicate or reorder)", ch, m.I, last)
			}
			last = m.I
			have[m.I] = true
		}
		for i := from; i < seq; i++ {
			if !have[i] {
				t.Fatalf("%s: message %d published after the cluster settled is missing", ch, i)
			}
		}
	}
	if w1.b.Stats().ChannelsMoved == 0 {
		t.Fatal("no channel moved")
	}
}

// Start fails with a clear error when scc-state cannot be reached or
// refuses the worker (wrong authKey, or a version it does not accept).
func TestStartErrors(t *testing.T) {
	t.Parallel()
	l := listen(t)
	addr := l.Addr().String()
	l.Close()
	b, err := sccbroker.New("ws://"+addr+"/socketcluster/", sccbroker.Options{RetryDelay: 100 * time.Millisecond, StartTimeout: time.Second, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	_, err = sc.New(sc.Options{Broker: b, Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), "cannot reach scc-state") {
		t.Fatalf("server started without its scc-state, or unclear error: %v", err)
	}
	if s := b.Stats(); s.ConnectFailures < 2 {
		t.Fatalf("retries not counted: %+v", s)
	}
	t.Log(err)

	c := newCluster(t, "right")
	b, _ = sccbroker.New(c.url, sccbroker.Options{AuthKey: "wrong", Logger: quiet})
	start := time.Now()
	_, err = sc.New(sc.Options{Broker: b, Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("wrong authKey: %v", err)
	}
	if time.Since(start) > wait/2 {
		t.Fatal("a refusal was retried")
	}
	t.Log(err)
}

// A relay that gets garbage on a channel a worker relays: the worker
// counts and drops it, and goes on.
func TestBadPacketsCounted(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "")
	r, _ := c.relay()
	w := c.worker(sccbroker.Options{})
	col := subscribeAll(t, w.url, []string{"x"})
	w.settled(t, 1)
	relayURL := "ws://127.0.0.1:" + strconv.Itoa(relayPort(t, r, c)) + "/socketcluster/"
	raw := dial(t, relayURL)
	for _, bad := range []any{"text", 42, map[string]any{"sender": "s"}, map[string]any{"messages": "no"}, sc.Undefined} {
		if err := raw.InvokePublish(context.Background(), "x", bad); err != nil {
			t.Fatal(err)
		}
	}
	if err := raw.InvokePublish(context.Background(), "x", map[string]any{"sender": nil, "messages": []any{map[string]int{"p": 0, "i": 0}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the good packet", func() bool { return col.count() == 1 })
	if s := w.b.Stats(); s.BadPackets != 5 {
		t.Fatalf("bad packets %d, want 5", s.BadPackets)
	}
}

// relayPort finds the relay's port from the state's broker list.
func relayPort(t *testing.T, _ *relay.Relay, c *cluster) int {
	t.Helper()
	var uris []string
	eventually(t, "the relay in the state", func() bool { uris = c.state.Brokers(); return len(uris) == 1 })
	_, p, err := net.SplitHostPort(uris[0][len("ws://"):])
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// A broker list that flaps (relays joining and leaving over and over)
// leaves the worker working, with no goroutine left behind (TestMain).
func TestFlappingBrokers(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "")
	c.relay()
	w := c.worker(sccbroker.Options{})
	channels := channelNames(10)
	col := subscribeAll(t, w.url, channels)
	w.settled(t, 1)
	for range 5 {
		_, stop := c.relay()
		time.Sleep(150 * time.Millisecond)
		stop()
		time.Sleep(50 * time.Millisecond)
	}
	w.settled(t, 1)
	w2 := c.worker(sccbroker.Options{})
	w2.settled(t, 1)
	pub := dial(t, w2.url)
	for _, ch := range channels {
		if err := pub.InvokePublish(context.Background(), ch, msg{0, 0}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "delivery after flapping", func() bool { return col.count() == len(channels) })
	if s := w.b.Stats(); s.BrokerUpdates < 2 {
		t.Fatalf("broker updates %d", s.BrokerUpdates)
	}
}

func TestParseURL(t *testing.T) {
	t.Parallel()
	u, o, err := sccbroker.ParseURL("scc://state.local?authKey=k&instancePort=8000&mappingEngine=simple&clientPoolSize=3&pubSubBatchDuration=10&retryDelay=1s")
	if err != nil {
		t.Fatal(err)
	}
	if u != "ws://state.local:7777/socketcluster/" || o.AuthKey != "k" || o.InstancePort != 8000 || o.MappingEngine != "simple" ||
		o.ClientPoolSize != 3 || o.PubSubBatchDuration != 10*time.Millisecond || o.RetryDelay != time.Second {
		t.Fatalf("%s %+v", u, o)
	}
	for _, bad := range []string{"redis://x", "scc://", "scc://h:99999", "scc://h?mappingEngine=ring", "scc://h?clientPoolSize=0",
		"scc://h?pubSubBatchDuration=soon", "scc://h?colour=blue", "scc://h?instancePort=70000"} {
		if _, _, err := sccbroker.ParseURL(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := sccbroker.New("http://x", sccbroker.Options{}); err == nil {
		t.Error("a non-ws state URL accepted")
	}
}

// A state server that answers with garbage: unusable broker URIs, updates
// without a list or a time. The worker counts and ignores them, fails
// publishes with ErrNoBroker, and applies the next valid list.
func TestGarbageFromState(t *testing.T) {
	t.Parallel()
	fake, err := sc.New(sc.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	joined := make(chan *sc.Socket, 1)
	fake.HandleProcedure("sccWorkerJoinCluster", func(r *sc.Request) {
		_ = r.End(map[string]any{"sccBrokerURIs": []string{"ws://[::ffff:127.0.0.1]:undefined"}, "sccWorkerURIs": []string{}, "time": 1})
		joined <- r.Socket
	})
	l := listen(t)
	serve(t, l, fake.HTTPServer(fake))
	t.Cleanup(func() { _ = fake.Close(context.Background()) })
	url := "ws://" + l.Addr().String() + "/socketcluster/"

	c := newCluster(t, "") // a real relay, announced by hand below
	c.relay()
	var uris []string
	eventually(t, "the relay", func() bool { uris = c.state.Brokers(); return len(uris) == 1 })

	b, err := sccbroker.New(url, sccbroker.Options{RetryDelay: 100 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	w, err := sc.New(sc.Options{Broker: b, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	var sock *sc.Socket
	select {
	case sock = <-joined:
	case <-time.After(wait):
		t.Fatal("no join")
	}
	eventually(t, "the unusable URI counted", func() bool { return b.Stats().BadStateUpdates >= 1 })
	if err := w.Exchange().InvokePublish(context.Background(), "x", 1); !errors.Is(err, sccbroker.ErrNoBroker) {
		t.Fatalf("publish without a usable broker: %v", err)
	}
	for _, bad := range []any{"garbage", map[string]any{"time": "late"}, map[string]any{"sccBrokerURIs": 5, "time": 5}, map[string]any{"time": 6}} {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		_, err := sock.Invoke(ctx, "sccBrokerJoinCluster", bad)
		cancel()
		if err != nil {
			t.Fatalf("the worker did not answer %v: %v", bad, err)
		}
	}
	if s := b.Stats(); s.BadStateUpdates < 5 || s.NoBroker == 0 {
		t.Fatalf("stats %+v", s)
	}
	// A valid list is applied; an older snapshot after it is ignored.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := sock.Invoke(ctx, "sccBrokerJoinCluster", map[string]any{"sccBrokerURIs": uris, "time": 10}); err != nil {
		t.Fatal(err)
	}
	if got := b.Brokers(); len(got) != 1 || got[0] != uris[0] {
		t.Fatalf("the new list was not applied: %v", got)
	}
	if _, err := sock.Invoke(ctx, "sccBrokerLeaveCluster", map[string]any{"sccBrokerURIs": []string{}, "time": 9}); err != nil {
		t.Fatal(err)
	}
	if got := b.Brokers(); len(got) != 1 {
		t.Fatalf("an old snapshot was applied: %v", got)
	}
	eventually(t, "publishing through the relay", func() bool {
		return w.Exchange().InvokePublish(context.Background(), "x", 2) == nil
	})
}

// The server's broker health follows the broker list: no broker in the
// cluster is an outage (publishes reach this instance only), a broker
// ends it; losing scc-state alone is not one.
func TestBrokerHealthFollowsTheList(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "")
	w := c.worker(sccbroker.Options{})
	eventually(t, "joined with no broker", func() bool { return w.b.Stats().Joined })
	eventually(t, "an outage reported", func() bool { return !w.srv.BrokerConnected() })
	c.relay()
	w.settled(t, 1)
	eventually(t, "the outage over", w.srv.BrokerConnected)
	_ = c.state.Close(context.Background())
	eventually(t, "scc-state lost", func() bool { return w.b.Stats().StateLost > 0 })
	if !w.srv.BrokerConnected() {
		t.Fatal("losing scc-state was reported as a broker outage")
	}
}

// PublishBatch sends what the server had queued as one packet per
// channel, in order; the other workers get every message once.
func TestPublishBatchOnePacketPerChannel(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "")
	r, _ := c.relay()
	w1, w2 := c.worker(sccbroker.Options{}), c.worker(sccbroker.Options{})
	col := subscribeAll(t, w2.url, []string{"a", "b"})
	w1.settled(t, 1)
	w2.settled(t, 1)
	raw := dial(t, "ws://127.0.0.1:"+strconv.Itoa(relayPort(t, r, c))+"/socketcluster/")
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ch, err := raw.Subscribe(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	packets := ch.Consumer()
	env := func(m msg) []byte {
		b, _ := json.Marshal(m)
		return append(make([]byte, 16), b...)
	}
	errs := w1.b.PublishBatch(ctx, []broker.Message{
		{Channel: "a", Payload: env(msg{0, 0})}, {Channel: "b", Payload: env(msg{0, 0})}, {Channel: "a", Payload: env(msg{0, 1})},
	})
	if errs != nil {
		t.Fatal(errs)
	}
	d, err := packets.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Sender   string `json:"sender"`
		Messages []msg  `json:"messages"`
	}
	if err := d.Decode(&p); err != nil || p.Sender != w1.b.InstanceID() || len(p.Messages) != 2 || p.Messages[1].I != 1 {
		t.Fatalf("packet %s: %v", d, err)
	}
	eventually(t, "the three messages", func() bool { return col.count() == 3 })
	col.check(t, []string{"b"}, 1, 1)
	col.check(t, []string{"a"}, 1, 2)
}

// scc-state restarts (replaced): messages keep flowing meanwhile, and the
// relay and the workers join the new one by themselves.
func TestStateRestart(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "k")
	c.relay()
	w1, w2 := c.worker(sccbroker.Options{}), c.worker(sccbroker.Options{})
	col := subscribeAll(t, w2.url, []string{"a"})
	w1.settled(t, 1)
	w2.settled(t, 1)
	addr := c.url[len("ws://"):strings.LastIndex(c.url, "/socketcluster/")]
	c.stopState()
	eventually(t, "the workers lose scc-state", func() bool { return w1.b.Stats().StateLost > 0 && w2.b.Stats().StateLost > 0 })

	pub := dial(t, w1.url)
	if err := pub.InvokePublish(context.Background(), "a", msg{0, 0}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "delivery without scc-state", func() bool { return col.count() == 1 })

	o := state.DefaultOptions()
	// The start-up delay lets the relay join before the workers, whose
	// join answer would otherwise hold no broker until it is announced.
	o.AuthKey, o.StartupDelay, o.ScaleOutDelay, o.ScaleBackDelay, o.Logger = "k", 3*time.Second, 100*time.Millisecond, 100*time.Millisecond, quiet
	s2, err := state.New(o)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the old address %s is taken: %v", addr, err)
	}
	serve(t, l, s2.HTTPServer())
	t.Cleanup(func() { _ = s2.Close(context.Background()) })
	eventually(t, "everyone joined the new scc-state", func() bool {
		st := s2.Stats()
		return st.Brokers == 1 && st.Workers == 2
	})
	w1.settled(t, 1)
	w2.settled(t, 1)
	if err := pub.InvokePublish(context.Background(), "a", msg{0, 1}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "delivery after the restart", func() bool { return col.count() == 2 })
	col.check(t, []string{"a"}, 1, 2)
}
