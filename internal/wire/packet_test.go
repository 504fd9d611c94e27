package wire_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/socketcluster-go/socketcluster/internal/wire"
)

// pk is the expected view of one parsed element; nil raw fields mean the
// key was absent.
type pk struct {
	ok     bool
	event  string
	hasEv  bool
	data   string // "-" for absent
	cid    float64
	hasCid bool
	rid    float64
	hasRid bool
	err    string // "-" for absent
}

func view(p wire.Packet, ok bool) pk {
	v := pk{ok: ok, event: p.Event, hasEv: p.HasEvent, cid: p.Cid, hasCid: p.HasCid, rid: p.Rid, hasRid: p.HasRid, data: "-", err: "-"}
	if p.Data != nil {
		v.data = string(p.Data)
	}
	if p.Error != nil {
		v.err = string(p.Error)
	}
	return v
}

func ev(event, data string) pk {
	return pk{ok: true, event: event, hasEv: true, data: data, err: "-"}
}

func inv(event, data string, cid float64) pk {
	p := ev(event, data)
	p.cid, p.hasCid = cid, true
	return p
}

func res(rid float64, data, err string) pk {
	return pk{ok: true, rid: rid, hasRid: true, data: data, err: err}
}

var notPacket = pk{data: "-", err: "-"}

func parse(frame string) ([]pk, wire.Kind) {
	ps, oks, kind := wire.Parse([]byte(frame), nil, nil)
	if len(ps) != len(oks) {
		panic("Parse returned packets and oks of different lengths")
	}
	var out []pk
	for i := range ps {
		out = append(out, view(ps[i], oks[i]))
	}
	return out, kind
}

func kindName(k wire.Kind) string {
	return map[wire.Kind]string{wire.Raw: "Raw", wire.Single: "Single", wire.Batch: "Batch"}[k]
}

func TestParseGolden(t *testing.T) {
	for _, tc := range []struct {
		frame string
		kind  wire.Kind
		want  []pk
	}{
		// docs/protocol.md §14 transcripts, client to server.
		{`{"event":"#handshake","data":{"authToken":null},"cid":1}`, wire.Single, []pk{inv("#handshake", `{"authToken":null}`, 1)}},
		{`{"event":"#handshake","data":{"authToken":"<jwt>"},"cid":9}`, wire.Single, []pk{inv("#handshake", `{"authToken":"<jwt>"}`, 9)}},
		{`{"event":"#subscribe","data":{"channel":"high","data":{"d":1}},"cid":2}`, wire.Single, []pk{inv("#subscribe", `{"channel":"high","data":{"d":1}}`, 2)}},
		{`{"event":"#subscribe","data":{"channel":"authonly","waitForAuth":true},"cid":7}`, wire.Single, []pk{inv("#subscribe", `{"channel":"authonly","waitForAuth":true}`, 7)}},
		{`{"event":"early","data":"queued before connect"}`, wire.Single, []pk{ev("early", `"queued before connect"`)}},
		{`{"event":"echo","data":{"a":1},"cid":4}`, wire.Single, []pk{inv("echo", `{"a":1}`, 4)}},
		{`{"event":"tx","data":[1,2]}`, wire.Single, []pk{ev("tx", `[1,2]`)}},
		{`{"event":"#publish","data":{"channel":"high","data":"tp"}}`, wire.Single, []pk{ev("#publish", `{"channel":"high","data":"tp"}`)}},
		{`{"event":"#unsubscribe","data":"low"}`, wire.Single, []pk{ev("#unsubscribe", `"low"`)}},
		{`{"event":"#removeAuthToken"}`, wire.Single, []pk{ev("#removeAuthToken", "-")}},
		{`{"event":"#authenticate","data":"<jwt>","cid":6}`, wire.Single, []pk{inv("#authenticate", `"<jwt>"`, 6)}},
		{`{"rid":2,"data":10}`, wire.Single, []pk{res(2, "10", "-")}},
		{`{"rid":3,"error":{"message":"client says no","name":"ClientNo"}}`, wire.Single, []pk{res(3, "-", `{"message":"client says no","name":"ClientNo"}`)}},
		{`{"rid":1}`, wire.Single, []pk{res(1, "-", "-")}},
		// Server to client shapes parse too.
		{`{"rid":1,"data":{"id":"doThEWNPFAHSJ0SUAAAA","pingTimeout":3000,"isAuthenticated":false}}`, wire.Single, []pk{res(1, `{"id":"doThEWNPFAHSJ0SUAAAA","pingTimeout":3000,"isAuthenticated":false}`, "-")}},
		{`{"event":"clientProc","cid":2,"data":5}`, wire.Single, []pk{inv("clientProc", "5", 2)}},

		// Absent versus null.
		{`{"event":"noteUndef"}`, wire.Single, []pk{ev("noteUndef", "-")}},
		{`{"event":"n","data":null}`, wire.Single, []pk{ev("n", "null")}},
		{`{"rid":5,"data":null}`, wire.Single, []pk{res(5, "null", "-")}},
		{`{"rid":5,"error":null}`, wire.Single, []pk{res(5, "-", "null")}},
		{`{"rid":4,"error":"just a string"}`, wire.Single, []pk{res(4, "-", `"just a string"`)}},

		// Numbers as ids.
		{`{"event":"e","cid":15.5}`, wire.Single, []pk{inv("e", "-", 15.5)}},
		{`{"event":"e","cid":-1}`, wire.Single, []pk{inv("e", "-", -1)}},
		{`{"event":"e","cid":1e21}`, wire.Single, []pk{inv("e", "-", 1e21)}},
		{`{"event":"e","cid":1E+2}`, wire.Single, []pk{inv("e", "-", 100)}},
		{`{"event":"e","cid":-0}`, wire.Single, []pk{inv("e", "-", math.Copysign(0, -1))}},
		{`{"event":"e","cid":1.0}`, wire.Single, []pk{inv("e", "-", 1)}},
		{`{"rid":15.5}`, wire.Single, []pk{res(15.5, "-", "-")}},
		{`{"rid":-1,"data":1}`, wire.Single, []pk{res(-1, "1", "-")}},
		// Not numbers: a string cid is a transmit, a string rid no packet.
		{`{"event":"e","cid":"14"}`, wire.Single, []pk{ev("e", "-")}},
		{`{"event":"e","cid":null}`, wire.Single, []pk{ev("e", "-")}},
		{`{"event":"e","cid":true}`, wire.Single, []pk{ev("e", "-")}},
		{`{"event":"e","cid":[1]}`, wire.Single, []pk{ev("e", "-")}},
		{`{"rid":"1"}`, wire.Single, []pk{notPacket}},
		// Out of the double range: Infinity, as JSON.parse reads it (a
		// response to no invoke; an invoke is answered with "rid":null).
		{`{"rid":1e400}`, wire.Single, []pk{res(math.Inf(1), "-", "-")}},
		{`{"event":"e","cid":-1e400}`, wire.Single, []pk{inv("e", "-", math.Inf(-1))}},

		// An event must be a string; event wins over rid.
		{`{"event":5,"data":1}`, wire.Single, []pk{{data: "1", err: "-"}}},
		{`{"event":null}`, wire.Single, []pk{notPacket}},
		{`{"rid":1,"event":5}`, wire.Single, []pk{res(1, "-", "-")}},
		{`{"event":"a","rid":2}`, wire.Single, []pk{{ok: true, event: "a", hasEv: true, rid: 2, hasRid: true, data: "-", err: "-"}}},
		{`{}`, wire.Single, []pk{notPacket}},
		{`{"data":1}`, wire.Single, []pk{{data: "1", err: "-"}}},
		{`{"event":""}`, wire.Single, []pk{ev("", "-")}},

		// Duplicate keys: the last one wins, as in JSON.parse.
		{`{"event":"a","event":"b"}`, wire.Single, []pk{ev("b", "-")}},
		{`{"event":"a","event":5}`, wire.Single, []pk{notPacket}},
		{`{"event":"a","cid":1,"cid":"x"}`, wire.Single, []pk{ev("a", "-")}},
		{`{"event":"a","data":1,"data":2}`, wire.Single, []pk{ev("a", "2")}},

		// Escaped keys and event names; unicode.
		{`{"\u0065vent":"a","\u0064ata":1,"\u0063id":3}`, wire.Single, []pk{inv("a", "1", 3)}},
		{`{"ev\"ent":"a"}`, wire.Single, []pk{notPacket}},
		{`{"event":"a\u0062c\n\"q\"\\"}`, wire.Single, []pk{ev("abc\n\"q\"\\", "-")}},
		{`{"event":"\ud83d\ude00"}`, wire.Single, []pk{ev("😀", "-")}},
		{`{"event":"héllo wörld ✓"}`, wire.Single, []pk{ev("héllo wörld ✓", "-")}},
		{`{"event":"a\u2028b"}`, wire.Single, []pk{ev("a\u2028b", "-")}},
		{"{\"event\":\"\xff\"}", wire.Single, []pk{ev("\ufffd", "-")}},

		// Whitespace: leading space, tab, CR, LF, and inside.
		{" \t\r\n{\"event\":\"a\"}", wire.Single, []pk{ev("a", "-")}},
		{"{ \"event\" : \"a\" , \"data\" : [1, 2] , \"cid\" : 3 }\n", wire.Single, []pk{inv("a", "[1, 2]", 3)}},
		{" [ {\"rid\":1} ] ", wire.Batch, []pk{res(1, "-", "-")}},

		// Raw: not starting with { or [, or not valid JSON.
		{`{bad json`, wire.Raw, nil},
		{`[1,2`, wire.Raw, nil},
		{`123`, wire.Raw, nil},
		{`""`, wire.Raw, nil},
		{`"{}"`, wire.Raw, nil},
		{`null`, wire.Raw, nil},
		{`raw-from-client`, wire.Raw, nil},
		{``, wire.Raw, nil},
		{`   `, wire.Raw, nil},
		{`#1`, wire.Raw, nil},
		{`#2`, wire.Raw, nil},
		{`{"event":"a"} {"event":"b"}`, wire.Raw, nil},
		{`{"event":"a"},`, wire.Raw, nil},
		{`{"event":"a",}`, wire.Raw, nil},
		{`{'event':'a'}`, wire.Raw, nil},
		{"{\"event\":\"a\tb\"}", wire.Raw, nil}, // raw control character in a string
		{`{"event":"a"}]`, wire.Raw, nil},
		{"\v{}", wire.Raw, nil}, // vertical tab is not JSON whitespace

		// Batches.
		{`[]`, wire.Batch, nil},
		{`[{"event":"#subscribe","data":{"channel":"ch0"},"cid":2},{"event":"#subscribe","data":{"channel":"ch1"},"cid":3}]`, wire.Batch, []pk{
			inv("#subscribe", `{"channel":"ch0"}`, 2), inv("#subscribe", `{"channel":"ch1"}`, 3)}},
		{`[{"event":"a","data":1},{"event":"b","data":2},{"rid":2,"data":"x"},{"rid":3,"data":"x"}]`, wire.Batch, []pk{
			ev("a", "1"), ev("b", "2"), res(2, `"x"`, "-"), res(3, `"x"`, "-")}},
		{`[1,"a",null,true,[],{},{"event":"e"},[{"event":"nested"}]]`, wire.Batch, []pk{
			notPacket, notPacket, notPacket, notPacket, notPacket, notPacket, ev("e", "-"), notPacket}},
		{`[ {"event":"a"} , 2 ]`, wire.Batch, []pk{ev("a", "-"), notPacket}},
	} {
		got, kind := parse(tc.frame)
		if kind != tc.kind || fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("Parse(%q)\n got %s %+v\nwant %s %+v", tc.frame, kindName(kind), got, kindName(tc.kind), tc.want)
		}
	}
}

func TestParseReusesBuffers(t *testing.T) {
	ps := make([]wire.Packet, 0, 4)
	oks := make([]bool, 0, 4)
	ps, oks, _ = wire.Parse([]byte(`[{"event":"a"},{"event":"b"}]`), ps[:0], oks[:0])
	if len(ps) != 2 {
		t.Fatalf("got %d packets", len(ps))
	}
	ps, oks, kind := wire.Parse([]byte(`{"rid":1}`), ps[:0], oks[:0])
	if kind != wire.Single || len(ps) != 1 || len(oks) != 1 || !oks[0] || ps[0].HasEvent {
		t.Fatalf("reused buffers: %+v %v", ps, oks)
	}
	// Appends to what the caller passes.
	ps, _, _ = wire.Parse([]byte(`{"event":"c"}`), ps, oks)
	if len(ps) != 2 || ps[1].Event != "c" {
		t.Fatalf("append: %+v", ps)
	}
}

// Raw fields alias the frame: no copy is made.
func TestParseAliasesFrame(t *testing.T) {
	frame := []byte(`{"event":"e","data":{"k":"v"}}`)
	ps, _, _ := wire.Parse(frame, nil, nil)
	frame[bytes.Index(frame, []byte(`"v"`))+1] = 'w'
	if string(ps[0].Data) != `{"k":"w"}` {
		t.Fatalf("Data does not alias the frame: %s", ps[0].Data)
	}
}

func TestPacketKindHelpers(t *testing.T) {
	for _, tc := range []struct {
		frame       string
		event, resp bool
	}{
		{`{"event":"a"}`, true, false},
		{`{"event":"a","cid":1}`, true, false},
		{`{"rid":1}`, false, true},
		{`{"event":"a","rid":1}`, true, false},
		{`{"rid":"1"}`, false, false},
	} {
		ps, _, _ := wire.Parse([]byte(tc.frame), nil, nil)
		if ps[0].IsEvent() != tc.event || ps[0].IsResponse() != tc.resp {
			t.Errorf("%s: IsEvent %v IsResponse %v", tc.frame, ps[0].IsEvent(), ps[0].IsResponse())
		}
	}
}

func TestObject(t *testing.T) {
	var keys, vals []string
	ok := wire.Object([]byte(` {"channel":"a\u0062","data":{"x":[1,{"y":2}]},"waitForAuth":true, "n" : -1.5e3 ,"\u0063":null} `), func(k string, v []byte) {
		keys = append(keys, k)
		vals = append(vals, string(v))
	})
	if !ok {
		t.Fatal("Object: not an object")
	}
	if want := "[channel data waitForAuth n c]"; fmt.Sprint(keys) != want {
		t.Fatalf("keys %v, want %s", keys, want)
	}
	if want := `["a\u0062" {"x":[1,{"y":2}]} true -1.5e3 null]`; fmt.Sprint(vals) != want {
		t.Fatalf("values %v, want %s", vals, want)
	}
	for _, raw := range []string{``, `null`, `"a"`, `[{"a":1}]`, `5`, `{`} {
		called := false
		if wire.Object([]byte(raw), func(string, []byte) { called = true }) && raw != `{` {
			t.Errorf("Object(%q) reported an object", raw)
		}
		if called && raw != `{` {
			t.Errorf("Object(%q) called back", raw)
		}
	}
	n := 0
	if !wire.Object([]byte(`{}`), func(string, []byte) { n++ }) || n != 0 {
		t.Fatal("Object({}) must be an empty object")
	}
	var dup []string
	wire.Object([]byte(`{"a":1,"a":2}`), func(k string, v []byte) { dup = append(dup, k+"="+string(v)) })
	if fmt.Sprint(dup) != "[a=1 a=2]" {
		t.Fatalf("duplicates: %v", dup)
	}
}

func TestUnquoteAndNumber(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want string
		ok   bool
	}{
		{`"abc"`, "abc", true},
		{` "a\"b" `, `a"b`, true},
		{`"\u00e9\ud83d\ude00"`, "é😀", true},
		{`""`, "", true},
		{`"`, "", false},
		{`5`, "", false},
		{`null`, "", false},
		{``, "", false},
		{`{"a":"b"}`, "", false},
	} {
		got, ok := wire.Unquote([]byte(tc.raw))
		if got != tc.want || ok != tc.ok {
			t.Errorf("Unquote(%q) = %q, %v; want %q, %v", tc.raw, got, ok, tc.want, tc.ok)
		}
	}
	for _, tc := range []struct {
		raw  string
		want float64
		ok   bool
	}{
		{`1`, 1, true},
		{` -2.5 `, -2.5, true},
		{`1e21`, 1e21, true},
		{`0`, 0, true},
		{`1e400`, 0, false},
		{`"1"`, 0, false},
		{`true`, 0, false},
		{`null`, 0, false},
		{``, 0, false},
		{`-`, 0, false},
	} {
		got, ok := wire.Number([]byte(tc.raw))
		if got != tc.want || ok != tc.ok {
			t.Errorf("Number(%q) = %v, %v; want %v, %v", tc.raw, got, ok, tc.want, tc.ok)
		}
	}
}

// TestParseDeepNesting: a frame nested as deep as json.Valid allows (10 000
// arrays and objects, the packet's own object and the batch's array
// included) is parsed; one level more is Raw, as json.Valid refuses it.
func TestParseDeepNesting(t *testing.T) {
	for _, depth := range []int{100, 9000, 9998, 9999, 10000, 20000} {
		data := strings.Repeat("[", depth) + strings.Repeat("]", depth)
		for _, frame := range []string{
			`{"event":"deep","data":` + data + `}`,
			`[{"event":"deep","data":` + data + `}]`,
		} {
			want := wire.Raw
			if json.Valid([]byte(frame)) {
				want = wire.Single
				if frame[0] == '[' {
					want = wire.Batch
				}
			}
			ps, oks, kind := wire.Parse([]byte(frame), nil, nil)
			if kind != want {
				t.Errorf("depth %d, %.2s…: kind %d, want %d", depth, frame, kind, want)
				continue
			}
			if kind != wire.Raw && (!oks[0] || len(ps[0].Data) != 2*depth) {
				t.Errorf("depth %d, %.2s…: data of %d bytes", depth, frame, len(ps[0].Data))
			}
			if kind == wire.Raw && len(ps) != 0 {
				t.Errorf("depth %d, %.2s…: Raw with %d packets", depth, frame, len(ps))
			}
		}
	}
}

// ---- Fuzzing ----

// seeds are the frames of the golden tests plus edge cases; they run as
// the seed corpus of FuzzParse in every plain go test.
var seeds = []string{
	`{"event":"#handshake","data":{"authToken":null},"cid":1}`,
	`{"event":"#subscribe","data":{"channel":"high","data":{"d":1}},"cid":2}`,
	`{"event":"#publish","data":{"channel":"high","data":"ip"},"cid":5}`,
	`{"event":"#unsubscribe","data":"low"}`,
	`{"rid":3,"error":{"message":"client says no","name":"ClientNo"}}`,
	`{"rid":5,"data":null}`,
	`{"rid":5,"error":null}`,
	`{"event":"e","cid":15.5}`,
	`{"event":"e","cid":-1}`,
	`{"event":"e","cid":1e21}`,
	`{"event":"e","cid":-0}`,
	`{"event":"e","cid":5e-324}`,
	`{"event":"e","cid":1.7976931348623157e308}`,
	`{"rid":1e400}`,
	`{"event":"e","data":{"n":[1,-2E+999,"1e999"]},"cid":3}`,
	`[{"rid":1,"error":1e400},{"event":"e","data":1` + "0000000000" + `e308}]`,
	`{"event":"e","cid":"14"}`,
	`{"event":5}`,
	`{"event":"a","event":"b","data":1,"data":2}`,
	`{"\u0065vent":"a"}`,
	`{"event":"a\u0062c\n\"q\"\\"}`,
	`{"event":"\ud83d\ude00","data":"\ud800"}`,
	"{\"event\":\"\xff\xfe\"}",
	" \t\r\n{\"event\":\"a\"}",
	`[{"event":"a","data":1},{"event":"b","data":2},{"rid":2,"data":"x"}]`,
	`[1,"a",null,true,[],{},{"event":"e"},[{"event":"nested"}]]`,
	`[]`,
	`{}`,
	`{bad json`,
	`[1,2`,
	`123`,
	`""`,
	`null`,
	``,
	`#2`,
	`{"event":"a"} {"event":"b"}`,
	`{"a":{"b":{"c":[{"d":"}]{["}]}}}`,
	`{"event":"x","data":"\\\"}"}`,
}

func FuzzParse(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		orig := append([]byte(nil), frame...)
		// After a packet already in the caller's slices: a Raw frame
		// leaves them as they were.
		prev := []wire.Packet{{Event: "before", HasEvent: true}}
		ps, oks, kind := wire.Parse(frame, prev, []bool{true})
		if len(ps) == 0 || ps[0].Event != "before" || len(ps) != len(oks) || !oks[0] {
			t.Fatalf("%q: the packet already there was lost or changed", frame)
		}
		ps, oks = ps[1:], oks[1:]
		if !bytes.Equal(frame, orig) {
			t.Fatalf("Parse modified its input")
		}
		if len(ps) != len(oks) {
			t.Fatalf("%d packets, %d oks", len(ps), len(oks))
		}
		checkAgainstEncodingJSON(t, frame, ps, oks, kind)
		for i := range ps {
			if oks[i] {
				checkRoundTrip(t, &ps[i])
			}
		}
	})
}

// checkAgainstEncodingJSON compares Parse with a decode by encoding/json
// (whose duplicate-key rule, last wins, is JSON.parse's).
func checkAgainstEncodingJSON(t *testing.T, frame []byte, ps []wire.Packet, oks []bool, kind wire.Kind) {
	trimmed := bytes.TrimLeft(frame, " \t\r\n")
	isJSON := len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') && json.Valid(frame)
	switch {
	case !isJSON:
		if kind != wire.Raw || len(ps) != 0 {
			t.Fatalf("%q: want Raw with no packets, got kind %d with %d", frame, kind, len(ps))
		}
		return
	case trimmed[0] == '{':
		if kind != wire.Single || len(ps) != 1 {
			t.Fatalf("%q: want Single, got kind %d with %d", frame, kind, len(ps))
		}
		checkElement(t, frame, json.RawMessage(frame), ps[0], oks[0])
	default:
		var elems []json.RawMessage
		if err := json.Unmarshal(frame, &elems); err != nil {
			// Valid JSON that encoding/json refuses: nesting over its limit.
			return
		}
		if kind != wire.Batch || len(ps) != len(elems) {
			t.Fatalf("%q: want Batch of %d, got kind %d with %d", frame, len(elems), kind, len(ps))
		}
		for i, e := range elems {
			checkElement(t, frame, e, ps[i], oks[i])
		}
	}
}

func checkElement(t *testing.T, frame []byte, raw json.RawMessage, p wire.Packet, ok bool) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		var v any
		if json.Unmarshal(raw, &v) == nil {
			// Not an object: no packet.
			if ok || p.HasEvent || p.HasRid || p.HasCid || p.Data != nil || p.Error != nil {
				t.Fatalf("%q: non-object element %s parsed as %+v", frame, raw, p)
			}
		}
		return // nesting limit of encoding/json
	}
	var wantEvent string
	wantHasEvent := false
	if r, has := m["event"]; has && len(r) > 0 && r[0] == '"' {
		wantHasEvent = json.Unmarshal(r, &wantEvent) == nil
	}
	if p.HasEvent != wantHasEvent || p.Event != wantEvent {
		t.Fatalf("%q: event %v %q, want %v %q", frame, p.HasEvent, p.Event, wantHasEvent, wantEvent)
	}
	checkNumber(t, frame, "cid", m, p.Cid, p.HasCid)
	checkNumber(t, frame, "rid", m, p.Rid, p.HasRid)
	if d, has := m["data"]; has != (p.Data != nil) || !sameOrHugeNulled(d, p.Data) {
		t.Fatalf("%q: data %q, want %q (present %v)", frame, p.Data, d, has)
	}
	if e, has := m["error"]; has != (p.Error != nil) || !sameOrHugeNulled(e, p.Error) {
		t.Fatalf("%q: error %q, want %q (present %v)", frame, p.Error, e, has)
	}
	if ok != (p.HasEvent || p.HasRid) {
		t.Fatalf("%q: ok %v for %+v", frame, ok, p)
	}
}

// sameOrHugeNulled reports whether got is JSON that encoding/json takes
// (no number too large for a float64 left in it), and is want, or want
// holds such a number (which encoding/json refuses), written as null in
// got.
func sameOrHugeNulled(want, got []byte) bool {
	if len(want) == 0 && len(got) == 0 {
		return true
	}
	var v any
	if json.Unmarshal(got, &v) != nil {
		return false
	}
	if bytes.Equal(want, got) {
		return true
	}
	err := json.Unmarshal(want, &v)
	var ute *json.UnmarshalTypeError
	return errors.As(err, &ute) && strings.HasPrefix(ute.Value, "number") && json.Valid(got) && json.Unmarshal(got, &v) == nil
}

func checkNumber(t *testing.T, frame []byte, key string, m map[string]json.RawMessage, got float64, has bool) {
	var want float64
	wantHas := false
	if r, ok := m[key]; ok && len(r) > 0 && (r[0] == '-' || (r[0] >= '0' && r[0] <= '9')) {
		// Too large for a float64 is ±Inf, as JSON.parse reads it.
		f, err := strconv.ParseFloat(string(r), 64)
		if err == nil || math.IsInf(f, 0) {
			want, wantHas = f, true
		}
	}
	if has != wantHas || got != want {
		t.Fatalf("%q: %s %v %v, want %v %v", frame, key, got, has, want, wantHas)
	}
}

// checkRoundTrip re-encodes a packet with the appenders and parses it
// again: event, cid, rid and data (and error) must survive.
func checkRoundTrip(t *testing.T, p *wire.Packet) {
	if math.IsInf(p.Cid, 0) || math.IsInf(p.Rid, 0) {
		return // written as null, as JSON.stringify writes Infinity
	}
	var out []byte
	if p.HasEvent {
		out = wire.AppendEvent(nil, p.Event, p.Data, p.Cid, p.HasCid)
	} else {
		out = wire.AppendResponse(nil, p.Rid, p.Data, p.Error)
	}
	if !json.Valid(out) {
		t.Fatalf("re-encoded packet is not JSON: %s", out)
	}
	qs, oks, kind := wire.Parse(out, nil, nil)
	if kind != wire.Single || len(qs) != 1 || !oks[0] {
		t.Fatalf("re-encoded %s parsed as kind %d %v", out, kind, oks)
	}
	q := qs[0]
	if q.HasEvent != p.HasEvent || q.Event != p.Event || q.HasCid != p.HasCid || q.Cid != p.Cid {
		t.Fatalf("round trip of event/cid: %+v → %s → %+v", p, out, q)
	}
	if !p.HasEvent {
		if q.Rid != p.Rid || !q.HasRid || !bytes.Equal(q.Error, p.Error) {
			t.Fatalf("round trip of rid/error: %+v → %s → %+v", p, out, q)
		}
		if p.Error != nil {
			if q.Data != nil {
				t.Fatalf("an error response carries no data: %s", out)
			}
			return
		}
	}
	if !bytes.Equal(q.Data, p.Data) || (q.Data == nil) != (p.Data == nil) {
		t.Fatalf("round trip of data: %q → %s → %q", p.Data, out, q.Data)
	}
}

// TestHugeNumbers: numbers a float64 cannot hold are read as JavaScript
// reads them: ±Infinity for cid and rid (so an invoke is still answered,
// with "rid":null), null inside data and error, so that they are never
// passed on as JSON that decoders reject. Other numbers are left as sent.
func TestHugeNumbers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		frame, data string
		cid         float64
		hasCid      bool
	}{
		{`{"event":"e","data":1,"cid":1e400}`, `1`, math.Inf(1), true},
		{`{"event":"e","data":1,"cid":-1e400}`, `1`, math.Inf(-1), true},
		{`{"event":"e","data":1e999,"cid":5}`, `null`, 5, true},
		{`{"event":"e","data":[1e999,-1E+999, 2,"1e999", 1e308],"cid":6}`, `[null,null, 2,"1e999", 1e308]`, 6, true},
		{`{"event":"e","data":{"a":1e400,"b\"":"x\\","c":-0.5e-400}}`, `{"a":null,"b\"":"x\\","c":-0.5e-400}`, 0, false},
		{`{"event":"e","data":1` + strings.Repeat("0", 308) + `}`, `1` + strings.Repeat("0", 308), 0, false},
		{`{"event":"e","data":1` + strings.Repeat("0", 309) + `}`, `null`, 0, false},
		{`{"event":"e","data":12345678901234567890123}`, `12345678901234567890123`, 0, false},
	} {
		ps, oks, kind := wire.Parse([]byte(tc.frame), nil, nil)
		if kind != wire.Single || !oks[0] {
			t.Fatalf("%s: not a packet", tc.frame)
		}
		p := ps[0]
		if string(p.Data) != tc.data || p.HasCid != tc.hasCid || (tc.hasCid && p.Cid != tc.cid) {
			t.Errorf("%.60s: data %s cid %v (%v), want %s %v (%v)", tc.frame, p.Data, p.Cid, p.HasCid, tc.data, tc.cid, tc.hasCid)
		}
		if !json.Valid(p.Data) {
			t.Errorf("%.60s: data %s not JSON", tc.frame, p.Data)
		}
		var v any
		if err := json.Unmarshal(p.Data, &v); err != nil {
			t.Errorf("%.60s: data %s rejected by encoding/json: %v", tc.frame, p.Data, err)
		}
	}
	ps, _, _ := wire.Parse([]byte(`{"rid":3,"error":{"n":1e999}}`), nil, nil)
	if string(ps[0].Error) != `{"n":null}` {
		t.Errorf("error %s", ps[0].Error)
	}
	if got := wire.AppendResponse(nil, math.Inf(1), []byte("1"), nil); string(got) != `{"rid":null,"data":1}` {
		t.Errorf("response to cid Infinity: %s", got)
	}
}
