package main

import (
	"io"
	"strings"
	"testing"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestProtocolVersionOption(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want int
	}{
		{nil, nil, 2},
		{nil, map[string]string{"SC_PROTOCOL_VERSION": "1"}, 1},
		{[]string{"-protocol-version", "1"}, nil, 1},
		{[]string{"-protocol-version", "2"}, map[string]string{"SC_PROTOCOL_VERSION": "1"}, 2},
	} {
		c, err := parse(tc.args, envOf(tc.env), io.Discard)
		if err != nil || c.protocolVersion != tc.want {
			t.Errorf("%v %v: %v, version %v, want %d", tc.args, tc.env, err, c, tc.want)
		}
	}
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"-protocol-version", "3"}, nil, "use 1 or 2"},
		{nil, map[string]string{"SC_PROTOCOL_VERSION": "0"}, "use 1 or 2"},
		{nil, map[string]string{"SC_PROTOCOL_VERSION": "v1"}, "SC_PROTOCOL_VERSION"},
	} {
		_, err := parse(tc.args, envOf(tc.env), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: got %v, want an error with %q", tc.args, tc.env, err, tc.want)
		}
	}
	if code := run([]string{"-protocol-version", "3"}, envOf(nil), io.Discard, io.Discard); code != 2 {
		t.Errorf("exit code %d for a bad -protocol-version, want 2", code)
	}
}

func TestOwnDescriptorsOption(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want bool
	}{{"", true}, {"true", true}, {"1", true}, {"TRUE", true}, {"false", false}, {"0", false}, {"f", false}} {
		o, err := extraOptions(envOf(map[string]string{"SC_OWN_DESCRIPTORS": tc.env}))
		if err != nil || o.OwnDescriptors != tc.want {
			t.Errorf("SC_OWN_DESCRIPTORS=%q: %v, %v; want %v", tc.env, o.OwnDescriptors, err, tc.want)
		}
	}
	if _, err := extraOptions(envOf(map[string]string{"SC_OWN_DESCRIPTORS": "maybe"})); err == nil {
		t.Error("SC_OWN_DESCRIPTORS=maybe accepted")
	}
}
