// Package metrics serves the metric sets that components own on one
// Prometheus-format /metrics handler, and holds the histogram buckets that
// Surge's latency metrics share.
//
// Components create their own *metrics.Set (github.com/VictoriaMetrics/metrics)
// and declare counters where they are used; nothing here is global, so tests
// may run several components in one process.
package metrics

import (
	"net/http"

	vm "github.com/VictoriaMetrics/metrics"
)

// LatencyBuckets are the upper bounds, in seconds, of every latency
// histogram: fine below 10 ms, where the SLOs live, coarse above.
var LatencyBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01,
	0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// Histogram creates a latency histogram in set with LatencyBuckets.
func Histogram(set *vm.Set, name string) *vm.PrometheusHistogram {
	return set.NewPrometheusHistogramExt(name, LatencyBuckets)
}

// Handler serves sets, and the Go runtime and process metrics, in
// Prometheus text format.
func Handler(sets ...*vm.Set) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		for _, s := range sets {
			s.WritePrometheus(w)
		}
		vm.WriteProcessMetrics(w)
	})
}
