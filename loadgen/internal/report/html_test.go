package report

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/surgechat/surge/loadgen/internal/hist"
	"github.com/surgechat/surge/loadgen/internal/slo"
)

func TestRenderHTML(t *testing.T) {
	r := sample()
	r.Scenario = "group"
	r.SLOs = []slo.Result{{SLO: "lost==0", Pass: false, Actual: "1"}, {SLO: "p99(delivery)<10ms", Pass: true, Actual: "4.20ms"}}
	r.Curves["delivery"] = []hist.Point{{Percentile: 0, Micros: 100}, {Percentile: 50, Micros: 800}, {Percentile: 99, Micros: 4200}, {Percentile: 100, Micros: 5200}}
	r.Curves["ack"] = []hist.Point{{Percentile: 0, Micros: 50}, {Percentile: 100, Micros: 900}}
	r.Throughput = &Throughput{BucketSeconds: 1, WindowFrom: 2, WindowTo: 12,
		Series: map[string][]int64{"sent": {0, 100, 200, 200}, "delivered": {0, 90, 210, 200}}}
	r.Warnings = append(r.Warnings, "a <b>warning</b> & more")
	r.Aborted = "SLO rate>=1/s breached"
	var b bytes.Buffer
	if err := r.RenderHTML(&b); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	for _, want := range []string{
		"<!DOCTYPE html>", "loadgen group: <span class=\"fail\">FAIL</span>",
		`<h2 id="slos">SLOs</h2>`, "<code>lost==0</code>", "<code>p99(delivery)&lt;10ms</code>",
		`<h2 id="verification">Verification</h2>`, "<td>lost</td><td class=\"fail\">1</td>",
		`<h2 id="throughput">Throughput over time</h2>`, "events per second", "measured window", "delivered/s", "sent/s",
		`<h2 id="latency">Latency</h2>`, "latency by percentile", "99.9%", "4.20ms",
		"a &lt;b&gt;warning&lt;/b&gt; &amp; more", "Aborted:", "rate_limited", "<svg", "<polyline",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	// One file: no script, no external assets.
	for _, bad := range []string{"<script", "src=", "href=", "<link", "@import", "url("} {
		if strings.Contains(html, bad) {
			t.Errorf("HTML contains %q", bad)
		}
	}
	if n := strings.Count(html, "<svg"); n != 2 {
		t.Errorf("%d charts, want 2", n)
	}

	// An empty report still renders every section.
	e := New("idle")
	b.Reset()
	if err := e.RenderHTML(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"No objectives were set.", "No time series.", "No latencies."} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("empty report lacks %q", want)
		}
	}
	path := filepath.Join(t.TempDir(), "r.html")
	if err := r.WriteHTML(path); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != html {
		t.Fatal("WriteHTML wrote something else than RenderHTML")
	}
}

func TestNiceTicks(t *testing.T) {
	f := func(max float64, wantTop float64) {
		t.Helper()
		top, ticks := niceTicks(max, 5, fmtNum)
		if top != wantTop || ticks[0].v != 0 || ticks[len(ticks)-1].v != top {
			t.Fatalf("niceTicks(%v) = %v %+v, want top %v", max, top, ticks, wantTop)
		}
	}
	f(4200, 5000)
	f(1, 1)
	f(0, 1)
	f(99, 100)
	f(12345, 12500)
}
