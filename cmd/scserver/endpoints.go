package main

import (
	"io"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/socketcluster-go/socketcluster/broker/sccbroker"
	"github.com/socketcluster-go/socketcluster/prommetrics"
)

// routes mounts the WebSocket endpoint, the health endpoints, /metrics and
// the demo page.
func (a *app) routes() {
	// The metrics deploy/ (dashboard, alert rules) is checked against.
	a.reg = prommetrics.NewRegistry(a.srv, "socketcluster")
	if b, ok := a.srv.Options().Broker.(*sccbroker.Broker); ok {
		a.reg.MustRegister(prommetrics.NewSCCBrokerCollector(b, "socketcluster_scc"))
	}
	a.mux.Handle(a.cfg.Path, a.wsHandler())
	a.mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	a.mux.HandleFunc("/readyz", a.readyz)
	a.internal.Handle("/metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))
	if a.cfg.Demo {
		a.mux.Handle("/", demoHandler(a.cfg.ClientJS, a.cfg.Path))
		installDemo(a.srv)
	}
}

// readyz is 200 when the server takes clients: not draining, broker ready.
func (a *app) readyz(w http.ResponseWriter, r *http.Request) {
	if a.draining.Load() || !a.srv.Stats().Ready {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	io.WriteString(w, "ready\n")
}
