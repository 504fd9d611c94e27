package prommetrics_test

import (
	"testing"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/prommetrics"
)

// The registry serves the server's metrics next to the Go and process ones.
func TestNewRegistryGathers(t *testing.T) {
	srv, err := sc.New(sc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Terminate() })
	mfs, err := prommetrics.NewRegistry(srv, "socketcluster").Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		switch {
		case m.GetGauge() != nil:
			got[mf.GetName()] = m.GetGauge().GetValue()
		case m.GetCounter() != nil:
			got[mf.GetName()] = m.GetCounter().GetValue()
		default:
			got[mf.GetName()] = -1
		}
	}
	for name, want := range map[string]float64{
		"socketcluster_clients":                  0,
		"socketcluster_ready":                    1,
		"socketcluster_broker_connected":         1,
		"socketcluster_handshakes_total":         0,
		"socketcluster_received_bytes_total":     0,
		"socketcluster_sent_bytes_total":         0,
		"socketcluster_slow_consumers_total":     0,
		"socketcluster_deliveries_total":         0,
		"socketcluster_batched_deliveries_total": 0,
		"socketcluster_broker_errors_total":      0,
	} {
		v, ok := got[name]
		if !ok {
			t.Errorf("%s is not exported", name)
		} else if v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := got[name]; !ok {
			t.Errorf("%s is not exported", name)
		}
	}
}
