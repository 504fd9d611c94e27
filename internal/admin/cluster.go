package admin

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"sync"
	"time"
)

// ClusterChannel is the channel on which instances share their figures
// through the broker. The messages are sealed with a key derived from the
// admin password (AES-GCM): a client that subscribes to the channel sees
// only opaque strings, and messages not sealed with the same password are
// ignored. Every instance needs the same admin password to see the others.
const ClusterChannel = "#sc-admin/figures"

type envelope struct {
	ID      string  `json:"id"` // the sending process
	Figures Figures `json:"figures"`
}

func (a *Admin) seal(plain []byte) ([]byte, error) {
	block, err := aes.NewCipher(a.key[:])
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return gcm.Seal(nonce, nonce, plain, []byte(ClusterChannel)), nil
}

func (a *Admin) open(sealed []byte) ([]byte, error) {
	block, err := aes.NewCipher(a.key[:])
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	if len(sealed) < gcm.NonceSize() {
		return nil, errors.New("short message")
	}
	return gcm.Open(nil, sealed[:gcm.NonceSize()], sealed[gcm.NonceSize():], []byte(ClusterChannel))
}

// share publishes this instance's figures every interval and records the
// others' until ctx is done.
func (a *Admin) share(ctx context.Context) error {
	ex := a.srv.Exchange()
	ch, err := ex.Subscribe(ctx, ClusterChannel)
	if err != nil {
		return err
	}
	defer ex.Unsubscribe(ClusterChannel)
	cons := ch.Consumer()
	defer cons.Stop()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			d, err := cons.Next(ctx)
			if err != nil {
				return
			}
			var text string
			if json.Unmarshal(d, &text) != nil {
				continue
			}
			sealed, err := base64.StdEncoding.DecodeString(text)
			if err != nil {
				continue
			}
			plain, err := a.open(sealed)
			if err != nil {
				continue // another password, or not ours
			}
			var env envelope
			if json.Unmarshal(plain, &env) != nil || env.ID == a.id {
				continue
			}
			a.peers.put(env.ID, env.Figures, time.Now())
		}
	}()
	t := time.NewTicker(a.interval)
	defer t.Stop()
	for {
		plain, _ := json.Marshal(envelope{ID: a.id, Figures: a.figures(time.Now())})
		if sealed, err := a.seal(plain); err == nil {
			_ = ex.TransmitPublish(ClusterChannel, base64.StdEncoding.EncodeToString(sealed))
		}
		select {
		case <-ctx.Done():
			cons.Stop()
			wg.Wait()
			return nil
		case <-t.C:
		}
	}
}

// peers holds the latest figures of the other instances.
type peers struct {
	maxAge time.Duration
	mu     sync.Mutex
	by     map[string]peer
}

type peer struct {
	f    Figures
	seen time.Time
}

func newPeers(maxAge time.Duration) *peers { return &peers{maxAge: maxAge, by: map[string]peer{}} }

func (p *peers) put(id string, f Figures, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.by[id] = peer{f, now}
}

// list returns the figures heard from within maxAge, except self's.
func (p *peers) list(now time.Time, self string) []Figures {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Figures
	for id, x := range p.by {
		if now.Sub(x.seen) > p.maxAge {
			delete(p.by, id)
			continue
		}
		if id != self {
			out = append(out, x.f)
		}
	}
	return out
}
