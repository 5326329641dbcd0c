package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	vm "github.com/VictoriaMetrics/metrics"

	"github.com/surgechat/surge/loadgen/internal/hist"
	"github.com/surgechat/surge/loadgen/internal/verify"
)

// monitor serves loadgen's own /metrics (Config.MetricsListen): the
// figures of the whole run, merged over workers once a second, in the
// Prometheus text format, so that a dashboard can show the generator
// beside the server:
//
//	loadgen_info{scenario,run_id} 1
//	loadgen_events_total{kind}           sent, acked, delivered, ... (the throughput series)
//	loadgen_errors_total{code}           error frames and HTTP errors by code
//	loadgen_verify_total{check}          verification counts (lost so far, duplicated, ...)
//	loadgen_count{name}                  the scenario's other counters (late, dropped, ...)
//	loadgen_connections_open
//	loadgen_latency_seconds_bucket{op,le} (and _sum, _count) per histogram
//
// plus the coordinator's process metrics. A nil monitor does nothing.
type monitor struct {
	cfg    *Config
	latest atomic.Pointer[merged]
	set    *vm.Set
	srv    *http.Server
	ln     net.Listener
	wg     sync.WaitGroup
}

// latencyBounds are the le bounds of the latency histograms, in
// microseconds.
var latencyBounds = []int64{100, 250, 500, 1000, 2500, 5000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
	1_000_000, 2_500_000, 5_000_000, 10_000_000, 30_000_000, 60_000_000}

func startMonitor(cfg *Config) (*monitor, error) {
	ln := cfg.MetricsListener
	if ln == nil {
		if cfg.MetricsListen == "" {
			return nil, nil
		}
		var err error
		if ln, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
			return nil, fmt.Errorf("%w: --metrics-listen: %v", ErrUsage, err)
		}
	}
	mo := &monitor{cfg: cfg, set: vm.NewSet(), ln: ln}
	mo.latest.Store(emptyMerged())
	mo.set.RegisterMetricsWriter(mo.write)
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		mo.set.WritePrometheus(w)
		vm.WriteProcessMetrics(w)
	})
	mo.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	mo.wg.Add(1)
	go func() {
		defer mo.wg.Done()
		_ = mo.srv.Serve(ln)
	}()
	fmt.Fprintf(cfg.Stderr, "loadgen: serving /metrics on http://%s/metrics\n", ln.Addr())
	return mo, nil
}

func (mo *monitor) update(m *merged) {
	if mo != nil {
		mo.latest.Store(m)
	}
}

func (mo *monitor) stop() {
	if mo == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = mo.srv.Shutdown(ctx)
	mo.wg.Wait()
}

func (mo *monitor) write(w io.Writer) {
	m := mo.latest.Load()
	fmt.Fprintf(w, "loadgen_info{scenario=%q,run_id=%q,workers=\"%d\"} 1\n", mo.cfg.Scenario, mo.cfg.RunID, mo.cfg.Workers)
	for _, k := range sortedKeys(m.Series) {
		fmt.Fprintf(w, "loadgen_events_total{kind=%q} %d\n", k, sumSeries(m.Series[k]))
	}
	for _, k := range sortedKeys(m.Errors) {
		fmt.Fprintf(w, "loadgen_errors_total{code=%q} %d\n", k, m.Errors[k])
	}
	if m.Verify != nil {
		for _, k := range sortedKeys(verifyFields(*m.Verify)) {
			fmt.Fprintf(w, "loadgen_verify_total{check=%q} %d\n", k, verifyFields(*m.Verify)[k])
		}
	}
	for _, k := range sortedKeys(m.Counts) {
		if k == "open" {
			continue
		}
		fmt.Fprintf(w, "loadgen_count{name=%q} %d\n", k, m.Counts[k])
	}
	vm.WriteGaugeUint64(w, "loadgen_connections_open", uint64(max(m.Counts["open"], 0)))
	for _, name := range sortedKeys(m.hists) {
		h := m.hists[name]
		cum := hist.Cumulative(h, latencyBounds)
		for i, le := range latencyBounds {
			fmt.Fprintf(w, "loadgen_latency_seconds_bucket{op=%q,le=%q} %d\n", name, strconv.FormatFloat(float64(le)/1e6, 'g', -1, 64), cum[i])
		}
		fmt.Fprintf(w, "loadgen_latency_seconds_bucket{op=%q,le=\"+Inf\"} %d\n", name, h.TotalCount())
		fmt.Fprintf(w, "loadgen_latency_seconds_sum{op=%q} %g\n", name, h.Mean()*float64(h.TotalCount())/1e6)
		fmt.Fprintf(w, "loadgen_latency_seconds_count{op=%q} %d\n", name, h.TotalCount())
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

// verifyFields are the verification counts by JSON name.
func verifyFields(c verify.Counts) map[string]int64 {
	b, _ := json.Marshal(c)
	var m map[string]int64
	_ = json.Unmarshal(b, &m)
	return m
}
