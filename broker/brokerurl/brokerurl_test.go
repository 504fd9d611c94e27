package brokerurl

import (
	"strings"
	"testing"

	"github.com/socketcluster-go/socketcluster/broker/sccbroker"
)

func TestOpenSCC(t *testing.T) {
	b, err := OpenListening("scc://state.local:7777?authKey=k", ":8123")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := b.(*sccbroker.Broker); !ok {
		t.Fatalf("scc:// opened a %T", b)
	}
	_ = b.Close()
	if _, err := Open("scc://state.local?mappingEngine=ring"); err == nil || !strings.Contains(err.Error(), "mapping engine") {
		t.Fatalf("bad scc URL: %v", err)
	}
	if _, err := Open("gopher://x"); err == nil || !strings.Contains(err.Error(), "scc://") {
		t.Fatalf("unknown kind: %v", err)
	}
}

// OpenListening reports the listen port as instancePort unless the URL
// gives one.
func TestOpenListeningInstancePort(t *testing.T) {
	for _, c := range []struct{ spec, addr, want string }{
		{"scc://s", ":8123", "instancePort=8123"},
		{"scc://s?instancePort=9000", ":8123", "instancePort=9000"},
		{"scc://s", "127.0.0.1:0", ""},
	} {
		spec := withInstancePort(c.spec, c.addr)
		if c.want == "" && strings.Contains(spec, "instancePort") || c.want != "" && !strings.Contains(spec, c.want) {
			t.Errorf("%s on %s: %s", c.spec, c.addr, spec)
		}
	}
}
