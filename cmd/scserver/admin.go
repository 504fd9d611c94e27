package main

import (
	"context"
	"net"
	"os"
	"strings"
	"sync"

	"github.com/socketcluster-go/socketcluster/internal/admin"
)

// The admin page (internal/admin): off unless -admin-password is set,
// served on its own address -admin-addr.
func init() {
	specs = append(specs,
		spec{"admin-addr", "SC_ADMIN_ADDR", "serve the admin page on this address (only with -admin-password; keep it internal)", strSetter(func(c *config) *string { return &c.AdminAddr }), "127.0.0.1:9200"},
		spec{"admin-password", "SC_ADMIN_PASSWORD", "turn the admin page on, with this password (at least 12 characters; prefer the environment variable to the command line)", strSetter(func(c *config) *string { return &c.AdminPassword }), ""},
	)
}

// validateAdmin checks the admin settings (only when the page is on).
func (c *config) validateAdmin() error {
	if c.AdminPassword == "" {
		return nil
	}
	if len(c.AdminPassword) < admin.MinPasswordLength {
		return flagError("admin-password", "too short: use at least %d characters", admin.MinPasswordLength)
	}
	if err := checkAddr("admin-addr", c.AdminAddr); err != nil {
		return err
	}
	for _, other := range []struct{ flag, addr string }{{"addr", c.Addr}, {"metrics-addr", c.MetricsAddr}} {
		if other.addr != "" && other.addr == c.AdminAddr && !strings.HasSuffix(c.AdminAddr, ":0") {
			return flagsError([]string{"admin-addr", other.flag}, "the same address %q: the admin page needs an address of its own", c.AdminAddr)
		}
	}
	return nil
}

// adminListeners returns the admin page's listen address, if it is on.
func (a *app) adminListeners() []listenSpec {
	if a.cfg.AdminPassword == "" {
		return nil
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "scserver"
	}
	instance := host // the public port tells instances on one host apart
	if _, port, _ := net.SplitHostPort(a.cfg.Addr); port != "" && port != "0" {
		instance += ":" + port
	}
	adm, err := admin.New(admin.Config{Server: a.srv, Password: a.cfg.AdminPassword, Logger: a.logger, Instance: instance})
	if err != nil {
		panic(err) // validateAdmin checked the settings
	}
	a.admin = adm
	return []listenSpec{{"admin-addr", a.cfg.AdminAddr, "admin on", adm}}
}

// runAdmin shares the figures with the other instances through the broker
// until ctx is done.
func (a *app) runAdmin(ctx context.Context, wg *sync.WaitGroup) {
	if a.admin == nil {
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := a.admin.Run(ctx); err != nil && ctx.Err() == nil {
			a.logger.Warn("scserver: the admin page cannot share figures with other instances", "error", err.Error())
		}
	}()
}
