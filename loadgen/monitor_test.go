package loadgen

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/surgechat/surge/loadgen/internal/hist"
	"github.com/surgechat/surge/loadgen/internal/verify"
)

// TestMetricsExposition checks the text a scrape gets from merged figures.
func TestMetricsExposition(t *testing.T) {
	h := hist.New()
	for _, us := range []int64{200, 800, 3000, 40_000} {
		_ = h.RecordValue(us)
	}
	r := newResult()
	r.Hists["delivery"] = hist.FromHistogram(h)
	r.Series = map[string][]int64{"sent": {5, 7}, "acked": {5, 6}, "delivered": {4, 8}}
	r.Errors["rate_limited"] = 3
	r.Counts["open"], r.Counts["late"] = 20, 2
	r.Verify = &verify.Counts{Sent: 12, Lost: 1}
	m, err := merge([]*Result{r})
	if err != nil {
		t.Fatal(err)
	}
	mo := &monitor{cfg: &Config{Scenario: "group", RunID: "abc", Workers: 1}}
	mo.latest.Store(m)
	var b bytes.Buffer
	mo.write(&b)
	for _, want := range []string{
		`loadgen_info{scenario="group",run_id="abc",workers="1"} 1`,
		`loadgen_events_total{kind="sent"} 12`, `loadgen_events_total{kind="acked"} 11`, `loadgen_events_total{kind="delivered"} 12`,
		`loadgen_errors_total{code="rate_limited"} 3`, `loadgen_verify_total{check="lost"} 1`, `loadgen_count{name="late"} 2`,
		`loadgen_connections_open 20`,
		`loadgen_latency_seconds_bucket{op="delivery",le="0.0005"} 1`, `loadgen_latency_seconds_bucket{op="delivery",le="0.001"} 2`,
		`loadgen_latency_seconds_bucket{op="delivery",le="0.05"} 4`, `loadgen_latency_seconds_bucket{op="delivery",le="+Inf"} 4`,
		`loadgen_latency_seconds_count{op="delivery"} 4`,
	} {
		if !strings.Contains(b.String(), want+"\n") {
			t.Errorf("exposition lacks %q:\n%s", want, b.String())
		}
	}
}

// TestMetricsEndpointAndAbort runs the baseline scenario (no server
// needed) with /metrics on a free port, scrapes it while the run goes,
// and aborts the run with a breached objective: exit status 1, early.
func TestMetricsEndpointAndAbort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cfg := Config{
		Scenario: "baseline", Base: BaselineConfig{Conns: 8, Size: 128, Writers: 1}, Duration: time.Minute,
		MetricsListener: ln, Stderr: &lockedWriter{w: &stderr},
		// Rates are judged once two seconds of the window are in: time to
		// scrape first.
		SLOs: []string{"writes_window>=1", "rate>=1e12/s"}, AbortOnBreach: true,
	}
	type outcome struct {
		code int
		rep  string
	}
	done := make(chan outcome, 1)
	start := time.Now()
	go func() {
		rep, err := Run(context.Background(), cfg)
		var b bytes.Buffer
		if rep != nil {
			rep.WriteText(&b)
		}
		if err != nil {
			b.WriteString(err.Error())
		}
		done <- outcome{ExitCode(rep, err), b.String()}
	}()
	url := "http://" + ln.Addr().String() + "/metrics"
	var body string
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(body, `loadgen_events_total{kind="delivered"}`) || strings.Contains(body, `loadgen_events_total{kind="delivered"} 0`) {
		if time.Now().After(deadline) {
			t.Fatalf("no deliveries on /metrics:\n%s", body)
		}
		time.Sleep(50 * time.Millisecond)
		if resp, err := http.Get(url); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
		}
	}
	for _, want := range []string{`loadgen_info{scenario="baseline"`, "loadgen_connections_open 8", "process_resident_memory_bytes"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	out := <-done
	if out.code != 1 || !strings.Contains(out.rep, "ABORTED: SLO rate>=1e12/s breached") || !strings.Contains(out.rep, "SLO FAIL rate>=1e12/s") ||
		!strings.Contains(out.rep, "SLO PASS writes_window>=1") {
		t.Fatalf("exit %d, report:\n%s\nstderr:\n%s", out.code, out.rep, stderr.String())
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("the aborted run took %v of its minute", d)
	}
	if _, err := http.Get(url); err == nil {
		t.Fatal("/metrics still served after the run")
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
