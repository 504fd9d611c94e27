//go:build !linux || scnoepoll

package netpoll

import (
	"errors"
	"syscall"
)

// Available reports whether event-driven reading works here: never on this
// build.
func Available() bool { return false }

// Pollers returns 0: there are no pollers on this build.
func Pollers() int { return 0 }

// Lend reports false: there is no poller to run fn on this build.
func Lend(fn func()) bool { return false }

// Desc is not usable on this build.
type Desc struct{}

var errUnavailable = errors.New("netpoll: not available on this build")

// Init panics on this build: check Available first.
func (d *Desc) Init(rc syscall.RawConn, handler Handler) {
	panic("netpoll: Init called while Available reports false")
}

// InitEdge panics on this build: check Available first.
func (d *Desc) InitEdge(rc syscall.RawConn, handler Handler) {
	panic("netpoll: InitEdge called while Available reports false")
}

// ReadToEnd reports false on this build.
func (d *Desc) ReadToEnd() bool { return false }

// Start does nothing on this build.
func (d *Desc) Start() {}

// StartReadable does nothing on this build.
func (d *Desc) StartReadable() {}

// StartAfter does nothing on this build.
func (d *Desc) StartAfter(prev *Desc) {}

// Unwatch does nothing on this build.
func (d *Desc) Unwatch() {}

// Trigger does nothing on this build.
func (d *Desc) Trigger() {}

// Read fails on this build.
func (d *Desc) Read(p []byte) (int, error) { return 0, errUnavailable }
