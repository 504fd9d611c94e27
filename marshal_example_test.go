package socketcluster_test

import (
	"errors"
	"fmt"

	sc "github.com/socketcluster-go/socketcluster"
)

func ExampleMarshalData() {
	for _, v := range []any{
		sc.Undefined,
		nil,
		sc.Data(`{"raw":true}`),
		[]byte("hi"),
		sc.NewError("NotFound", "no such user").With("id", 7),
		map[string]string{"html": "<b>"},
	} {
		d, err := sc.MarshalData(v)
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
	err := sc.UnmarshalError([]byte(`{"name":"NotFound","message":"no such user","id":7}`))
	var e *sc.Error
	if errors.As(err, &e) {
		fmt.Println(e.Name, e.Message, e.Fields[0].Key, e.Fields[0].Value)
	}
	var ve *sc.ValueError
	if errors.As(sc.UnmarshalError([]byte(`"just a string"`)), &ve) {
		fmt.Println(string(ve.Value))
	}
	fmt.Println(sc.UnmarshalError([]byte("null")))
	// Output:
	// NotFound no such user id 7
	// "just a string"
	// <nil>
}
