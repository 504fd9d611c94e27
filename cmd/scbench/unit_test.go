//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gobwas/ws"
)

func TestScanPacket(t *testing.T) {
	tests := []struct {
		in   string
		want scanned
	}{
		{`{"rid":5}`, scanned{kind: kindResponse, rid: 5}},
		{`{"rid":12,"data":"xxxx"}`, scanned{kind: kindResponse, rid: 12}},
		{`{"rid":5,"error":{"message":"it failed","name":"FailError"}}`, scanned{kind: kindResponse, rid: 5, isErr: true}},
		{`{"rid":5,"error":null}`, scanned{kind: kindResponse, rid: 5}},
		{`{"rid":5,"error":"just a string"}`, scanned{kind: kindResponse, rid: 5, isErr: true}},
		{`{"data":{"a":1},"rid":7}`, scanned{kind: kindResponse, rid: 7}},
		{`{ "rid": 1099511627777 }`, scanned{kind: kindResponse, rid: 1099511627777}},
		{`{"rid":-1}`, scanned{kind: kindResponse, rid: -1}},
		{`{"rid":"3"}`, scanned{kind: kindBad}},
		{`{"rid":1.5}`, scanned{kind: kindBad}},
		{`{"event":"#publish","data":{"channel":"c","data":{"scb":12,"ts":345}}}`, scanned{kind: kindDelivery, seq: 12, ts: 345}},
		{`{"event":"#publish","data":{"channel":"c","data":{"scb":3,"ts":99,"pad":"xx"}}}`, scanned{kind: kindDelivery, seq: 3, ts: 99}},
		{`{"data":{"channel":"c","data":{"scb":4,"ts":5}},"event":"#publish"}`, scanned{kind: kindDelivery, seq: 4, ts: 5}},
		{`{"event":"#publish","data":{"channel":"c","data":"hello"}}`, scanned{kind: kindOther}},
		{`{"event":"#publish","data":{"channel":"c","data":{"scb":"x","ts":1}}}`, scanned{kind: kindOther}},
		{`{"event":"#removeAuthToken"}`, scanned{kind: kindOther}},
		{`{"event":"#kickOut","data":{"channel":"a","message":"bye"}}`, scanned{kind: kindOther}},
		{`{"event":"clientProc","cid":1,"data":{"q":1}}`, scanned{kind: kindOther}},
		{`hello`, scanned{kind: kindOther}},
	}
	for _, tt := range tests {
		if got := scanPacket([]byte(tt.in)); got != tt.want {
			t.Errorf("scanPacket(%s) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseInt(t *testing.T) {
	tests := []struct {
		in   string
		v    int64
		end  int
		isOK bool
	}{
		{"0", 0, 1, true},
		{"123,", 123, 3, true},
		{"-42}", -42, 3, true},
		{"123456789012345678", 123456789012345678, 18, true},
		{"1234567890123456789", 0, 18, false},
		{"1.0", 0, 1, false},
		{"1e3", 0, 1, false},
		{"x", 0, 0, false},
		{"-", 0, 1, false},
		{"", 0, 0, false},
	}
	for _, tt := range tests {
		v, end, ok := parseInt([]byte(tt.in), 0)
		if v != tt.v || end != tt.end || ok != tt.isOK {
			t.Errorf("parseInt(%q) = %d, %d, %v; want %d, %d, %v", tt.in, v, end, ok, tt.v, tt.end, tt.isOK)
		}
	}
}

func TestNextElement(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`[ {"rid":1} , {"event":"x","data":[1,{"a":"]}"}]},"s\"]",5 ,null,[[]]]`,
			[]string{`{"rid":1}`, `{"event":"x","data":[1,{"a":"]}"}]}`, `"s\"]"`, `5 `, `null`, `[[]]`}},
		// Backslashes before a quote: an even run ends the string, an
		// odd one escapes the quote.
		{`["a\\\\",{"k":"x\\\\\"y"},"\\\\\\\\"]`,
			[]string{`"a\\\\"`, `{"k":"x\\\\\"y"}`, `"\\\\\\\\"`}},
	} {
		var got []string
		for i := 1; ; {
			e, next, ok := nextElement([]byte(tc.in), i)
			if !ok {
				break
			}
			got = append(got, string(e))
			i = next
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Fatalf("elements of %s = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{`[`, `[{"a":1`, `["abc`, `[]`, `["a\"]`} {
		if e, _, ok := nextElement([]byte(bad), 1); ok {
			t.Errorf("nextElement(%s) = %q, want none", bad, e)
		}
	}
}

func TestFrameRoundTrip(t *testing.T) {
	mask := [4]byte{1, 2, 3, 4}
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 70000} {
		payload := bytes.Repeat([]byte{'a'}, n)
		for _, m := range []*[4]byte{nil, &mask} {
			f := appendFrame(nil, ws.OpText, payload, m)
			h, hl, ok := parseHeader(f)
			if !ok || h.Length != int64(n) || h.OpCode != ws.OpText || !h.Fin || h.Masked != (m != nil) {
				t.Fatalf("n=%d masked=%v: header %+v ok=%v", n, m != nil, h, ok)
			}
			if hl+n != len(f) {
				t.Fatalf("n=%d: header length %d + %d != frame %d", n, hl, n, len(f))
			}
			// gobwas/ws agrees on the header.
			h2, err := ws.ReadHeader(bytes.NewReader(f))
			if err != nil || h2 != h {
				t.Fatalf("n=%d: ws.ReadHeader = %+v, %v; parseHeader %+v", n, h2, err, h)
			}
			p := append([]byte(nil), f[hl:]...)
			if h.Masked {
				ws.Cipher(p, h.Mask, 0)
			}
			if !bytes.Equal(p, payload) {
				t.Fatalf("n=%d: payload differs after unmasking", n)
			}
			for cut := 0; cut < hl; cut++ {
				if _, _, ok := parseHeader(f[:cut]); ok {
					t.Fatalf("n=%d: header parsed from %d of %d bytes", n, cut, hl)
				}
			}
		}
	}
}

// recorder is a Handler that keeps what it is given.
type recorder struct {
	rids []int64
	errs int
	seqs []int64
}

func (r *recorder) OnResponse(_ *Conn, rid int64, isErr bool, _ int64) {
	r.rids = append(r.rids, rid)
	if isErr {
		r.errs++
	}
}
func (r *recorder) OnDelivery(_ *Conn, seq, _, _ int64) { r.seqs = append(r.seqs, seq) }

// TestProcessSplit feeds a stream of server frames to Conn.process cut at
// every possible point, as reads would deliver it.
func TestProcessSplit(t *testing.T) {
	var stream []byte
	add := func(op ws.OpCode, fin bool, p string) {
		f := appendFrame(nil, op, []byte(p), nil)
		if !fin {
			f[0] &^= 0x80
		}
		stream = append(stream, f...)
	}
	add(ws.OpText, true, `{"rid":1}`)
	add(ws.OpText, true, ``) // ping
	add(ws.OpText, true, `{"event":"#publish","data":{"channel":"c","data":{"scb":1,"ts":2}}}`)
	add(ws.OpText, true, `[{"rid":2,"error":{"name":"E"}},{"event":"#publish","data":{"channel":"c","data":{"scb":2,"ts":3}}}]`)
	add(ws.OpPing, true, `hi`)
	add(ws.OpText, false, `{"event":"#publish","data":{"channel":"c",`)
	add(ws.OpContinuation, false, `"data":{"scb":3,`)
	add(ws.OpContinuation, true, `"ts":4}}}`)
	add(ws.OpText, true, `{"rid":3,"data":"`+strings.Repeat("x", 300)+`"}`)

	for cut := 0; cut <= len(stream); cut++ {
		rec := &recorder{}
		c := &Conn{pr: protocols["sc"], h: rec, stats: &connStats{}}
		var pending []byte
		for _, chunk := range [][]byte{stream[:cut], stream[cut:]} {
			pending = append(pending, chunk...)
			n, err := c.process(pending, 0)
			if err != nil {
				t.Fatalf("cut %d: %v", cut, err)
			}
			pending = append(pending[:0], pending[n:]...)
		}
		if len(pending) != 0 {
			t.Fatalf("cut %d: %d bytes left over", cut, len(pending))
		}
		if got := rec.rids; len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 || rec.errs != 1 {
			t.Fatalf("cut %d: rids %v errs %d", cut, got, rec.errs)
		}
		if got := rec.seqs; len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 {
			t.Fatalf("cut %d: seqs %v", cut, got)
		}
		if c.stats.pings.Load() != 1 {
			t.Fatalf("cut %d: %d pings", cut, c.stats.pings.Load())
		}
		// The answers: a "" pong and a control pong "hi", both masked.
		out := c.pend
		var ops []ws.OpCode
		for len(out) > 0 {
			h, hl, ok := parseHeader(out)
			if !ok || !h.Masked {
				t.Fatalf("cut %d: bad output frame", cut)
			}
			ops = append(ops, h.OpCode)
			out = out[hl+int(h.Length):]
		}
		if len(ops) != 2 || ops[0] != ws.OpText || ops[1] != ws.OpPong {
			t.Fatalf("cut %d: output opcodes %v", cut, ops)
		}
	}
}

func TestProcessClose(t *testing.T) {
	c := &Conn{pr: protocols["sc"], h: &recorder{}, stats: &connStats{}}
	f := appendFrame(nil, ws.OpClose, []byte{0x0f, 0xa1, 'b', 'y', 'e'}, nil) // 4001
	_, err := c.process(f, 0)
	var ce *closeError
	if !errors.As(err, &ce) || ce.code != 4001 || ce.reason != "bye" {
		t.Fatalf("process(close) = %v", err)
	}
}

func TestBuckets(t *testing.T) {
	prev := -1
	for v := int64(0); v < 1<<22; v += 1 + v/97 {
		b := bucketOf(v)
		if b < prev {
			t.Fatalf("bucketOf(%d) = %d < previous %d", v, b, prev)
		}
		prev = b
		lo, hi := bucketRange(b)
		if v < lo || v > hi {
			t.Fatalf("value %d in bucket %d [%d, %d]", v, b, lo, hi)
		}
		if v >= 2*subCount && float64(hi-lo+1)/float64(lo) > 1.0/subCount+1e-9 {
			t.Fatalf("bucket %d [%d, %d] wider than 1/%d", b, lo, hi, subCount)
		}
	}
	if b := bucketOf(math.MaxInt64); b != numBuckets-1 {
		t.Fatalf("bucketOf(max) = %d", b)
	}
}

func TestQuantiles(t *testing.T) {
	h := NewHist(4)
	const n = 100000
	perm := rand.Perm(n)
	for i, v := range perm {
		h.Record(i, int64(v+1)*1000) // 1µs .. 100ms, each once
	}
	s := h.Snapshot()
	if s.N != n || s.Max != n*1000 {
		t.Fatalf("N=%d max=%d", s.N, s.Max)
	}
	if want := float64(n+1) / 2 * 1000; math.Abs(s.Mean()-want) > 1e-6*want {
		t.Fatalf("mean %v, want %v", s.Mean(), want)
	}
	for _, q := range []float64{0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 1} {
		want := math.Ceil(q*n) * 1000
		got := float64(s.Quantile(q))
		if math.Abs(got-want)/want > 1.0/subCount {
			t.Errorf("q%v = %v, want %v within %.1f%%", q, got, want, 100.0/subCount)
		}
	}
	if got := s.Quantile(1); got != s.Max {
		t.Errorf("q1 = %d, want max %d", got, s.Max)
	}
	// Small exact values.
	h = NewHist(1)
	for _, v := range []int64{5, 1, 3, 2, 4} {
		h.Record(0, v)
	}
	s = h.Snapshot()
	for q, want := range map[float64]int64{0: 1, 0.2: 1, 0.4: 2, 0.5: 3, 0.8: 4, 0.81: 5, 1: 5} {
		if got := s.Quantile(q); got != want {
			t.Errorf("small: q%v = %d, want %d", q, got, want)
		}
	}
	if got := NewHist(1).Snapshot().Quantile(0.5); got != 0 {
		t.Errorf("empty: %d", got)
	}
}

func TestSeqTracker(t *testing.T) {
	var tr seqTracker
	for _, s := range []int64{1, 2, 3, 3, 5, 4, 6, 2, 7} {
		tr.add(s, 0)
	}
	// 3 and 2 again are duplicates; 4 after 5 is out of order.
	if c := tr.counts(); c != (seqCounts{recv: 9, uniq: 7, dup: 2, ooo: 1}) {
		t.Fatalf("counts %+v", c)
	}
	// A jump beyond the window, then a late one far behind it.
	tr.add(5000, 0)
	tr.add(10, 0)
	tr.add(5000, 0)
	if c := tr.counts(); c != (seqCounts{recv: 12, uniq: 9, dup: 3, ooo: 2}) {
		t.Fatalf("counts %+v", c)
	}
	// The window slides: numbers just below the top are still checked.
	var tr2 seqTracker
	for s := int64(1); s <= 3*seqWindow; s++ {
		tr2.add(s, 0)
	}
	tr2.add(3*seqWindow-5, 0)
	if c := tr2.counts(); c.dup != 1 || c.uniq != 3*seqWindow || c.ooo != 0 {
		t.Fatalf("counts %+v", c)
	}
}

func TestNextSearchRate(t *testing.T) {
	inf := math.Inf(1)
	steps := []struct {
		lo, hi, rate float64
		next         float64
		done         bool
	}{
		{100, inf, 100, 200, false},
		{0, 100, 100, 50, false},
		{200, 400, 400, 300, false},
		{390, 400, 400, 0, true},
		{1000, inf, 1000, 0, true}, // ceiling 1000 passed
		{0, 0.5, 0.5, 0, true},
	}
	for _, s := range steps {
		next, done := nextSearchRate(s.lo, s.hi, s.rate, 1000)
		if next != s.next || done != s.done {
			t.Errorf("nextSearchRate(%v, %v, %v) = %v, %v; want %v, %v", s.lo, s.hi, s.rate, next, done, s.next, s.done)
		}
	}
}

func TestTargetChecks(t *testing.T) {
	ctx := context.Background()
	for _, addr := range []string{"10.1.2.3:80", "ws://192.168.0.1:8000/socketcluster/", "[2001:db8::1]:80"} {
		tg := &Target{Addr: addr}
		if err := tg.resolve(ctx, 1); !errors.Is(err, errRemote) {
			t.Errorf("%s: err = %v, want errRemote", addr, err)
		}
		tg.AllowRemote = true
		if err := tg.resolve(ctx, 1); err != nil {
			t.Errorf("%s with -allow-remote: %v", addr, err)
		}
	}
	tg := &Target{Addr: "127.0.0.1:8000"}
	if err := tg.resolve(ctx, 10); err != nil || tg.u.String() != "ws://127.0.0.1:8000/socketcluster/" || len(tg.srcs) != 0 {
		t.Fatalf("resolve: %v %v %v", err, tg.u, tg.srcs)
	}
	tg = &Target{Addr: "localhost:8000/custom/"}
	if err := tg.resolve(ctx, 10); err != nil || tg.u.Path != "/custom/" {
		t.Fatalf("resolve localhost: %v %v", err, tg.u)
	}
	tg = &Target{Addr: "127.0.0.1:8000"}
	if err := tg.resolve(ctx, ephemeralPorts()/2); err != nil || len(tg.srcs) != 2 {
		t.Fatalf("auto source addresses: %v %v", err, tg.srcs)
	}
	if tg.localAddr(0).String() != "127.0.0.2:0" || tg.localAddr(3).String() != "127.0.0.3:0" {
		t.Fatalf("localAddr: %v %v", tg.localAddr(0), tg.localAddr(4))
	}
	tg = &Target{Addr: "127.0.0.1:"}
	if err := tg.resolve(ctx, 1); err == nil {
		t.Fatal("empty port accepted")
	}
	tg = &Target{Addr: "wss://127.0.0.1:8000"}
	if err := tg.resolve(ctx, 1); err == nil {
		t.Fatal("wss accepted by a scenario that reads with epoll")
	}
	tg = &Target{Addr: "wss://localhost/x/", Insecure: true, tlsOK: true}
	if err := tg.resolve(ctx, 1); err != nil || tg.u.Port() != "443" || tg.tls == nil || !tg.tls.InsecureSkipVerify || tg.tls.ServerName != "localhost" {
		t.Fatalf("wss for conns: %v %v %+v", err, tg.u, tg.tls)
	}
	tg = &Target{Addr: "https://127.0.0.1:8443", CAFile: "/nonexistent.pem", tlsOK: true}
	if err := tg.resolve(ctx, 1); err == nil {
		t.Fatal("a missing -ca file accepted")
	}
}

func TestCompareResults(t *testing.T) {
	mk := func(rate float64, p99 float64) *Result {
		r := newResult("rpc")
		r.set("procedure", "echo")
		r.set("calls_per_s", rate)
		r.set("latency_p99_ms", p99)
		r.set("clients", 10)
		return r
	}
	a := []*Result{mk(100, 2), mk(120, 3), mk(110, 9)}
	b := []*Result{mk(200, 1), mk(210, 1), mk(190, 2)}
	out := compareResults("rpc", a, b)
	raw, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Rounds int                `json:"rounds"`
		A      map[string]float64 `json:"a_median"`
		B      map[string]float64 `json:"b_median"`
		Ratio  map[string]float64 `json:"b_over_a"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	if got.Rounds != 3 || got.A["calls_per_s"] != 110 || got.B["calls_per_s"] != 200 ||
		math.Abs(got.Ratio["calls_per_s"]-200.0/110) > 1e-4 || math.Abs(got.Ratio["latency_p99_ms"]-1.0/3) > 1e-4 ||
		got.Ratio["clients"] != 1 {
		t.Fatalf("compare: %s", raw)
	}
	if _, ok := got.A["procedure"]; ok {
		t.Fatal("non-numeric figure compared")
	}
}

// nopHandler counts what it is given, like the scenario handlers do.
type nopHandler struct {
	tr   seqTracker
	hist *Hist
}

func (h *nopHandler) OnResponse(*Conn, int64, bool, int64) {}
func (h *nopHandler) OnDelivery(c *Conn, seq, ts, now int64) {
	h.tr.add(seq, now)
	h.hist.Record(c.ID, now-ts)
}

// BenchmarkProcessDeliveries measures the generator's cost per received
// #publish frame once the bytes are in memory (no system calls).
func BenchmarkProcessDeliveries(b *testing.B) {
	prefix := protocols["sc"].publishPrefix("scbench-fanout")
	suffix := publishSuffix(0)
	var stream []byte
	const perRead = 100
	for i := range perRead {
		p := protocols["sc"].appendPublish(nil, prefix, suffix, int64(i+1), 12345, -1)
		// The server's form: no cid, channel and data inside "data".
		stream = appendFrame(stream, ws.OpText, p, nil)
	}
	h := &nopHandler{hist: NewHist(1)}
	c := &Conn{pr: protocols["sc"], h: h, stats: &connStats{}}
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		h.tr = seqTracker{}
		if n, err := c.process(stream, 99999); err != nil || n != len(stream) {
			b.Fatal(n, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perRead), "ns/delivery")
}

func TestMachineSteal(t *testing.T) {
	steal, total, ok := machineTicks()
	if !ok || total <= 0 || steal < 0 || steal > total {
		t.Fatalf("machineTicks() = %d, %d, %v", steal, total, ok)
	}
	r := newResult("rpc")
	a := probeSample{cpu: -1, rssKB: -1, steal: 10, total: 1000}
	b := probeSample{cpu: -1, rssKB: -1, steal: 30, total: 2000}
	r.setCPU(a, b, 0, "call")
	if got := r.vals["machine_steal_pct"]; got != 2.0 {
		t.Fatalf("machine_steal_pct = %v, want 2", got)
	}
	r = newResult("rpc")
	r.setCPU(probeSample{cpu: -1, rssKB: -1, total: -1}, b, 0, "call")
	if _, has := r.vals["machine_steal_pct"]; has {
		t.Fatal("steal reported without a first sample")
	}
}
