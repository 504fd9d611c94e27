package main

import (
	_ "embed"
	"html/template"
	"net/http"
	"path/filepath"

	sc "github.com/socketcluster-go/socketcluster"
)

//go:embed demo.html
var demoHTML string

var demoTmpl = template.Must(template.New("demo").Parse(demoHTML))

// clientJS is the official browser client, socketcluster-client 20.0.2
// (an ES module), embedded so that the demo page works offline; its
// license is in assets/NOTICE.md.
//
//go:embed assets/socketcluster-client.min.js
var clientJS []byte

// clientJSVersion is the version of clientJS.
const clientJSVersion = "20.0.2"

// demoHandler serves the demo page at / and the client script it loads at
// /socketcluster-client.min.js: the embedded one, or the file -client-js
// names.
func demoHandler(clientJSFile, path string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/socketcluster-client.min.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		if clientJSFile != "" {
			http.ServeFile(w, r, filepath.Clean(clientJSFile))
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write(clientJS)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = demoTmpl.Execute(w, map[string]string{"Path": path})
	})
	return mux
}

// installDemo serves what the demo page uses: an echo procedure.
func installDemo(srv *sc.Server) {
	srv.HandleProcedure("echo", func(r *sc.Request) { _ = r.End(r.Data) })
}
