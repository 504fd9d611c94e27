package socketcluster

import (
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/socketcluster-go/socketcluster/internal/wire"
	"github.com/socketcluster-go/socketcluster/protocol"
)

// Codec replaces the default JSON codec (sc-formatter), as the reference's
// codecEngine option does. The client must use the matching codec.
//
// Values are generic trees: map[string]any, []any, string, float64, bool,
// nil, and []byte for binary data. A packet is a map such as
// {"event":"x","data":…,"cid":3} or {"rid":3,"data":…}; a batch is a []any
// of packets. Pings and pongs never pass through a codec.
//
// codec/minbin provides a MessagePack codec compatible with the npm package
// sc-codec-min-bin.
type Codec interface {
	// Encode turns one packet, or a batch, into one WebSocket message;
	// binary tells whether it goes out as a binary frame.
	Encode(v any) (frame []byte, binary bool, err error)
	// Decode turns one inbound message into a packet, a batch, or any
	// other value (which the server treats as raw).
	Decode(frame []byte, binary bool) (any, error)
}

// treeToJSON turns a codec tree into raw JSON, with []byte as the
// {"base64":true,"data":…} object.
func treeToJSON(v any) ([]byte, error) {
	return json.Marshal(jsonable(v))
}

func jsonable(v any) any {
	switch x := v.(type) {
	case []byte:
		return protocol.Binary(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonable(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = jsonable(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonable(e)
		}
		return out
	}
	return v
}

// jsonToTree turns raw JSON into a codec tree, with {"base64":true,
// "data":"…"} objects back as []byte.
func jsonToTree(raw []byte) (any, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	return binaryBack(v), nil
}

func binaryBack(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 2 && x["base64"] == true {
			if s, ok := x["data"].(string); ok {
				if b, err := base64.StdEncoding.DecodeString(s); err == nil {
					return b
				}
			}
		}
		for k, e := range x {
			x[k] = binaryBack(e)
		}
	case []any:
		for i, e := range x {
			x[i] = binaryBack(e)
		}
	}
	return v
}

func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case protocol.CloseCode: // e.g. a statusCode field set from a constant
		return float64(n), true
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int8:
		return float64(n), true
	case int16:
		return float64(n), true
	case int32:
		return float64(n), true
	case int64:
		return float64(n), true
	case uint:
		return float64(n), true
	case uint8:
		return float64(n), true
	case uint16:
		return float64(n), true
	case uint32:
		return float64(n), true
	case uint64:
		return float64(n), true
	}
	return 0, false
}

// treePacket converts one decoded tree element into a packet.
func treePacket(v any) (wire.Packet, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return wire.Packet{}, false
	}
	var p wire.Packet
	if ev, ok := m["event"].(string); ok {
		p.Event, p.HasEvent = ev, true
	}
	if d, ok := m["data"]; ok {
		p.Data, _ = treeToJSON(d)
	}
	if e, ok := m["error"]; ok {
		p.Error, _ = treeToJSON(e)
	}
	if c, ok := toFloat(m["cid"]); ok {
		p.Cid, p.HasCid = c, true
	}
	if r, ok := toFloat(m["rid"]); ok {
		p.Rid, p.HasRid = r, true
	}
	return p, p.HasEvent || p.HasRid
}

// decodeCodec decodes a frame with a custom codec.
func decodeCodec(c Codec, frame []byte, binary bool, packets []wire.Packet, ok []bool) ([]wire.Packet, []bool, wire.Kind, error) {
	v, err := c.Decode(frame, binary)
	if err != nil {
		return packets, ok, wire.Raw, err
	}
	switch x := v.(type) {
	case map[string]any:
		p, good := treePacket(x)
		return append(packets, p), append(ok, good), wire.Single, nil
	case []any:
		for _, e := range x {
			p, good := treePacket(e)
			packets = append(packets, p)
			ok = append(ok, good)
		}
		return packets, ok, wire.Batch, nil
	}
	return packets, ok, wire.Raw, nil
}
