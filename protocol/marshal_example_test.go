package protocol_test

import (
	"errors"
	"fmt"

	"github.com/socketcluster-go/socketcluster/protocol"
)

func ExampleMarshalData() {
	for _, v := range []any{
		protocol.Undefined,
		nil,
		protocol.Data(`{"raw":true}`),
		[]byte("hi"),
		protocol.NewError("NotFound", "no such user").With("id", 7),
		map[string]string{"html": "<b>"},
	} {
		d, err := protocol.MarshalData(v)
		fmt.Printf("%q %v\n", d, err)
	}
	// Output:
	// "" <nil>
	// "null" <nil>
	// "{\"raw\":true}" <nil>
	// "{\"base64\":true,\"data\":\"aGk=\"}" <nil>
	// "{\"message\":\"no such user\",\"name\":\"NotFound\",\"id\":7}" <nil>
	// "{\"html\":\"<b>\"}" <nil>
}

func ExampleUnmarshalError() {
	err := protocol.UnmarshalError([]byte(`{"name":"NotFound","message":"no such user","id":7}`))
	var e *protocol.Error
	if errors.As(err, &e) {
		fmt.Println(e.Name, e.Message, e.Fields[0].Key, e.Fields[0].Value)
	}
	var ve *protocol.ValueError
	if errors.As(protocol.UnmarshalError([]byte(`"just a string"`)), &ve) {
		fmt.Println(string(ve.Value))
	}
	fmt.Println(protocol.UnmarshalError([]byte("null")))
	// Output:
	// NotFound no such user id 7
	// "just a string"
	// <nil>
}
