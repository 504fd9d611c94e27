//go:build unix

package brokertest

import (
	"bytes"
	"os"
	"strconv"
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
	// The signal is asynchronous: on a busy machine the process may still
	// answer for a moment. Where /proc tells, wait until it is stopped.
	stat := "/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/stat"
	for i := 0; i < 1000; i++ {
		b, err := os.ReadFile(stat)
		if err != nil {
			return // no /proc: nothing to wait on
		}
		// pid (comm) state ...: the state follows the last ')'.
		if j := bytes.LastIndexByte(b, ')'); j >= 0 && j+2 < len(b) && b[j+2] == 'T' {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.tb.Fatalf("brokertest: %s did not stop after SIGSTOP", p.args[0])
}

// Resume continues a paused process (SIGCONT); it does nothing when the
// process is not running.
func (p *Process) Resume() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
}
