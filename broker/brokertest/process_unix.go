//go:build unix

package brokertest

import "syscall"

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
}

// Resume continues a paused process (SIGCONT); it does nothing when the
// process is not running.
func (p *Process) Resume() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
}
