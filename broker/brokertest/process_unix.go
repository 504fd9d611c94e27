//go:build unix

package brokertest

import (
	"bytes"
	"fmt"
	"os"
	"syscall"
	"time"
)

// Pause stops the process with SIGSTOP: it keeps its connections but
// answers nothing, as a hung server does, until Resume. Stop works on a
// paused process.
func (p *Process) Pause() {
	p.tb.Helper()
	if p.cmd == nil {
		p.tb.Fatal("brokertest: Pause of a process that is not running")
	}
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		p.tb.Fatalf("brokertest: SIGSTOP %s: %v", p.args[0], err)
	}
	// The signal is delivered asynchronously: a busy server may still
	// handle a few commands after kill(2) returned. Wait until every thread
	// is stopped, so that what the test sends next meets a hung server.
	for deadline := time.Now().Add(10 * time.Second); !stopped(p.cmd.Process.Pid); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			p.tb.Fatalf("brokertest: %s (pid %d) did not stop within 10s of SIGSTOP", p.args[0], p.cmd.Process.Pid)
		}
	}
}

// stopped reports whether every thread of process pid is stopped (state T
// in /proc/PID/task/*/stat). Without /proc it reports true.
func stopped(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return true
	}
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, t.Name()))
		if err != nil {
			continue // the thread ended
		}
		// pid (comm) state ...: comm may contain spaces, so look after ')'.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) {
			continue
		}
		if st := b[i+2]; st != 'T' && st != 't' {
			return false
		}
	}
	return true
}

// Resume continues a paused process (SIGCONT); it does nothing when the
// process is not running.
func (p *Process) Resume() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
}
