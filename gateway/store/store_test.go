package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/socketcluster-go/socketcluster/broker/brokertest"
)

func uniq() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// conformance runs the Store contract against two handles on the same
// state (two instances).
func conformance(t *testing.T, a, b Store) {
	c := ctx(t)
	ttl := 30 * time.Second
	t.Run("presence", func(t *testing.T) {
		ch := "room/" + uniq() + " with spaces.and*dots>"
		e1 := Entry{SocketID: "s1-_x", User: "alice", Info: json.RawMessage(`{"device":"phone"}`), Instance: "A", Expires: Expiry(ttl)}
		e2 := Entry{SocketID: "s2", User: "bob", Instance: "B", Expires: Expiry(ttl)}
		if err := a.SetPresence(c, ch, e1); err != nil {
			t.Fatal(err)
		}
		if err := b.SetPresence(c, ch, e2); err != nil {
			t.Fatal(err)
		}
		// Another channel whose name starts the same must not leak in.
		if err := a.SetPresence(c, ch+"x", Entry{SocketID: "s3", Instance: "A", Expires: Expiry(ttl)}); err != nil {
			t.Fatal(err)
		}
		got, err := b.Presence(c, ch)
		if err != nil {
			t.Fatal(err)
		}
		sort.Slice(got, func(i, j int) bool { return got[i].SocketID < got[j].SocketID })
		if len(got) != 2 || got[0].SocketID != "s1-_x" || got[0].User != "alice" || string(got[0].Info) != `{"device":"phone"}` || got[1].User != "bob" {
			t.Fatalf("presence = %+v", got)
		}
		if err := a.RemovePresence(c, ch, "s2"); err != nil {
			t.Fatal(err)
		}
		if err := a.RemovePresence(c, ch, "never-there"); err != nil {
			t.Fatalf("removing an absent entry: %v", err)
		}
		got, _ = b.Presence(c, ch)
		if len(got) != 1 || got[0].SocketID != "s1-_x" {
			t.Fatalf("after remove: %+v", got)
		}
		if got, _ := a.Presence(c, "nobody-"+uniq()); len(got) != 0 {
			t.Fatalf("empty channel: %+v", got)
		}
	})
	t.Run("expiry", func(t *testing.T) {
		ch := "exp-" + uniq()
		if err := a.SetPresence(c, ch, Entry{SocketID: "dead", Instance: "A", Expires: Expiry(3 * time.Second)}); err != nil {
			t.Fatal(err)
		}
		if err := a.SetPresence(c, ch, Entry{SocketID: "alive", Instance: "B", Expires: Expiry(ttl)}); err != nil {
			t.Fatal(err)
		}
		if got, _ := b.Presence(c, ch); len(got) != 2 {
			t.Fatalf("before expiry: %+v", got)
		}
		time.Sleep(4 * time.Second)
		got, err := b.Presence(c, ch)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].SocketID != "alive" {
			t.Fatalf("after expiry: %+v", got)
		}
	})
	t.Run("instances", func(t *testing.T) {
		id1, id2 := "i1-"+uniq(), "i2-"+uniq()
		if err := a.SetInstance(c, Instance{ID: id1, Data: json.RawMessage(`{"n":1}`), Expires: Expiry(ttl)}); err != nil {
			t.Fatal(err)
		}
		if err := b.SetInstance(c, Instance{ID: id2, Data: json.RawMessage(`{"n":2}`), Expires: Expiry(3 * time.Second)}); err != nil {
			t.Fatal(err)
		}
		find := func(id string) *Instance {
			ins, err := a.Instances(c)
			if err != nil {
				t.Fatal(err)
			}
			for _, in := range ins {
				if in.ID == id {
					return &in
				}
			}
			return nil
		}
		if in := find(id1); in == nil || string(in.Data) != `{"n":1}` {
			t.Fatalf("instance 1: %+v", in)
		}
		if find(id2) == nil {
			t.Fatal("instance 2 missing")
		}
		time.Sleep(4 * time.Second)
		if find(id2) != nil {
			t.Fatal("expired instance still listed")
		}
		if err := b.RemoveInstance(c, id1); err != nil {
			t.Fatal(err)
		}
		if find(id1) != nil {
			t.Fatal("removed instance still listed")
		}
	})
	t.Run("claim", func(t *testing.T) {
		key := "k-" + uniq()
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			s := a
			if i%2 == 1 {
				s = b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := s.Claim(c, key, 3*time.Second)
				if err != nil {
					t.Error(err)
				}
				if ok {
					wins.Add(1)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d claims won, want 1", wins.Load())
		}
		time.Sleep(4 * time.Second)
		if ok, err := b.Claim(c, key, time.Second); err != nil || !ok {
			t.Fatalf("claim after the window: %v %v", ok, err)
		}
		key2 := "k2-" + uniq()
		if ok, err := a.Claim(c, key2, time.Minute); err != nil || !ok {
			t.Fatalf("first claim: %v %v", ok, err)
		}
		if err := b.Release(c, key2); err != nil {
			t.Fatal(err)
		}
		if ok, err := a.Claim(c, key2, time.Minute); err != nil || !ok {
			t.Fatalf("claim after Release: %v %v", ok, err)
		}
	})
}

func TestMemoryConformance(t *testing.T) {
	t.Parallel()
	m := NewMemory()
	conformance(t, m, m)
	_ = m.Close()
	if err := m.SetPresence(context.Background(), "x", Entry{}); err != ErrClosed {
		t.Fatalf("after Close: %v", err)
	}
}

func TestRedisConformance(t *testing.T) {
	t.Parallel()
	url := brokertest.URL(t, "redis")
	prefix := "scgwtest:" + uniq() + ":"
	a, err := NewRedis(url, RedisOptions{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := NewRedis(url, RedisOptions{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	conformance(t, a, b)
	// Every key this test made expires by itself.
	c := ctx(t)
	keys, err := a.c.Do(c, a.c.B().Keys().Pattern(prefix+"*").Build()).AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		ttl, err := a.c.Do(c, a.c.B().Pttl().Key(k).Build()).AsInt64()
		if err != nil || ttl < 0 {
			t.Errorf("key %s has no expiry (pttl %d, %v)", k, ttl, err)
		}
	}
}

func TestNATSConformance(t *testing.T) {
	t.Parallel()
	url := brokertest.URL(t, "nats")
	prefix := "scgwtest_" + uniq()
	c := ctx(t)
	a, err := NewNATS(c, url, NATSOptions{Prefix: prefix, MaxAge: time.Minute, MaxClaimWindow: time.Minute})
	if err != nil {
		if nc, cerr := nats.Connect(url); cerr == nil {
			nc.Close()
			t.Fatal(err)
		}
		brokertest.Unavailable(t, "nats", "%v", err)
	}
	t.Cleanup(func() { deleteBuckets(t, url, prefix) })
	defer a.Close()
	b, err := NewNATS(c, url, NATSOptions{Prefix: prefix, MaxAge: time.Minute, MaxClaimWindow: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	conformance(t, a, b)
	if _, err := a.Claim(c, "too-long", time.Hour); err == nil {
		t.Fatal("a window beyond MaxClaimWindow was accepted")
	}
}

func deleteBuckets(t *testing.T, url, prefix string) {
	nc, err := nats.Connect(url)
	if err != nil {
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return
	}
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, b := range []string{prefix + "_state", prefix + "_idem"} {
		if err := js.DeleteKeyValue(c, b); err != nil {
			t.Logf("delete bucket %s: %v", b, err)
		}
	}
}
