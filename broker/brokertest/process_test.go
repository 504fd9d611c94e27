package brokertest

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// A process that exits before it answers is reported at once, with what it
// printed, as errExited (StartProcess then tries another port).
func TestProcessExitsBeforeAnswering(t *testing.T) {
	t.Parallel()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	p := &Process{tb: t, kind: "redis", port: FreePort(t),
		args: []string{sh, "-c", "echo 'Could not create server TCP listening socket: bind: Address already in use'; exit 1"}}
	err = p.start()
	if !errors.Is(err, errExited) {
		t.Fatalf("start: %v, want errExited", err)
	}
	if !strings.Contains(err.Error(), "Address already in use") {
		t.Fatalf("start: %v, want the process's output in the error", err)
	}
	if p.cmd != nil {
		t.Fatal("an exited process is still recorded as running")
	}
}
