package protocol_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/socketcluster-go/socketcluster/protocol"
)

func TestCloseCode(t *testing.T) {
	for _, tt := range []struct {
		code            protocol.CloseCode
		str, text       string
		valid, stop, at bool
	}{
		{protocol.CloseNormal, "CloseNormal (1000)", "Socket closed normally", true, true, false},
		{protocol.ClosePongTimeout, "ClosePongTimeout (4001)", "Client pong timed out", true, false, true},
		{protocol.CloseNoStatus, "CloseNoStatus (1005)", "Socket closed without status code", false, false, true},
		{protocol.CloseSlowConsumer, "CloseSlowConsumer (4100)", "", true, false, false},
		{4500, "4500", "", true, true, false},
		{1004, "1004", "", false, false, false},
		{5000, "5000", "", false, false, false},
	} {
		if got := tt.code.String(); got != tt.str {
			t.Errorf("%d.String() = %q, want %q", int(tt.code), got, tt.str)
		}
		if got := tt.code.Text(); got != tt.text {
			t.Errorf("%d.Text() = %q, want %q", int(tt.code), got, tt.text)
		}
		if tt.code.Valid() != tt.valid || tt.code.StopsReconnect() != tt.stop || tt.code.ReconnectsAtOnce() != tt.at {
			t.Errorf("%d: Valid %v StopsReconnect %v ReconnectsAtOnce %v", int(tt.code), tt.code.Valid(), tt.code.StopsReconnect(), tt.code.ReconnectsAtOnce())
		}
	}
}

func TestNamedErrors(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{protocol.TimeoutError("#publish"), `{"message":"Event response for #publish event timed out","name":"TimeoutError"}`},
		{protocol.BadConnectionError("Event x was aborted due to a bad connection", "disconnect", protocol.CloseGoingAway, ""),
			`{"message":"Event x was aborted due to a bad connection","name":"BadConnectionError","type":"disconnect","code":1001}`},
		{protocol.SocketProtocolError(protocol.ClosePongTimeout, "late"), `{"message":"Client pong timed out","name":"SocketProtocolError","code":4001}`},
		{protocol.SocketProtocolError(4321, "bye"), `{"message":"Socket connection closed with status code 4321 and reason: bye","name":"SocketProtocolError","code":4321}`},
		{protocol.InvalidActionError("no"), `{"message":"no","name":"InvalidActionError"}`},
		{protocol.StringError("plain"), `"plain"`},
		{errors.New("go error"), `{"message":"go error"}`},
		{&protocol.ValueError{Value: protocol.Data("42")}, `42`},
	} {
		got, err := protocol.AppendError(nil, tt.err)
		if err != nil || string(got) != tt.want {
			t.Errorf("AppendError(%v) = %s, %v; want %s", tt.err, got, err, tt.want)
		}
	}
	// The wire form comes back as the same error.
	raw, _ := protocol.AppendError(nil, protocol.SocketProtocolError(4001, ""))
	back := protocol.UnmarshalError(raw)
	if !errors.Is(back, &protocol.Error{Name: "SocketProtocolError"}) {
		t.Fatalf("UnmarshalError(%s) = %#v", raw, back)
	}
	if code, _ := back.(*protocol.Error).Field("code"); code != float64(4001) {
		t.Fatalf("code field %v", code)
	}
}

func ExampleCloseCode() {
	code := protocol.ClosePongTimeout
	fmt.Println(code, "-", code.Text())
	fmt.Println("reconnects at once:", code.ReconnectsAtOnce())
	// Output:
	// ClosePongTimeout (4001) - Client pong timed out
	// reconnects at once: true
}
