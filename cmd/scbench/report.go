//go:build linux

package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// reportFigures are the figures a report shows by default, in this order,
// when a result has them.
var reportFigures = []string{
	"deliveries_per_s", "calls_per_s", "connect_rate", "publish_rate",
	"lost", "duplicates", "order_violations", "dropped", "errors", "unanswered",
	"latency_p50_ms", "latency_p99_ms", "latency_max_ms", "setup_p50_ms", "setup_p99_ms",
	"server_cpu_us_per_delivery", "server_cpu_us_per_call", "server_cpu_us_per_conn",
	"server_cpu_pct", "rss_per_conn_bytes", "server_rss_kb",
	"gen_cpu_us_per_delivery", "gen_cpu_us_per_call", "gen_cpu_us_per_conn",
	"machine_steal_pct",
}

// runReport reads result lines (scbench output with -label and -server)
// and prints, per label, a Markdown table of the median of every figure per
// server, with the ratio of the -base server to each other one.
func runReport(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("scbench report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("base", "", "server `name` whose ratio to each other server is shown (base / other)")
	all := fs.Bool("all", false, "every numeric figure, not only the main ones")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	rep, err := readReport(stdin)
	if err != nil {
		fmt.Fprintf(stderr, "scbench report: %v\n", err)
		return 1
	}
	rep.write(stdout, *base, *all)
	return 0
}

type report struct {
	labels  []string
	servers map[string][]string             // label → servers in order of appearance
	runs    map[string]map[string][]*Result // label → server → runs
	keys    map[string][]string             // label → numeric figures in order of appearance
}

func readReport(r io.Reader) (*report, error) {
	rep := &report{servers: map[string][]string{}, runs: map[string]map[string][]*Result{}, keys: map[string][]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] != '{' {
			continue
		}
		var m map[string]any
		dec := json.NewDecoder(strings.NewReader(text))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("line %d: %v", line, err)
		}
		res := newResult(fmt.Sprint(m["scenario"]))
		var order []string
		for k, v := range m {
			if n, ok := v.(json.Number); ok {
				if f, err := n.Float64(); err == nil {
					res.set(k, f)
					order = append(order, k)
				}
			}
		}
		label, _ := m["label"].(string)
		server, _ := m["server"].(string)
		if label == "" {
			label = fmt.Sprint(m["scenario"])
		}
		if server == "" {
			server, _ = m["target"].(string)
		}
		if rep.runs[label] == nil {
			rep.labels = append(rep.labels, label)
			rep.runs[label] = map[string][]*Result{}
		}
		if rep.runs[label][server] == nil {
			rep.servers[label] = append(rep.servers[label], server)
		}
		rep.runs[label][server] = append(rep.runs[label][server], res)
		slices.Sort(order)
		for _, k := range order {
			if !slices.Contains(rep.keys[label], k) {
				rep.keys[label] = append(rep.keys[label], k)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(rep.labels) == 0 {
		return nil, fmt.Errorf("no result lines on the input")
	}
	return rep, nil
}

func (rep *report) write(w io.Writer, base string, all bool) {
	for _, label := range rep.labels {
		servers := rep.servers[label]
		keys := rep.keys[label]
		if !all {
			keys = slices.DeleteFunc(slices.Clone(reportFigures), func(k string) bool { return !slices.Contains(keys, k) })
		}
		others := slices.DeleteFunc(slices.Clone(servers), func(s string) bool { return s == base })
		withBase := base != "" && len(others) < len(servers)
		fmt.Fprintf(w, "\n### %s\n\n| figure |", label)
		for _, s := range servers {
			fmt.Fprintf(w, " %s (%d) |", s, len(rep.runs[label][s]))
		}
		if withBase {
			for _, o := range others {
				fmt.Fprintf(w, " %s / %s |", base, o)
			}
		}
		fmt.Fprint(w, "\n| --- |")
		for range servers {
			fmt.Fprint(w, " ---: |")
		}
		if withBase {
			for range others {
				fmt.Fprint(w, " ---: |")
			}
		}
		fmt.Fprintln(w)
		for _, k := range keys {
			med := map[string]float64{}
			fmt.Fprintf(w, "| %s |", k)
			for _, s := range servers {
				v, ok := column(rep.runs[label][s], k)
				if !ok {
					fmt.Fprint(w, " – |")
					continue
				}
				med[s] = median(v)
				fmt.Fprintf(w, " %s |", formatFigure(med[s]))
			}
			if withBase {
				for _, o := range others {
					b, okB := med[base]
					x, okX := med[o]
					if !okB || !okX || x == 0 {
						fmt.Fprint(w, " – |")
						continue
					}
					fmt.Fprintf(w, " %.2f× |", b/x)
				}
			}
			fmt.Fprintln(w)
		}
	}
}

func formatFigure(v float64) string {
	switch {
	case v == float64(int64(v)) && (v >= 1000 || v <= -1000 || v == 0):
		return fmt.Sprintf("%d", int64(v))
	case v >= 100 || v <= -100:
		return fmt.Sprintf("%.0f", v)
	case v >= 1 || v <= -1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}
