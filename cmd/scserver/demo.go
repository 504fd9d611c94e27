package main

import (
	_ "embed"
	"html/template"
	"net/http"
	"os"
	"path/filepath"

	sc "github.com/socketcluster-go/socketcluster"
)

//go:embed demo.html
var demoHTML string

var demoTmpl = template.Must(template.New("demo").Parse(demoHTML))

// clientJSCandidates are where the official browser build of the client is
// looked for when -client-js is not given (an npm install of
// socketcluster-client next to the binary, or the interop suite's).
var clientJSCandidates = []string{
	"node_modules/socketcluster-client/socketcluster-client.min.js",
	"interop/node_modules/socketcluster-client/socketcluster-client.min.js",
}

// demoHandler serves the demo page at / and the client script it loads at
// /socketcluster-client.min.js (from disk, or else the page points to a CDN).
func demoHandler(clientJS, path string) http.Handler {
	if clientJS == "" {
		for _, c := range clientJSCandidates {
			if _, err := os.Stat(c); err == nil {
				clientJS = c
				break
			}
		}
	}
	scriptURL := "https://unpkg.com/socketcluster-client@20.0.2/socketcluster-client.min.js"
	if clientJS != "" {
		scriptURL = "/socketcluster-client.min.js"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/socketcluster-client.min.js", func(w http.ResponseWriter, r *http.Request) {
		if clientJS == "" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		http.ServeFile(w, r, filepath.Clean(clientJS))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = demoTmpl.Execute(w, map[string]string{"Script": scriptURL, "Path": path})
	})
	return mux
}

// installDemo serves what the demo page uses: an echo procedure.
func installDemo(srv *sc.Server) {
	srv.HandleProcedure("echo", func(r *sc.Request) { _ = r.End(r.Data) })
}
