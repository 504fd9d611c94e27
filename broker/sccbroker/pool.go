package sccbroker

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"sync"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/client"
)

// pool is the set of connections to one scc-broker (ClientPoolSize).
type pool struct {
	uri     string
	clients []*poolClient
}

// poolClient is one connection to an scc-broker and the channels that
// must be subscribed on it. Its loop connects it (again) whenever it is
// closed and brings its subscriptions in line with wanted; between
// connections, the client package re-subscribes by itself.
type poolClient struct {
	b      *Broker
	p      *pool
	c      *client.Client
	pubMu  sync.Mutex          // serialises publishes (order)
	wanted map[string]struct{} // guarded by Broker.mu
	kickC  chan struct{}
	done   chan struct{}
}

func (pc *poolClient) kick() {
	select {
	case pc.kickC <- struct{}{}:
	default:
	}
}

// newPool makes the connections to uri and starts their loops; called
// with b.mu held.
func (b *Broker) newPool(uri string) *pool {
	p := &pool{uri: uri}
	for i := range b.opts.ClientPoolSize {
		q := url.Values{}
		q.Set("authKey", b.opts.AuthKey)
		q.Set("poolIndex", strconv.Itoa(i))
		var pc *poolClient
		c, err := client.New(uri, &client.Options{
			AckTimeout:    b.opts.BrokerAckTimeout,
			AutoReconnect: true,
			Reconnect:     b.opts.BrokerReconnect,
			Query:         q,
			OnPublish:     func(ch string, d sc.Data) { b.receive(pc, ch, d) },
		})
		if err != nil {
			b.c.badState.Add(1)
			b.log.warn("bad-uri", "sccbroker: unusable scc-broker URI; its channels are not relayed", "uri", uri, "error", err.Error())
			p.close() // the connections made before this one
			return &pool{uri: uri}
		}
		pc = &poolClient{b: b, p: p, c: c, wanted: map[string]struct{}{}, kickC: make(chan struct{}, 1), done: make(chan struct{})}
		p.clients = append(p.clients, pc)
		b.wg.Add(1)
		go pc.loop()
	}
	return p
}

// close ends the pool's loops and connections (not with b.mu held).
func (p *pool) close() {
	for _, pc := range p.clients {
		close(pc.done)
	}
	for _, pc := range p.clients {
		_ = pc.c.Close(1000, "")
	}
}

// subscribeParallel bounds the subscriptions in flight during a sync.
const subscribeParallel = 64

func (pc *poolClient) loop() {
	b := pc.b
	defer b.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	failures := 0
	for {
		if pc.c.State() == client.StateClosed {
			ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
			err := pc.c.Connect(ctx)
			cancel()
			if err != nil {
				if pc.stopped() {
					return
				}
				failures++
				b.c.connectFailures.Add(1)
				b.log.warn("broker-connect", "sccbroker: cannot connect to scc-broker; retrying", "broker", pc.p.uri, "error", err.Error())
				delay := b.opts.RetryDelay * time.Duration(min(failures, 5))
				select {
				case <-time.After(delay):
				case <-pc.done:
					return
				case <-b.ctx.Done():
					return
				}
				continue
			}
			failures = 0
		}
		pc.sync()
		select {
		case <-pc.kickC:
		case <-tick.C:
		case <-pc.done:
			return
		case <-b.ctx.Done():
			return
		}
	}
}

func (pc *poolClient) stopped() bool {
	select {
	case <-pc.done:
		return true
	case <-pc.b.ctx.Done():
		return true
	default:
		return false
	}
}

// sync subscribes the wanted channels the client lacks and unsubscribes
// those no longer wanted on this connection.
func (pc *poolClient) sync() {
	b := pc.b
	if pc.c.State() == client.StateClosed {
		return
	}
	b.mu.Lock()
	want := make(map[string]struct{}, len(pc.wanted))
	for ch := range pc.wanted {
		want[ch] = struct{}{}
	}
	b.mu.Unlock()
	for _, ch := range pc.c.Subscriptions(true) {
		if _, ok := want[ch]; !ok {
			if c := pc.c.Channel(ch); c != nil {
				_ = c.Unsubscribe()
			}
		}
		delete(want, ch)
	}
	if len(want) == 0 {
		return
	}
	sem := make(chan struct{}, subscribeParallel)
	var wg sync.WaitGroup
	for ch := range want {
		if pc.stopped() {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			b.mu.Lock()
			_, still := pc.wanted[ch]
			b.mu.Unlock()
			if !still {
				return
			}
			ctx, cancel := context.WithTimeout(b.ctx, b.opts.BrokerAckTimeout)
			_, err := pc.c.Subscribe(ctx, ch)
			cancel()
			if err != nil && ctx.Err() == nil && b.ctx.Err() == nil && !errors.Is(err, client.ErrClosed) {
				b.log.warn("subscribe", "sccbroker: subscription refused by scc-broker", "broker", pc.p.uri, "channel", ch, "error", err.Error())
			}
		}()
	}
	wg.Wait()
}
