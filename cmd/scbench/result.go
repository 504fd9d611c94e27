//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"math"
	"time"
)

// Result is one scenario's figures, in the order they were set. It prints
// as one JSON object on one line.
type Result struct {
	keys []string
	vals map[string]any
}

func newResult(scenario string) *Result {
	r := &Result{vals: map[string]any{}}
	r.set("scenario", scenario)
	return r
}

// set adds or replaces a figure. Floats are rounded to 4 decimals; NaN and
// infinities become null.
func (r *Result) set(k string, v any) {
	if f, ok := v.(float64); ok {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			v = nil
		} else {
			v = math.Round(f*1e4) / 1e4
		}
	}
	if _, ok := r.vals[k]; !ok {
		r.keys = append(r.keys, k)
	}
	r.vals[k] = v
}

func (r *Result) get(k string) (any, bool) {
	v, ok := r.vals[k]
	return v, ok
}

// number returns figure k as a float64 if it is numeric.
func (r *Result) number(k string) (float64, bool) {
	switch v := r.vals[k].(type) {
	case float64:
		return v, true
	case int:
		return float64(v), true
	case int64:
		return float64(v), true
	}
	return 0, false
}

func (r *Result) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range r.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		vb, err := json.Marshal(r.vals[k])
		if err != nil {
			return nil, err
		}
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// ms converts nanoseconds to milliseconds.
func ms(ns int64) float64 { return float64(ns) / 1e6 }

// setLatency adds the percentiles of a latency snapshot under prefix.
func (r *Result) setLatency(prefix string, s *Snapshot) {
	r.set(prefix+"_p50_ms", ms(s.Quantile(0.50)))
	r.set(prefix+"_p90_ms", ms(s.Quantile(0.90)))
	r.set(prefix+"_p99_ms", ms(s.Quantile(0.99)))
	r.set(prefix+"_p999_ms", ms(s.Quantile(0.999)))
	r.set(prefix+"_max_ms", ms(s.Max))
	r.set(prefix+"_mean_ms", s.Mean()/1e6)
}

// setCPU adds the server's and the generator's CPU use between two samples,
// in total and per unit of work (units named by what, e.g. "delivery").
func (r *Result) setCPU(a, b probeSample, units int64, what string) {
	if a.cpu >= 0 && b.cpu >= 0 {
		cpu := b.cpu - a.cpu
		r.set("server_cpu_ms", float64(cpu)/float64(time.Millisecond))
		r.set("server_cpu_pct", 100*float64(cpu)/float64(b.at.Sub(a.at)))
		if units > 0 {
			r.set("server_cpu_us_per_"+what, float64(cpu)/float64(time.Microsecond)/float64(units))
		}
	}
	if b.rssKB >= 0 {
		r.set("server_rss_kb", b.rssKB)
	}
	gen := b.selfCP - a.selfCP
	r.set("gen_cpu_ms", float64(gen)/float64(time.Millisecond))
	if units > 0 {
		r.set("gen_cpu_us_per_"+what, float64(gen)/float64(time.Microsecond)/float64(units))
	}
	r.setSteal(a, b)
}

// setSteal adds the share of the machine's CPU time between two samples
// that the hypervisor took (steal): a run with much of it measured a
// slower machine.
func (r *Result) setSteal(a, b probeSample) {
	if a.total >= 0 && b.total > a.total {
		r.set("machine_steal_pct", 100*float64(b.steal-a.steal)/float64(b.total-a.total))
	}
}
