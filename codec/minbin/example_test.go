package minbin_test

import (
	"fmt"

	"github.com/socketcluster-go/socketcluster/codec/minbin"
)

func Example() {
	c := minbin.New()

	// A publish as the server sends it to subscribers.
	frame, binary, err := c.Encode(map[string]any{
		"event": "#publish",
		"data":  map[string]any{"channel": "news", "data": "hi"},
	})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%x binary=%v\n", frame, binary)

	// An invoke as the official client sends it: {"e":["getUser",{"id":7},4]}.
	v, err := c.Decode([]byte("\x81\xa1e\x93\xa7getUser\x81\xa2id\x07\x04"), true)
	if err != nil {
		panic(err)
	}
	p := v.(map[string]any)
	fmt.Println(p["event"], p["data"], p["cid"])
	// Output:
	// 81a17092a46e657773a26869 binary=true
	// getUser map[id:7] 4
}
