package report

import (
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"strings"

	"github.com/surgechat/surge/loadgen/internal/hist"
)

const css = `body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1000px;color:#222}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:6px 0}td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:right}
th{background:#fafafa}td:first-child,th:first-child{text-align:left}.pass{color:#1a7f37;font-weight:600}
.fail{color:#c62828;font-weight:600}.warn{background:#fff4e5;padding:6px 10px;margin:4px 0}
.meta{color:#555}svg .t{font-size:14px;font-weight:600}svg .s{font-size:11px;fill:#444}`

// WriteHTML writes the report as one self-contained HTML file: no script,
// no external assets.
func (r *Report) WriteHTML(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := r.RenderHTML(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// RenderHTML writes the HTML report to w: the verdict, the SLO table,
// verification counts, throughput over time, latency percentiles and
// their curves, and every other figure of the report.
func (r *Report) RenderHTML(w io.Writer) error {
	var b strings.Builder
	e := html.EscapeString
	verdict := `<span class="pass">PASS</span>`
	if !r.Pass {
		verdict = `<span class="fail">FAIL</span>`
	}
	fmt.Fprintf(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>loadgen %s: %s</title><style>%s</style></head><body>\n",
		e(r.Scenario), map[bool]string{true: "PASS", false: "FAIL"}[r.Pass], css)
	fmt.Fprintf(&b, "<h1>loadgen %s: %s</h1>\n", e(r.Scenario), verdict)
	fmt.Fprintf(&b, `<p class="meta">target %s · started %s · %d worker(s) · %.1fs measured, %.1fs total · report version %d</p>`+"\n",
		e(r.Target), r.StartedAt.Format("2006-01-02 15:04:05 MST"), r.Workers, r.Window, r.Elapsed, r.Version)
	if r.Aborted != "" {
		fmt.Fprintf(&b, `<p class="warn"><b>Aborted:</b> %s</p>`+"\n", e(r.Aborted))
	}
	for _, m := range r.Warnings {
		fmt.Fprintf(&b, `<p class="warn">%s</p>`+"\n", e(m))
	}

	b.WriteString("<h2 id=\"slos\">SLOs</h2>\n")
	if len(r.SLOs) == 0 {
		b.WriteString("<p>No objectives were set.</p>\n")
	} else {
		b.WriteString("<table><tr><th>objective</th><th>actual</th><th>verdict</th></tr>\n")
		for _, s := range r.SLOs {
			v := `<span class="pass">PASS</span>`
			if !s.Pass {
				v = `<span class="fail">FAIL</span>`
			}
			fmt.Fprintf(&b, "<tr><td><code>%s</code></td><td>%s</td><td>%s</td></tr>\n", e(s.SLO), e(s.Actual), v)
		}
		b.WriteString("</table>\n")
	}

	if v := r.Verify; v != nil {
		b.WriteString("<h2 id=\"verification\">Verification</h2>\n<table><tr><th>count</th><th>value</th></tr>\n")
		for _, k := range sortedKeys(verifyCounts(*v)) {
			n := verifyCounts(*v)[k]
			cls := ""
			if n != 0 && (k == "lost" || k == "duplicated" || k == "reordered" || k == "gaps" || k == "unknown" || k == "order_mismatch") {
				cls = ` class="fail"`
			}
			fmt.Fprintf(&b, "<tr><td>%s</td><td%s>%d</td></tr>\n", e(k), cls, n)
		}
		b.WriteString("</table>\n")
	}

	b.WriteString("<h2 id=\"throughput\">Throughput over time</h2>\n")
	if r.Throughput == nil || len(r.Throughput.Series) == 0 {
		b.WriteString("<p>No time series.</p>\n")
	} else {
		throughputChart(&b, r.Throughput)
	}
	if len(r.Rates) > 0 {
		b.WriteString("<table><tr><th>rate over the window</th><th>per second</th></tr>\n")
		for _, k := range sortedKeys(r.Rates) {
			fmt.Fprintf(&b, "<tr><td>%s</td><td>%.1f</td></tr>\n", e(k), r.Rates[k])
		}
		b.WriteString("</table>\n")
	}

	b.WriteString("<h2 id=\"latency\">Latency</h2>\n")
	if len(r.Latency) == 0 {
		b.WriteString("<p>No latencies.</p>\n")
	} else {
		b.WriteString("<table><tr><th>histogram</th><th>count</th><th>min</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>p99.99</th><th>max</th></tr>\n")
		for _, k := range sortedKeys(r.Latency) {
			s := r.Latency[k]
			fmt.Fprintf(&b, "<tr><td>%s</td><td>%d</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n",
				e(k), s.Count, hist.Micros(s.Min), hist.Micros(s.P50), hist.Micros(s.P90), hist.Micros(s.P99),
				hist.Micros(s.P999), hist.Micros(s.P9999), hist.Micros(s.Max))
		}
		b.WriteString("</table>\n")
		curveChart(&b, r.Curves)
	}

	figures := []struct {
		title string
		m     map[string]string
	}{{"Counts", fmtMap(r.Counts)}, {"Percentages", fmtMap(r.Percents)}, {"Errors by code", fmtMap(r.Errors)}, {"Parameters", fmtMap(r.Params)}}
	for _, f := range figures {
		if len(f.m) == 0 {
			continue
		}
		fmt.Fprintf(&b, "<h2>%s</h2>\n<table>\n", f.title)
		for _, k := range sortedKeys(f.m) {
			fmt.Fprintf(&b, "<tr><td>%s</td><td>%s</td></tr>\n", e(k), e(f.m[k]))
		}
		b.WriteString("</table>\n")
	}
	if s := r.Server; s != nil {
		fmt.Fprintf(&b, "<h2>Server</h2>\n<p>%s: %.0f connections held</p>\n<table><tr><th>metric</th><th>bytes per connection</th></tr>\n", e(s.URL), s.Conns)
		for _, k := range sortedKeys(s.PerConn) {
			fmt.Fprintf(&b, "<tr><td>%s</td><td>%.0f</td></tr>\n", e(k), s.PerConn[k])
		}
		b.WriteString("</table>\n")
	}
	b.WriteString("</body></html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func fmtMap[V any](m map[string]V) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = fmt.Sprint(fmtVal(v))
	}
	return out
}

func throughputChart(b *strings.Builder, t *Throughput) {
	var lines []line
	peak, n := 0.0, 0
	for _, k := range sortedKeys(t.Series) {
		s := t.Series[k]
		l := line{name: k + "/s"}
		for i, c := range s {
			rate := float64(c) / t.BucketSeconds
			l.xs = append(l.xs, (float64(i)+0.5)*t.BucketSeconds)
			l.ys = append(l.ys, rate)
			peak = math.Max(peak, rate)
		}
		n = max(n, len(s))
		lines = append(lines, l)
	}
	xmax := math.Max(float64(n)*t.BucketSeconds, 1)
	xtop, xt := niceTicks(xmax, 8, func(v float64) string { return fmtNum(v) + "s" })
	ytop, yt := niceTicks(peak, 5, fmtNum)
	chart(b, "events per second", axis{label: "seconds since start", max: xtop, ticks: xt},
		axis{label: "per second", max: ytop, ticks: yt}, lines, &band{t.WindowFrom, t.WindowTo, "measured window"})
}

// curveX places percentile p on a log scale of 1/(1-p): 90% at 1, 99% at
// 2, 99.9% at 3, ..., the maximum at 6.
func curveX(p float64) float64 {
	if p >= 99.9999 {
		return 6
	}
	return math.Log10(100 / (100 - p))
}

func curveChart(b *strings.Builder, curves map[string][]hist.Point) {
	var lines []line
	peak := 0.0
	for _, k := range sortedKeys(curves) {
		l := line{name: k}
		for _, pt := range curves[k] {
			l.xs = append(l.xs, curveX(pt.Percentile))
			l.ys = append(l.ys, float64(pt.Micros)/1e3)
			peak = math.Max(peak, float64(pt.Micros)/1e3)
		}
		if len(l.xs) > 0 {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return
	}
	xt := []tick{{0, "0%"}, {1, "90%"}, {2, "99%"}, {3, "99.9%"}, {4, "99.99%"}, {5, "99.999%"}, {6, "max"}}
	ytop, yt := niceTicks(peak, 5, func(v float64) string { return fmtNum(v) + "ms" })
	chart(b, "latency by percentile", axis{label: "percentile (log scale of 1/(1-p))", max: 6, ticks: xt},
		axis{label: "latency (ms)", max: ytop, ticks: yt}, lines, nil)
}
