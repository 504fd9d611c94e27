//go:build linux

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"time"
)

// runCompare runs one scenario against servers A and B alternately
// (A B A B ...) and reports, per numeric figure, the median over the rounds
// for each server and the ratio B/A. Alternating spreads the machine's
// drift (thermal, other load) over both servers.
func runCompare(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("scbench compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addrA := fs.String("a", "", "server A `address` (as -addr)")
	addrB := fs.String("b", "", "server B `address` (as -addr)")
	pidA := fs.Int("pid-a", 0, "server A `pid` (as -server-pid)")
	pidB := fs.Int("pid-b", 0, "server B `pid` (as -server-pid)")
	rounds := fs.Int("rounds", 3, "rounds; each runs the scenario against A, then B")
	pause := fs.Duration("pause", 2*time.Second, "pause between runs")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: scbench compare -a ADDR -b ADDR [flags] <scenario> [scenario flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if *addrA == "" || *addrB == "" || fs.NArg() == 0 || *rounds < 1 {
		fs.Usage()
		return 2
	}
	sc := findScenario(fs.Arg(0))
	if sc == nil {
		fmt.Fprintf(stderr, "scbench compare: unknown scenario %q\n", fs.Arg(0))
		return 2
	}
	base, fn, code := parseScenario(sc, fs.Args()[1:], stderr)
	if fn == nil {
		return code
	}
	sides := []struct {
		name string
		addr string
		pid  int
	}{{"A", *addrA, *pidA}, {"B", *addrB, *pidB}}
	var results [2][]*Result
	for round := 1; round <= *rounds && ctx.Err() == nil; round++ {
		for i, s := range sides {
			t := *base
			t.Addr, t.ServerPID = s.addr, s.pid
			base.progress("compare: round %d/%d, %s %s (%s)", round, *rounds, sc.name, s.name, s.addr)
			res, err := execute(ctx, &t, fn)
			if err != nil {
				fmt.Fprintf(stderr, "scbench compare: %s round %d: %v\n", s.name, round, err)
				return 1
			}
			if b, err := json.Marshal(res); err == nil {
				base.progress("compare: %s round %d: %s", s.name, round, b)
			}
			results[i] = append(results[i], res)
			if round < *rounds || i == 0 {
				sleepCtx(ctx, *pause)
			}
		}
	}
	if len(results[1]) == 0 {
		fmt.Fprintln(stderr, "scbench compare: interrupted before any complete round")
		return 1
	}
	n := min(len(results[0]), len(results[1]))
	out := compareResults(sc.name, results[0][:n], results[1][:n])
	out.set("a", *addrA)
	out.set("b", *addrB)
	if !base.Quiet {
		printCompareTable(stderr, out)
	}
	return printResult(stdout, stderr, out)
}

// compareResults builds the summary: medians of every numeric figure for A
// and B and their ratio B/A.
func compareResults(scenario string, a, b []*Result) *Result {
	out := newResult("compare")
	out.set("compared", scenario)
	out.set("rounds", len(a))
	medA, medB, ratio := &Result{vals: map[string]any{}}, &Result{vals: map[string]any{}}, &Result{vals: map[string]any{}}
	for _, k := range a[0].keys {
		va, okA := column(a, k)
		vb, okB := column(b, k)
		if !okA || !okB {
			continue
		}
		ma, mb := median(va), median(vb)
		medA.set(k, ma)
		medB.set(k, mb)
		if ma != 0 {
			ratio.set(k, mb/ma)
		} else if mb == 0 {
			ratio.set(k, 1.0)
		}
	}
	out.set("a_median", medA)
	out.set("b_median", medB)
	out.set("b_over_a", ratio)
	return out
}

// column collects figure k from every result, if it is numeric in all.
func column(rs []*Result, k string) ([]float64, bool) {
	var v []float64
	for _, r := range rs {
		x, ok := r.number(k)
		if !ok {
			return nil, false
		}
		v = append(v, x)
	}
	return v, true
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func printCompareTable(w io.Writer, out *Result) {
	va, _ := out.get("a_median")
	vb, _ := out.get("b_median")
	vr, _ := out.get("b_over_a")
	a, b, r := va.(*Result), vb.(*Result), vr.(*Result)
	fmt.Fprintf(w, "%-28s %14s %14s %8s\n", "figure (median)", "A", "B", "B/A")
	for _, k := range a.keys {
		x, _ := a.number(k)
		y, _ := b.number(k)
		if q, ok := r.number(k); ok {
			fmt.Fprintf(w, "%-28s %14.4g %14.4g %8.3f\n", k, x, y, q)
		} else {
			fmt.Fprintf(w, "%-28s %14.4g %14.4g %8s\n", k, x, y, "-")
		}
	}
}
