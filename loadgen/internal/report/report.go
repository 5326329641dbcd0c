// Package report holds the outcome of a loadgen run: the versioned JSON
// document that --json writes, the summary people read, and the figures
// SLOs are checked against.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/surgechat/surge/loadgen/internal/hist"
	"github.com/surgechat/surge/loadgen/internal/slo"
	"github.com/surgechat/surge/loadgen/internal/verify"
)

// Version is the JSON report's schema version. Adding fields keeps it;
// renaming or removing one bumps it.
const Version = 1

// Report is one run's outcome.
type Report struct {
	Version   int                     `json:"version"`
	Scenario  string                  `json:"scenario"`
	Target    string                  `json:"target"`
	StartedAt time.Time               `json:"started_at"`
	Workers   int                     `json:"workers"`
	Params    map[string]any          `json:"params"`    // the scenario's settings
	Elapsed   float64                 `json:"elapsed_s"` // wall time of the whole run
	Window    float64                 `json:"window_s"`  // the measured window, warm-up excluded
	Counts    map[string]int64        `json:"counts"`    // scenario counters, such as established or late
	Rates     map[string]float64      `json:"rates"`     // per second over the window; "rate" is the headline
	Percents  map[string]float64      `json:"percents"`  // ratios as 0..100, such as late_pct
	Latency   map[string]hist.Summary `json:"latency"`   // histograms by name, microseconds
	// Curves are the latency distributions: each histogram's percentile
	// curve, for charts.
	Curves map[string][]hist.Point `json:"latency_curves"`
	// Throughput is what happened in each second of the run.
	Throughput *Throughput      `json:"throughput,omitempty"`
	Verify     *verify.Counts   `json:"verification,omitempty"`
	Errors     map[string]int64 `json:"errors"` // server error frames by code
	Server     *Server          `json:"server,omitempty"`
	SLOs       []slo.Result     `json:"slos"`
	Warnings   []string         `json:"warnings"`
	// Aborted says why the run was stopped early (--abort-on-breach), or
	// is empty for a run that went its whole length.
	Aborted string `json:"aborted,omitempty"`
	Pass    bool   `json:"pass"`
}

// Throughput is a time series of event counts per bucket, from the
// instant every worker started (the second after the connections were
// made).
type Throughput struct {
	BucketSeconds float64 `json:"bucket_s"`
	// WindowFrom and WindowTo bound the measured window, in seconds from
	// the start: warm-up before it, drain after it.
	WindowFrom float64 `json:"window_from_s"`
	WindowTo   float64 `json:"window_to_s"`
	// Series are counts per bucket by kind: sent, acked, delivered, ...
	Series map[string][]int64 `json:"series"`
}

// Server is what /metrics of the server said before the run and while
// its connections were held.
type Server struct {
	URL     string             `json:"url"`
	Before  map[string]float64 `json:"before"`
	Held    map[string]float64 `json:"held"`
	Conns   float64            `json:"connections"`    // connections held at the second scrape, by the server's count
	PerConn map[string]float64 `json:"per_conn_bytes"` // delta of each memory metric / Conns
}

// New returns an empty report with every map allocated.
func New(scenario string) *Report {
	return &Report{
		Version: Version, Scenario: scenario, Params: map[string]any{},
		Counts: map[string]int64{}, Rates: map[string]float64{}, Percents: map[string]float64{},
		Latency: map[string]hist.Summary{}, Curves: map[string][]hist.Point{}, Errors: map[string]int64{},
		SLOs: []slo.Result{}, Warnings: []string{},
	}
}

var percentile = regexp.MustCompile(`^p(\d{1,2}(?:\.\d+)?)$`)

// Lookup implements slo.Source:
//   - pNN(h), p99.9(h), min(h), mean(h), max(h): durations of histogram h; count(h) its count
//   - rate and other Rates keys: per second
//   - lost, duplicated, reordered, gaps, ...: verification counts
//   - Counts keys, "errors" (all error frames) and errors.<code>
//   - Percents keys, such as late_pct
//   - server_<metric>_per_conn: bytes per connection on the server
func (r *Report) Lookup(metric, arg string) (float64, slo.Kind, bool) {
	if arg != "" {
		s, ok := r.Latency[arg]
		if !ok {
			return 0, 0, false
		}
		switch metric {
		case "min":
			return float64(s.Min), slo.Duration, true
		case "mean":
			return s.Mean, slo.Duration, true
		case "max":
			return float64(s.Max), slo.Duration, true
		case "count":
			return float64(s.Count), slo.Number, true
		}
		m := percentile.FindStringSubmatch(metric)
		if m == nil {
			return 0, 0, false
		}
		p, _ := strconv.ParseFloat(m[1], 64)
		switch p {
		case 50:
			return float64(s.P50), slo.Duration, true
		case 90:
			return float64(s.P90), slo.Duration, true
		case 99:
			return float64(s.P99), slo.Duration, true
		case 99.9:
			return float64(s.P999), slo.Duration, true
		case 99.99:
			return float64(s.P9999), slo.Duration, true
		}
		return 0, 0, false // only the printed percentiles travel in the report
	}
	if v, ok := r.Rates[metric]; ok {
		return v, slo.Rate, true
	}
	if v, ok := r.Percents[metric]; ok {
		return v, slo.Percent, true
	}
	if v, ok := r.Counts[metric]; ok {
		return float64(v), slo.Number, true
	}
	if r.Verify != nil {
		if v, ok := verifyCounts(*r.Verify)[metric]; ok {
			return float64(v), slo.Number, true
		}
	}
	if metric == "errors" {
		var n int64
		for _, v := range r.Errors {
			n += v
		}
		return float64(n), slo.Number, true
	}
	if code, ok := strings.CutPrefix(metric, "errors."); ok {
		return float64(r.Errors[code]), slo.Number, true
	}
	if r.Server != nil {
		if name, ok := strings.CutSuffix(strings.TrimPrefix(metric, "server_"), "_per_conn"); ok {
			if v, ok := r.Server.PerConn[name]; ok {
				return v, slo.Bytes, true
			}
		}
	}
	return 0, 0, false
}

func verifyCounts(c verify.Counts) map[string]int64 {
	b, _ := json.Marshal(c)
	var m map[string]int64
	_ = json.Unmarshal(b, &m)
	return m
}

// WriteJSON writes the report to path.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// WriteText writes the summary for people.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "loadgen %s against %s: %d worker(s), %.1fs measured (%.1fs total)\n",
		r.Scenario, r.Target, r.Workers, r.Window, r.Elapsed)
	fmt.Fprintf(w, "  params     %s\n", kv(r.Params))
	if len(r.Rates) > 0 {
		keys := sortedKeys(r.Rates)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s %.1f/s", k, r.Rates[k])
		}
		fmt.Fprintf(w, "  throughput %s\n", strings.Join(parts, "  "))
	}
	if len(r.Latency) > 0 {
		width := 10
		for k := range r.Latency {
			width = max(width, len(k))
		}
		fmt.Fprintf(w, "  latency    %-*s %9s %9s %9s %9s %9s %9s %9s\n", width, "", "count", "p50", "p90", "p99", "p99.9", "p99.99", "max")
		for _, k := range sortedKeys(r.Latency) {
			s := r.Latency[k]
			fmt.Fprintf(w, "             %-*s %9d %9s %9s %9s %9s %9s %9s\n", width, k, s.Count,
				hist.Micros(s.P50), hist.Micros(s.P90), hist.Micros(s.P99), hist.Micros(s.P999), hist.Micros(s.P9999), hist.Micros(s.Max))
		}
	}
	if len(r.Counts) > 0 {
		fmt.Fprintf(w, "  counts     %s\n", kv(r.Counts))
	}
	if len(r.Percents) > 0 {
		fmt.Fprintf(w, "  percents   %s\n", kv(r.Percents))
	}
	if r.Verify != nil {
		v := r.Verify
		verdict := "OK"
		if !v.OK() {
			verdict = "FAILED"
		}
		fmt.Fprintf(w, "  verify     %s: sent %d acked %d failed %d unanswered %d delivered %d | lost %d duplicated %d reordered %d gaps %d unknown %d order-mismatch %d | delivered-unacked %d\n",
			verdict, v.Sent, v.Acked, v.Failed, v.Unanswered, v.Delivered, v.Lost, v.Duplicated, v.Reordered, v.Gaps, v.Unknown, v.OrderMismatch, v.DeliveredUnacked)
	}
	if len(r.Errors) > 0 {
		fmt.Fprintf(w, "  errors     %s\n", kv(r.Errors))
	}
	if s := r.Server; s != nil {
		fmt.Fprintf(w, "  server     %s: %.0f connections held", s.URL, s.Conns)
		for _, k := range sortedKeys(s.PerConn) {
			fmt.Fprintf(w, ", %s %+.0f B/conn", k, s.PerConn[k])
		}
		fmt.Fprintln(w)
	}
	for _, m := range r.Warnings {
		fmt.Fprintf(w, "WARNING: %s\n", m)
	}
	if r.Aborted != "" {
		fmt.Fprintf(w, "ABORTED: %s\n", r.Aborted)
	}
	for _, s := range r.SLOs {
		verdict := "PASS"
		if !s.Pass {
			verdict = "FAIL"
		}
		fmt.Fprintf(w, "SLO %s %s (actual %s)\n", verdict, s.SLO, s.Actual)
	}
	if r.Pass {
		fmt.Fprintln(w, "RESULT: PASS")
	} else {
		fmt.Fprintln(w, "RESULT: FAIL")
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func kv[V any](m map[string]V) string {
	var b strings.Builder
	for i, k := range sortedKeys(m) {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%v", k, fmtVal(m[k]))
	}
	return b.String()
}

func fmtVal(v any) any {
	switch x := v.(type) {
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case time.Duration:
		return x.String()
	}
	return v
}
