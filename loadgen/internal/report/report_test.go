package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/surgechat/surge/loadgen/internal/hist"
	"github.com/surgechat/surge/loadgen/internal/slo"
	"github.com/surgechat/surge/loadgen/internal/verify"
)

func sample() *Report {
	r := New("direct")
	r.Latency["delivery"] = hist.Summary{Count: 10, Min: 100, Mean: 900, P50: 800, P90: 1500, P99: 4200, P999: 5000, P9999: 5100, Max: 5200}
	r.Rates["rate"] = 1999.5
	r.Counts["late"] = 3
	r.Percents["late_pct"] = 0.25
	r.Verify = &verify.Counts{Sent: 10, Acked: 10, Delivered: 9, Lost: 1}
	r.Errors["rate_limited"] = 4
	r.Server = &Server{PerConn: map[string]float64{"rss": 1400}}
	return r
}

func TestLookup(t *testing.T) {
	r := sample()
	f := func(metric, arg string, want float64, kind slo.Kind) {
		t.Helper()
		v, k, ok := r.Lookup(metric, arg)
		if !ok || v != want || k != kind {
			t.Fatalf("Lookup(%s, %s) = %v %v %v, want %v %v", metric, arg, v, k, ok, want, kind)
		}
	}
	f("p50", "delivery", 800, slo.Duration)
	f("p99", "delivery", 4200, slo.Duration)
	f("p99.9", "delivery", 5000, slo.Duration)
	f("p99.99", "delivery", 5100, slo.Duration)
	f("max", "delivery", 5200, slo.Duration)
	f("mean", "delivery", 900, slo.Duration)
	f("count", "delivery", 10, slo.Number)
	f("rate", "", 1999.5, slo.Rate)
	f("late", "", 3, slo.Number)
	f("late_pct", "", 0.25, slo.Percent)
	f("lost", "", 1, slo.Number)
	f("errors", "", 4, slo.Number)
	f("errors.rate_limited", "", 4, slo.Number)
	f("errors.unavailable", "", 0, slo.Number)
	f("server_rss_per_conn", "", 1400, slo.Bytes)
	for _, m := range [][2]string{{"p95", "delivery"}, {"p99", "ack"}, {"nope", ""}, {"server_x_per_conn", ""}} {
		if _, _, ok := r.Lookup(m[0], m[1]); ok {
			t.Errorf("Lookup(%s, %s) found a metric the report lacks", m[0], m[1])
		}
	}
}

func TestWriteText(t *testing.T) {
	r := sample()
	r.SLOs = []slo.Result{{SLO: "lost==0", Pass: false, Actual: "1"}}
	var b bytes.Buffer
	r.WriteText(&b)
	for _, want := range []string{"delivery", "4.20ms", "rate 1999.5/s", "verify     FAILED", "lost 1", "rate_limited=4",
		"rss +1400 B/conn", "SLO FAIL lost==0 (actual 1)", "RESULT: FAIL"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
}
