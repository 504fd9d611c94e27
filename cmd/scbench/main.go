//go:build linux

// Command scbench is a load generator for SocketCluster servers (protocol
// version 2, as spoken by socketcluster-server 20.x and socketcluster-go).
//
// Usage:
//
//	scbench conns    [flags]   idle connections: set-up rate and latency, server memory per connection
//	scbench fanout   [flags]   one publisher, N subscribers on one channel; -search finds the highest rate under a p99 bound
//	scbench channels [flags]   N clients, each subscribed to its own channel and publishing to another's
//	scbench rpc      [flags]   N clients invoking a procedure (echo) with K calls in flight each
//	scbench compare  -a ADDR -b ADDR [-rounds R] <scenario> [flags]   the same scenario against A and B alternately
//	scbench floor    [-listen ADDR] [-coalesce]   a minimal server that only routes (the floor of the head-to-head)
//	scbench report   < results.jsonl   a Markdown table of medians per server from labelled result lines
//
// Every run prints one JSON line of figures on stdout; progress goes to
// stderr. See README.md in this directory.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
)

// runFunc runs a scenario against a resolved target.
type runFunc func(ctx context.Context, t *Target) (*Result, error)

// scenario registers its flags and returns the function that runs it.
type scenario struct {
	name    string
	summary string
	flags   func(fs *flag.FlagSet) runFunc
}

var scenarios = []scenario{
	{"conns", "N idle connections: connect rate, set-up latency, server memory per connection", connsFlags},
	{"fanout", "N subscribers on one channel, one publisher (fixed -rate, or bounded -window; -search)", fanoutFlags},
	{"channels", "N clients each subscribed to its own channel, publishing to another client's channel", channelsFlags},
	{"rpc", "N clients invoking a procedure with K calls in flight each", rpcFlags},
}

func findScenario(name string) *scenario {
	for i := range scenarios {
		if scenarios[i].name == name {
			return &scenarios[i]
		}
	}
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: scbench <scenario> [flags]")
	fmt.Fprintln(w, "       scbench compare -a ADDR -b ADDR [-rounds N] [-pid-a PID -pid-b PID] <scenario> [flags]")
	fmt.Fprintln(w, "       scbench floor [-listen ADDR] [-coalesce]     (a minimal server: prints READY <port>)")
	fmt.Fprintln(w, "       scbench report < results.jsonl             (medians per label and server, Markdown)")
	fmt.Fprintln(w, "scenarios:")
	for _, s := range scenarios {
		fmt.Fprintf(w, "  %-9s %s\n", s.name, s.summary)
	}
	fmt.Fprintln(w, "Run 'scbench <scenario> -h' for its flags. One JSON line of figures goes to stdout.")
}

// run is main without the process exit, for tests.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return 0
	case "compare":
		return runCompare(ctx, args[1:], stdout, stderr)
	case "floor":
		return runFloor(ctx, args[1:], stdout, stderr)
	case "report":
		return runReport(args[1:], os.Stdin, stdout, stderr)
	}
	sc := findScenario(args[0])
	if sc == nil {
		fmt.Fprintf(stderr, "scbench: unknown scenario %q\n", args[0])
		usage(stderr)
		return 2
	}
	t, fn, code := parseScenario(sc, args[1:], stderr)
	if fn == nil {
		return code
	}
	res, err := execute(ctx, t, fn)
	if err != nil {
		fmt.Fprintf(stderr, "scbench %s: %v\n", sc.name, err)
		return 1
	}
	return printResult(stdout, stderr, res)
}

// parseScenario parses a scenario's flags. On failure fn is nil and code is
// the exit status.
func parseScenario(sc *scenario, args []string, stderr io.Writer) (t *Target, fn runFunc, code int) {
	fs := flag.NewFlagSet("scbench "+sc.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	t = &Target{Log: stderr}
	t.addFlags(fs)
	fn = sc.flags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, 0
		}
		return nil, nil, 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "scbench %s: unexpected arguments %s\n", sc.name, strings.Join(fs.Args(), " "))
		return nil, nil, 2
	}
	return t, fn, 0
}

// execute prepares the process (file limit) and runs a scenario.
func execute(ctx context.Context, t *Target, fn runFunc) (*Result, error) {
	if _, err := raiseFileLimit(); err != nil {
		t.progress("raising RLIMIT_NOFILE: %v", err)
	}
	if err := (serverProbe{t.ServerPID}).check(); err != nil {
		return nil, err
	}
	if t.CPUProfile != "" {
		f, err := os.Create(t.CPUProfile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	res, err := fn(ctx, t)
	if err != nil {
		return nil, err
	}
	if t.Deflate {
		res.set("deflate", true)
	}
	if t.Label != "" {
		res.set("label", t.Label)
	}
	if t.Server != "" {
		res.set("server", t.Server)
	}
	return res, nil
}

func printResult(stdout, stderr io.Writer, res *Result) int {
	b, err := json.Marshal(res)
	if err != nil {
		fmt.Fprintf(stderr, "scbench: %v\n", err)
		return 1
	}
	b = append(b, '\n')
	stdout.Write(b)
	return 0
}
