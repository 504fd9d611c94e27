package prommetrics_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/history"
	"github.com/socketcluster-go/socketcluster/prommetrics"
)

func TestHistoryMetrics(t *testing.T) {
	srv, err := sc.New(sc.Options{History: []history.Rule{{Patterns: []string{"h.*"}, Size: 10, TTL: time.Minute}}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	for range 3 {
		if err := srv.Exchange().InvokePublish(context.Background(), "h.x", "m"); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(prommetrics.NewCollector(srv, "sc"))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if c := m.GetCounter(); c != nil {
				got[mf.GetName()] = c.GetValue()
			}
		}
	}
	for name, want := range map[string]float64{
		"sc_history_publishes_total": 3, "sc_history_publish_failures_total": 0, "sc_history_recoveries_total": 0,
		"sc_history_recovery_failures_total": 0, "sc_history_lost_total": 0, "sc_broker_outages_total": 0,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
}
