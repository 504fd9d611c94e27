package auth_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/socketcluster-go/socketcluster/auth"
)

func TestTokenErrorWire(t *testing.T) {
	t.Parallel()
	expiry := time.Date(2026, 11, 22, 2, 45, 16, 0, time.UTC)
	date := time.Date(2026, 11, 22, 2, 47, 6, 0, time.UTC)
	// The authError values observed on the reference's wire (PROTOCOL 3.3.1).
	tests := []struct {
		err    *auth.TokenError
		json   string
		fields map[string]any
	}{
		{auth.NewInvalidError("jwt malformed"),
			`{"message":"jwt malformed","name":"AuthTokenInvalidError","isBadToken":true}`,
			map[string]any{"message": "jwt malformed", "name": "AuthTokenInvalidError", "isBadToken": true}},
		{auth.NewExpiredError("jwt expired", expiry),
			`{"message":"jwt expired","name":"AuthTokenExpiredError","expiry":"2026-11-22T02:45:16.000Z","isBadToken":true}`,
			map[string]any{"message": "jwt expired", "name": "AuthTokenExpiredError", "expiry": "2026-11-22T02:45:16.000Z", "isBadToken": true}},
		{auth.NewNotBeforeError("jwt not active", date),
			`{"message":"jwt not active","name":"AuthTokenNotBeforeError","date":"2026-11-22T02:47:06.000Z","isBadToken":false}`,
			map[string]any{"message": "jwt not active", "name": "AuthTokenNotBeforeError", "date": "2026-11-22T02:47:06.000Z", "isBadToken": false}},
		{auth.NewTokenError("Invalid token format - Token must be a string"),
			`{"message":"Invalid token format - Token must be a string","name":"AuthTokenError","isBadToken":true}`,
			map[string]any{"message": "Invalid token format - Token must be a string", "name": "AuthTokenError", "isBadToken": true}},
		{&auth.TokenError{Name: auth.NameExpired, Message: "jwt expired", IsBadToken: true},
			`{"message":"jwt expired","name":"AuthTokenExpiredError","expiry":null,"isBadToken":true}`,
			map[string]any{"message": "jwt expired", "name": "AuthTokenExpiredError", "expiry": nil, "isBadToken": true}},
		{auth.NewInvalidError(`<"&">`),
			`{"message":"<\"&\">","name":"AuthTokenInvalidError","isBadToken":true}`,
			map[string]any{"message": `<"&">`, "name": "AuthTokenInvalidError", "isBadToken": true}},
	}
	for _, tt := range tests {
		b, err := tt.err.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tt.json {
			t.Errorf("MarshalJSON = %s\nwant          %s", b, tt.json)
		}
		var viaMarshal map[string]any
		if b, err := json.Marshal(tt.err); err != nil || json.Unmarshal(b, &viaMarshal) != nil || !reflect.DeepEqual(viaMarshal, tt.fields) {
			t.Errorf("json.Marshal = %s, %v", b, err)
		}
		if f := tt.err.Fields(); !reflect.DeepEqual(f, tt.fields) {
			t.Errorf("Fields = %v, want %v", f, tt.fields)
		}
	}
}

func TestTokenErrorHelpers(t *testing.T) {
	t.Parallel()
	exp := auth.NewExpiredError("jwt expired", time.Unix(1, 0))
	wrapped := fmt.Errorf("handshake: %w", exp)
	if !errors.Is(wrapped, auth.ErrExpired) || errors.Is(wrapped, auth.ErrInvalid) {
		t.Error("errors.Is by name")
	}
	if !errors.Is(wrapped, &auth.TokenError{Name: auth.NameExpired, Message: "jwt expired"}) ||
		errors.Is(wrapped, &auth.TokenError{Name: auth.NameExpired, Message: "other"}) {
		t.Error("errors.Is by name and message")
	}
	if got := exp.Error(); got != "AuthTokenExpiredError: jwt expired" {
		t.Errorf("Error() = %q", got)
	}
	if auth.AsTokenError(wrapped) != exp {
		t.Error("AsTokenError does not unwrap")
	}
	if auth.AsTokenError(nil) != nil {
		t.Error("AsTokenError(nil) != nil")
	}
	other := auth.AsTokenError(errors.New("db down"))
	if other.Name != auth.NameToken || other.Message != "db down" || !other.IsBadToken {
		t.Errorf("AsTokenError(plain) = %+v", other)
	}
	if !auth.IsBadToken(exp) || auth.IsBadToken(auth.NewNotBeforeError("jwt not active", time.Now())) || auth.IsBadToken(nil) {
		t.Error("IsBadToken")
	}
}

func TestISOString(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		ms   int64
		want string
	}{
		{0, "1970-01-01T00:00:00.000Z"},
		{1795315516000, "2026-11-22T02:45:16.000Z"},
		{-1, "1969-12-31T23:59:59.999Z"},
		{253402300800000, "+010000-01-01T00:00:00.000Z"},
		{-62198755200000, "-000001-01-01T00:00:00.000Z"},
		{-62167219200000, "0000-01-01T00:00:00.000Z"},
		{8.64e15, "+275760-09-13T00:00:00.000Z"},
		{-8.64e15, "-271821-04-20T00:00:00.000Z"},
	} {
		if got := auth.ISOString(time.UnixMilli(tt.ms)); got != tt.want {
			t.Errorf("ISOString(%d ms) = %s, want %s", tt.ms, got, tt.want)
		}
	}
}
