//go:build linux

package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// base is the generator's clock origin. Timestamps carried in published
// messages are nanoseconds since base on the monotonic clock, so the
// end-to-end latency of a delivery is nanotime() minus the stamp.
var base = time.Now()

func nanotime() int64 { return int64(time.Since(base)) }

// clockTick is USER_HZ, the unit of utime/stime in /proc/PID/stat. It is 100
// on every Linux architecture Go supports.
const clockTick = 100

// procCPU returns the user+system CPU time consumed so far by process pid,
// all its threads included (/proc/PID/stat fields 14 and 15).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may contain spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return time.Duration(ut+st) * time.Second / clockTick, nil
}

// procRSS returns the resident set size of process pid in KiB (VmRSS).
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := bytes.Fields(rest)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(string(f[0]), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// machineTicks returns the steal time and the total time of all CPUs so
// far (the first line of /proc/stat, in clock ticks): steal is time a
// virtual machine's CPUs were ready to run but the hypervisor ran
// something else. ok is false where /proc/stat cannot be read.
func machineTicks() (steal, total int64, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	// cpu user nice system idle iowait irq softirq steal [guest guest_nice]
	if len(f) < 9 || string(f[0]) != "cpu" {
		return 0, 0, false
	}
	for i, v := range f[1:9] {
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return 0, 0, false
		}
		total += n
		if i == 7 {
			steal = n
		}
	}
	return steal, total, true
}

// selfCPU returns the CPU time (user+system) used by this process so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// raiseFileLimit lifts the soft RLIMIT_NOFILE to the hard limit and returns
// the resulting soft limit.
func raiseFileLimit() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			return rl.Cur, err
		}
	}
	return rl.Cur, nil
}

// serverProbe samples the measured server's CPU time and memory. The zero
// value (pid 0) samples nothing.
type serverProbe struct {
	pid int
}

type probeSample struct {
	at     time.Time
	cpu    time.Duration // server CPU, -1 when unknown
	rssKB  int64         // server VmRSS, -1 when unknown
	selfCP time.Duration // generator CPU
	steal  int64         // machine's steal ticks (machineTicks), total -1 when unknown
	total  int64
}

func (p serverProbe) sample() probeSample {
	s := probeSample{at: time.Now(), cpu: -1, rssKB: -1, selfCP: selfCPU(), total: -1}
	if st, tot, ok := machineTicks(); ok {
		s.steal, s.total = st, tot
	}
	if p.pid > 0 {
		if c, err := procCPU(p.pid); err == nil {
			s.cpu = c
		}
		if r, err := procRSS(p.pid); err == nil {
			s.rssKB = r
		}
	}
	return s
}

// check verifies that the pid can be sampled at all.
func (p serverProbe) check() error {
	if p.pid <= 0 {
		return nil
	}
	if _, err := procCPU(p.pid); err != nil {
		return fmt.Errorf("-server-pid %d: %w", p.pid, err)
	}
	return nil
}
