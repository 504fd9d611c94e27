package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// certReloader serves the certificate of -tls-cert and -tls-key, and
// loads it again on SIGHUP and when either file changes (checked every
// certPollInterval), without a restart: connections already open keep
// the session they have; new handshakes get the new certificate. A pair
// that fails to load is logged and the previous certificate stays in use.
type certReloader struct {
	certFile, keyFile string
	logger            *slog.Logger

	mu      sync.RWMutex
	cert    *tls.Certificate
	stamp   string // the files' sizes and times when cert was loaded
	badSeen string // the stamp of the last pair that failed to load, logged once
}

// certPollInterval is how often the certificate files are checked for a
// change.
var certPollInterval = 2 * time.Second

func newCertReloader(certFile, keyFile string, logger *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, logger: logger}
	if err := r.load(); err != nil {
		return nil, flagsError([]string{"tls-cert", "tls-key"}, "%v", err)
	}
	return r, nil
}

// tlsConfig is the listener's TLS configuration: TLS 1.2 or later, the
// current certificate.
func (r *certReloader) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			r.mu.RLock()
			defer r.mu.RUnlock()
			return r.cert, nil
		},
	}
}

// stampOf describes the files' state: it changes when either is written
// or replaced.
func (r *certReloader) stampOf() string {
	var b bytes.Buffer
	for _, f := range []string{r.certFile, r.keyFile} {
		st, err := os.Stat(f)
		if err != nil {
			fmt.Fprintf(&b, "%s:missing;", f)
			continue
		}
		fmt.Fprintf(&b, "%s:%d:%d;", f, st.Size(), st.ModTime().UnixNano())
	}
	return b.String()
}

// load reads the pair and makes it current.
func (r *certReloader) load() error {
	stamp := r.stampOf()
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return err
	}
	if len(c.Certificate) == 0 {
		return errors.New("no certificate in -tls-cert")
	}
	r.mu.Lock()
	r.cert, r.stamp = &c, stamp
	r.mu.Unlock()
	return nil
}

// reload loads the pair when force is set or the files changed since the
// last load, and logs the outcome.
func (r *certReloader) reload(force bool) {
	stamp := r.stampOf()
	r.mu.RLock()
	same, bad := stamp == r.stamp, stamp == r.badSeen
	r.mu.RUnlock()
	if !force && (same || bad) {
		return
	}
	if err := r.load(); err != nil {
		r.mu.Lock()
		r.badSeen = stamp
		r.mu.Unlock()
		r.logger.Error("scserver: TLS certificate not reloaded; the previous one stays in use", "cert", r.certFile, "key", r.keyFile, "error", err.Error())
		return
	}
	r.logger.Info("scserver: TLS certificate reloaded", "cert", r.certFile)
}

// notifyHUP starts catching SIGHUP (which would end the process
// otherwise); stop it with signal.Stop.
func notifyHUP() chan os.Signal {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return hup
}

// ignoreHUP catches SIGHUP when there is no certificate to reload, so that
// a reload (systemctl reload, kill -HUP) does not end the process, and
// logs that it had nothing to do. It returns when ctx is done.
func (a *app) ignoreHUP(ctx context.Context, wg *sync.WaitGroup) {
	hup := notifyHUP()
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				a.logger.Info("scserver: SIGHUP: nothing to reload (no -tls-cert)")
			}
		}
	}()
}

// watch reloads on hup (SIGHUP) and on file changes until ctx is done.
func (r *certReloader) watch(ctx context.Context, hup <-chan os.Signal) {
	t := time.NewTicker(certPollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			r.reload(true)
		case <-t.C:
			r.reload(false)
		}
	}
}
