package prommetrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/socketcluster-go/socketcluster/broker/sccbroker"
	"github.com/socketcluster-go/socketcluster/scc/relay"
	"github.com/socketcluster-go/socketcluster/scc/state"
)

// The SCC collectors export every counter and gauge under their
// namespace, with the right types.
func TestSCCCollectors(t *testing.T) {
	b, err := sccbroker.New("ws://127.0.0.1:1/socketcluster/", sccbroker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	st, err := state.New(state.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(t.Context())
	r, err := relay.New(relay.Options{StateURL: "ws://127.0.0.1:1/socketcluster/", Port: 8888})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(t.Context())
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewSCCBrokerCollector(b, "w"), NewStateCollector(st, "s"), NewRelayCollector(r, "r"))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, mf := range mfs {
		got[mf.GetName()] = mf.GetType().String()
	}
	for name, typ := range map[string]string{
		"w_published_total": "COUNTER", "w_no_broker_total": "COUNTER", "w_channels_moved_total": "COUNTER",
		"w_brokers": "GAUGE", "w_unconfirmed_channels": "GAUGE", "w_joined": "GAUGE",
		"s_brokers": "GAUGE", "s_version_rejected_total": "COUNTER", "s_type_rejected_total": "COUNTER",
		"r_joined": "GAUGE", "r_join_failures_total": "COUNTER",
	} {
		if got[name] != typ {
			t.Errorf("%s: %q, want %s (have %s)", name, got[name], typ, strings.Join(keys(got), " "))
		}
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
