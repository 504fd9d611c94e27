package wire

import (
	"strings"
	"testing"
)

func TestArray(t *testing.T) {
	for raw, want := range map[string]string{
		`[]`:                                  "",
		` [ 1 , "a,]" , {"x":[1,2]} , null ]`: `1|"a,]"|{"x":[1,2]}|null`,
		`[[],[[]],-1.5e3]`:                    `[]|[[]]|-1.5e3`,
	} {
		var got []string
		if !Array([]byte(raw), func(v []byte) { got = append(got, string(v)) }) {
			t.Fatalf("%s: not an array", raw)
		}
		if strings.Join(got, "|") != want {
			t.Errorf("%s: %q, want %q", raw, strings.Join(got, "|"), want)
		}
	}
	for _, raw := range []string{``, `{}`, `"[]"`, `1`} {
		if Array([]byte(raw), func([]byte) {}) {
			t.Errorf("%q taken for an array", raw)
		}
	}
}
