package socketcluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/broker"
	"github.com/socketcluster-go/socketcluster/history"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
)

func historyOptions(size int) sc.Options {
	return sc.Options{History: []history.Rule{{Patterns: []string{"h.*", "hist"}, Size: size, TTL: time.Minute}}}
}

// pubAt is a #publish frame with its position.
type pubAt struct {
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
	Offset  *uint64         `json:"offset"`
	Epoch   *string         `json:"epoch"`
}

type recoveryEv struct {
	Channel   string `json:"channel"`
	Offset    uint64 `json:"offset"`
	Epoch     string `json:"epoch"`
	Recovered *bool  `json:"recovered"`
	Missed    int    `json:"missed"`
}

// nextEvent reads frames until an event named one of names, returning its
// name and data; other frames are skipped.
func nextEvent(t *testing.T, c *sctest.Client, names ...string) (string, json.RawMessage) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		f, err := c.Next(time.Until(deadline))
		if err != nil {
			t.Fatalf("waiting for %v: %v", names, err)
		}
		p, ok := sctest.ParsePacket(f.Text())
		if !ok || p.Event == nil {
			continue
		}
		for _, n := range names {
			if *p.Event == n {
				return n, p.Data
			}
		}
	}
}

func nextPub(t *testing.T, c *sctest.Client) pubAt {
	t.Helper()
	_, d := nextEvent(t, c, "#publish")
	var p pubAt
	if err := json.Unmarshal(d, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func nextRecovery(t *testing.T, c *sctest.Client) recoveryEv {
	t.Helper()
	_, d := nextEvent(t, c, "sc.recovery")
	var r recoveryEv
	if err := json.Unmarshal(d, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func publishAck(t *testing.T, c *sctest.Client, channel string, data any) {
	t.Helper()
	r := c.Invoke("#publish", map[string]any{"channel": channel, "data": data})
	if r.Error != nil {
		t.Fatalf("publish on %s: %s", channel, r.Raw)
	}
}

func subscribeRecover(c *sctest.Client, channel string, pos *history.Position) sctest.Response {
	d := map[string]any{"channel": channel}
	if pos != nil {
		d["data"] = map[string]any{"recover": map[string]any{"offset": pos.Offset, "epoch": pos.Epoch}}
	}
	return c.Invoke("#subscribe", d)
}

func TestHistoryPositionsAndAck(t *testing.T) {
	t.Parallel()
	ts := newServer(t, historyOptions(100))
	sub, _ := ts.connect(t, nil)
	pub, _ := ts.connect(t, nil)
	sub.Subscribe("h.a")
	start := nextRecovery(t, sub)
	if start.Channel != "h.a" || start.Offset != 0 || start.Recovered != nil || start.Epoch == "" {
		t.Fatalf("sc.recovery on a plain subscription: %+v", start)
	}
	for i := 1; i <= 5; i++ {
		publishAck(t, pub, "h.a", i)
		// Acknowledged means stored: the history has it.
		page, err := ts.History(context.Background(), "h.a", 1, nil)
		if err != nil || len(page.Publications) != 1 || string(page.Publications[0].Data) != fmt.Sprint(i) {
			t.Fatalf("after the ack of %d the history holds %+v (%v)", i, page, err)
		}
	}
	for i := 1; i <= 5; i++ {
		p := nextPub(t, sub)
		if p.Offset == nil || *p.Offset != uint64(i) || p.Epoch == nil || *p.Epoch != start.Epoch || string(p.Data) != fmt.Sprint(i) {
			t.Fatalf("publication %d: %+v", i, p)
		}
	}
	// Channels without history are unchanged: no position.
	sub.Subscribe("plain")
	publishAck(t, pub, "plain", "x")
	if p := nextPub(t, sub); p.Offset != nil || p.Epoch != nil || p.Channel != "plain" {
		t.Fatalf("plain channel publication: %+v", p)
	}
	if st := ts.HistoryStats(); st.Publishes != 5 {
		t.Fatalf("HistoryStats: %+v", st)
	}
}

func TestHistoryClientRecovery(t *testing.T) {
	t.Parallel()
	ts := newServer(t, historyOptions(100))
	pub, _ := ts.connect(t, nil)
	a, _ := ts.connect(t, nil)
	a.Subscribe("h.r")
	nextRecovery(t, a)
	for i := 1; i <= 3; i++ {
		publishAck(t, pub, "h.r", i)
	}
	var last pubAt
	for range 3 {
		last = nextPub(t, a)
	}
	a.Close()
	for i := 4; i <= 7; i++ {
		publishAck(t, pub, "h.r", i)
	}
	b, _ := ts.connect(t, nil)
	if r := subscribeRecover(b, "h.r", &history.Position{Offset: *last.Offset, Epoch: *last.Epoch}); r.Error != nil {
		t.Fatalf("recover: %s", r.Raw)
	}
	rec := nextRecovery(t, b)
	if rec.Recovered == nil || !*rec.Recovered || rec.Missed != 4 || rec.Offset != 3 {
		t.Fatalf("sc.recovery: %+v", rec)
	}
	for i := 4; i <= 7; i++ {
		p := nextPub(t, b)
		if *p.Offset != uint64(i) || string(p.Data) != fmt.Sprint(i) {
			t.Fatalf("recovered publication %d: %+v", i, p)
		}
	}
	publishAck(t, pub, "h.r", 8)
	if p := nextPub(t, b); *p.Offset != 8 {
		t.Fatalf("live after recovery: %+v", p)
	}
	if st := ts.HistoryStats(); st.Recoveries != 1 || st.RecoveryFailures != 0 {
		t.Fatalf("HistoryStats: %+v", st)
	}
}

// Recovery under a stream of publications: nothing missed, nothing twice.
func TestHistoryRecoveryWhilePublishing(t *testing.T) {
	t.Parallel()
	ts := newServer(t, historyOptions(1000))
	pub, _ := ts.connect(t, nil)
	a, _ := ts.connect(t, nil)
	a.Subscribe("h.s")
	nextRecovery(t, a)
	publishAck(t, pub, "h.s", 0)
	first := nextPub(t, a)
	a.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i < 300; i++ {
			pub.Transmit("#publish", map[string]any{"channel": "h.s", "data": i})
		}
	}()
	b, _ := ts.connect(t, nil)
	if r := subscribeRecover(b, "h.s", &history.Position{Offset: *first.Offset, Epoch: *first.Epoch}); r.Error != nil {
		t.Fatalf("recover: %s", r.Raw)
	}
	<-done
	if rec := nextRecovery(t, b); rec.Recovered == nil || !*rec.Recovered {
		t.Fatalf("sc.recovery: %+v", rec)
	}
	for i := 1; i < 300; i++ {
		p := nextPub(t, b)
		if *p.Offset != uint64(i+1) || string(p.Data) != fmt.Sprint(i) {
			t.Fatalf("publication %d: offset %d data %s", i, *p.Offset, p.Data)
		}
	}
}

func TestHistoryRecoveryFailed(t *testing.T) {
	t.Parallel()
	ts := newServer(t, historyOptions(5))
	pub, _ := ts.connect(t, nil)
	for i := 1; i <= 10; i++ {
		publishAck(t, pub, "h.f", i)
	}
	page, err := ts.History(context.Background(), "h.f", 5, nil)
	if err != nil || len(page.Publications) != 5 || page.Top.Offset != 10 {
		t.Fatalf("history: %+v %v", page, err)
	}
	epoch := page.Top.Epoch
	for i, pos := range []history.Position{{Offset: 2, Epoch: epoch}, {Offset: 9, Epoch: "another-epoch"}} {
		c, _ := ts.connect(t, nil)
		if r := subscribeRecover(c, "h.f", &pos); r.Error != nil {
			t.Fatalf("recover from %+v: %s", pos, r.Raw)
		}
		rec := nextRecovery(t, c)
		if rec.Recovered == nil || *rec.Recovered || rec.Offset != uint64(10+i) || rec.Epoch != epoch {
			t.Fatalf("recover from %+v: %+v", pos, rec)
		}
		publishAck(t, pub, "h.f", "live")
		if p := nextPub(t, c); string(p.Data) != `"live"` {
			t.Fatalf("after a failed recovery: %+v", p)
		}
	}
	if st := ts.HistoryStats(); st.RecoveryFailures != 2 {
		t.Fatalf("HistoryStats: %+v", st)
	}
}

func TestHistoryBadInput(t *testing.T) {
	t.Parallel()
	ts := newServer(t, historyOptions(50), func(srv *sc.Server) {
		_ = srv.SetMiddleware(sc.MiddlewareInbound, func(_ context.Context, a *sc.Action) error {
			if a.Type == sc.ActionSubscribe && a.Channel == "h.secret" {
				return sc.NewError("ForbiddenError", "no")
			}
			return nil
		})
	})
	c, _ := ts.connect(t, nil)
	publishAck(t, c, "h.b", 1)
	page, _ := ts.History(context.Background(), "h.b", 1, nil)
	epoch := page.Top.Epoch
	for _, recover := range []string{
		`"garbage"`, `{"offset":-1,"epoch":"` + epoch + `"}`, `{"offset":1.5,"epoch":"x"}`,
		`{"offset":1e400,"epoch":"x"}`, `{"offset":99999999999999999999,"epoch":"x"}`,
		`{"offset":1}`, `{"offset":1,"epoch":5}`, `{"epoch":"x"}`, `[]`, `{"offset":"1","epoch":"x"}`,
	} {
		r := c.Invoke("#subscribe", json.RawMessage(`{"channel":"h.b","data":{"recover":`+recover+`}}`))
		if r.Error == nil || !strings.Contains(string(r.Error), "InvalidArgumentsError") {
			t.Errorf("recover %s: %s", recover, r.Raw)
		}
	}
	// From the future.
	r := subscribeRecover(c, "h.b", &history.Position{Offset: 1000, Epoch: epoch})
	if r.Error == nil || !strings.Contains(string(r.Error), "ahead") {
		t.Errorf("future position: %s", r.Raw)
	}
	if c.Invoke("#subscribe", map[string]any{"channel": "h.b"}).Error != nil {
		t.Error("a subscription after refused recoveries failed")
	}
	// A position of another channel (another epoch): not recovered, and
	// nothing of the other channel is sent.
	publishAck(t, c, "h.c", "c1")
	other, _ := ts.History(context.Background(), "h.c", 1, nil)
	if r := subscribeRecover(c, "h.b2", &other.Top); r.Error != nil {
		t.Errorf("recover with another channel's position: %s", r.Raw)
	} else {
		rec := nextRecovery(t, c)
		for rec.Channel != "h.b2" {
			rec = nextRecovery(t, c)
		}
		if rec.Recovered == nil || *rec.Recovered {
			t.Errorf("recover with another channel's position: %+v", rec)
		}
	}
	// A channel without history.
	r = subscribeRecover(c, "plain", &history.Position{Offset: 1, Epoch: epoch})
	if r.Error == nil || !strings.Contains(string(r.Error), "HistoryError") {
		t.Errorf("recover on a channel without history: %s", r.Raw)
	}
	// The procedure.
	for _, req := range []string{
		`{"channel":"h.b","limit":1000000}`, `{"channel":"h.b","limit":-1}`, `{"channel":"h.b","limit":"x"}`,
		`{"channel":"plain"}`, `"h.b"`, `{"channel":"h.b","since":{"offset":5000,"epoch":"` + epoch + `"}}`,
		`{"channel":"h.b","since":"x"}`,
	} {
		r := c.Invoke("sc.history", json.RawMessage(req))
		if r.Error == nil {
			t.Errorf("sc.history %s: %s", req, r.Raw)
		}
	}
	// Where subscribing is refused, so is reading: no data leaks.
	_ = ts.Exchange().InvokePublish(context.Background(), "h.secret", "classified")
	r = c.Invoke("sc.history", map[string]any{"channel": "h.secret"})
	if r.Error == nil || strings.Contains(r.Raw, "classified") {
		t.Errorf("sc.history on a forbidden channel: %s", r.Raw)
	}
	r = subscribeRecover(c, "h.secret", &history.Position{Offset: 0, Epoch: epoch})
	if r.Error == nil || strings.Contains(r.Raw, "classified") {
		t.Errorf("recover on a forbidden channel: %s", r.Raw)
	}
	for {
		f, err := c.Next(300 * time.Millisecond)
		if err != nil {
			break
		}
		if strings.Contains(f.Text(), "classified") {
			t.Fatalf("data of a forbidden channel sent: %s", f.Text())
		}
	}
}

func TestHistoryProcedure(t *testing.T) {
	t.Parallel()
	ts := newServer(t, historyOptions(50))
	c, _ := ts.connect(t, nil)
	for i := 1; i <= 10; i++ {
		publishAck(t, c, "hist", i)
	}
	var ans struct {
		Channel      string `json:"channel"`
		Offset       uint64 `json:"offset"`
		Epoch        string `json:"epoch"`
		Recovered    *bool  `json:"recovered"`
		Publications []struct {
			Offset uint64          `json:"offset"`
			Epoch  string          `json:"epoch"`
			Data   json.RawMessage `json:"data"`
		} `json:"publications"`
	}
	r := c.Invoke("sc.history", map[string]any{"channel": "hist", "limit": 3})
	if err := json.Unmarshal(r.Data, &ans); err != nil || r.Error != nil {
		t.Fatalf("sc.history: %s", r.Raw)
	}
	if ans.Offset != 10 || len(ans.Publications) != 3 || ans.Publications[0].Offset != 8 || string(ans.Publications[2].Data) != "10" || ans.Recovered != nil {
		t.Fatalf("newest 3: %s", r.Raw)
	}
	r = c.Invoke("sc.history", map[string]any{"channel": "hist", "since": map[string]any{"offset": 6, "epoch": ans.Epoch}})
	ans.Publications = nil
	if err := json.Unmarshal(r.Data, &ans); err != nil || len(ans.Publications) != 4 || ans.Publications[0].Offset != 7 || ans.Recovered == nil || !*ans.Recovered {
		t.Fatalf("since 6: %s", r.Raw)
	}
}

func TestHistoryOptionsValidate(t *testing.T) {
	t.Parallel()
	for _, h := range []history.Rule{
		{Size: 10, TTL: time.Minute},
		{Patterns: []string{"*"}, Size: 0, TTL: time.Minute},
		{Patterns: []string{"*"}, Size: 10},
	} {
		if err := (sc.Options{History: []history.Rule{h}}).Validate(); err == nil {
			t.Errorf("%+v accepted", h)
		}
	}
	// A broker without history cannot serve it.
	if _, err := sc.New(sc.Options{History: historyOptions(5).History, Broker: plainBroker{broker.NewMemory(nil)}}); err == nil {
		t.Error("a broker without history accepted with Options.History")
	}
}

// plainBroker hides the memory broker's history.
type plainBroker struct{ broker.Broker }

// Outbound middleware that rewrites the data keeps the position.
func TestHistoryOutboundMiddlewareKeepsPosition(t *testing.T) {
	t.Parallel()
	ts := newServer(t, historyOptions(10), func(srv *sc.Server) {
		_ = srv.SetMiddleware(sc.MiddlewareOutbound, func(_ context.Context, a *sc.Action) error {
			return a.SetData(map[string]any{"wrapped": json.RawMessage(a.Data)})
		})
	})
	c, _ := ts.connect(t, nil)
	c.Subscribe("h.o")
	nextRecovery(t, c)
	publishAck(t, c, "h.o", 1)
	p := nextPub(t, c)
	if p.Offset == nil || *p.Offset != 1 || string(p.Data) != `{"wrapped":1}` {
		t.Fatalf("rewritten publication: %+v data %s", p, p.Data)
	}
}
