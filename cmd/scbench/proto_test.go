//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/gobwas/ws"
)

// Centrifugo's JSON protocol through the same frame processing as
// SocketCluster: replies by id, pushes carrying the generator's numbers,
// several messages per frame separated by newlines, {} pings answered with {}.
func TestProcessCentrifugo(t *testing.T) {
	var stream []byte
	add := func(p string) { stream = appendFrame(stream, ws.OpText, []byte(p), nil) }
	add(`{"id":1,"connect":{"client":"abc","version":"6.9.1","ping":25,"pong":true}}`)
	add(`{}`)
	add(`{"push":{"channel":"bench:c","pub":{"data":{"scb":1,"ts":2},"offset":1}}}` + "\n" +
		`{"id":2,"error":{"code":103,"message":"permission denied"}}` + "\n" +
		`{"push":{"channel":"bench:c","pub":{"data":{"scb":2,"ts":3}}}}`)
	add(`{"id":3,"publish":{}}`)
	rec := &recorder{}
	c := &Conn{pr: protocols["centrifugo"], h: rec, stats: &connStats{}}
	if n, err := c.process(stream, 0); err != nil || n != len(stream) {
		t.Fatalf("process = %d, %v", n, err)
	}
	if got := rec.rids; len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 || rec.errs != 1 {
		t.Fatalf("rids %v errs %d", got, rec.errs)
	}
	if got := rec.seqs; len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("seqs %v", got)
	}
	if c.stats.pings.Load() != 1 {
		t.Fatalf("%d pings", c.stats.pings.Load())
	}
	h, hl, ok := parseHeader(c.pend)
	if !ok || !h.Masked || h.OpCode != ws.OpText || len(c.pend) != hl+int(h.Length) {
		t.Fatalf("output %q", c.pend)
	}
	pong := append([]byte(nil), c.pend[hl:]...)
	ws.Cipher(pong, h.Mask, 0)
	if string(pong) != "{}" {
		t.Fatalf("pong %q, want {}", pong)
	}
}

// The commands the generator writes are valid JSON of each protocol's shape.
func TestProtocolCommands(t *testing.T) {
	for _, tt := range []struct {
		proto string
		want  map[string]string // command → its JSON, decoded and re-encoded
	}{
		{"sc", map[string]string{
			"subscribe": `{"cid":2,"data":{"channel":"a\"b"},"event":"#subscribe"}`,
			"publish":   `{"cid":7,"data":{"channel":"a\"b","data":{"pad":"xx","scb":5,"ts":6}},"event":"#publish"}`,
			"transmit":  `{"data":{"channel":"a\"b","data":{"pad":"xx","scb":5,"ts":6}},"event":"#publish"}`,
		}},
		{"centrifugo", map[string]string{
			"subscribe": `{"id":2,"subscribe":{"channel":"a\"b"}}`,
			"publish":   `{"id":7,"publish":{"channel":"a\"b","data":{"pad":"xx","scb":5,"ts":6}}}`,
		}},
	} {
		pr := protocols[tt.proto]
		got := map[string][]byte{
			"subscribe": pr.subscribe(`a"b`),
			"publish":   pr.appendPublish(nil, pr.publishPrefix(`a"b`), publishSuffix(2), 5, 6, 7),
		}
		if _, ok := tt.want["transmit"]; ok {
			got["transmit"] = pr.appendPublish(nil, pr.publishPrefix(`a"b`), publishSuffix(2), 5, 6, -1)
		}
		for k, want := range tt.want {
			var v any
			if err := json.Unmarshal(got[k], &v); err != nil {
				t.Fatalf("%s %s: %s: %v", tt.proto, k, got[k], err)
			}
			norm, _ := json.Marshal(v)
			if string(norm) != want {
				t.Errorf("%s %s = %s, want %s", tt.proto, k, norm, want)
			}
		}
		var hs any
		if err := json.Unmarshal(pr.handshake, &hs); err != nil {
			t.Errorf("%s handshake: %v", tt.proto, err)
		}
	}
}

func TestProtocolEach(t *testing.T) {
	collect := func(pr *protocol, p string) string {
		var parts []string
		pr.each([]byte(p), func(e []byte) { parts = append(parts, string(e)) })
		return strings.Join(parts, "|")
	}
	for _, tt := range []struct{ proto, in, want string }{
		{"sc", `[{"rid":1}, {"rid":2}]`, `{"rid":1}|{"rid":2}`},
		{"sc", `{"rid":1}`, `{"rid":1}`},
		{"sc", ``, ``},
		{"centrifugo", "{\"id\":1}\n{}\n\n{\"id\":2}\n", `{"id":1}|{}|{"id":2}`},
		{"centrifugo", `{}`, `{}`},
	} {
		if got := collect(protocols[tt.proto], tt.in); got != tt.want {
			t.Errorf("%s each(%q) = %q, want %q", tt.proto, tt.in, got, tt.want)
		}
	}
	if _, err := protocolNamed("mqtt"); err == nil {
		t.Error("protocolNamed(mqtt) succeeded")
	}
}

func TestReport(t *testing.T) {
	in := strings.Join([]string{
		`{"scenario":"fanout","label":"fanout 1000","server":"go","deliveries_per_s":100,"server_cpu_us_per_delivery":1}`,
		`{"scenario":"fanout","label":"fanout 1000","server":"centrifugo","deliveries_per_s":50,"server_cpu_us_per_delivery":4}`,
		`not json: a progress line`,
		`{"scenario":"fanout","label":"fanout 1000","server":"go","deliveries_per_s":300,"server_cpu_us_per_delivery":3}`,
		`{"scenario":"fanout","label":"fanout 1000","server":"go","deliveries_per_s":200,"server_cpu_us_per_delivery":2}`,
		`{"scenario":"fanout","label":"fanout 1000","server":"centrifugo","deliveries_per_s":70,"server_cpu_us_per_delivery":4}`,
	}, "\n")
	var out, errOut bytes.Buffer
	if code := runReport([]string{"-base", "go"}, strings.NewReader(in), &out, &errOut); code != 0 {
		t.Fatalf("report: %d %s", code, errOut.String())
	}
	for _, want := range []string{
		"| figure | go (3) | centrifugo (2) | go / centrifugo |",
		"| deliveries_per_s | 200 | 60.00 | 3.33× |",
		"| server_cpu_us_per_delivery | 2.00 | 4.00 | 0.50× |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if code := runReport(nil, strings.NewReader("nothing"), &out, &errOut); code == 0 {
		t.Error("report of no results succeeded")
	}
}
