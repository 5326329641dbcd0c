// Package hist records latencies in HDR histograms (1µs to 60s, three
// significant digits) and moves them between processes as compact sparse
// snapshots that merge exactly.
package hist

import (
	"fmt"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Geometry of every loadgen histogram: values are microseconds.
const (
	Lowest  = 1          // 1µs
	Highest = 60_000_000 // 60s
	Sig     = 3
)

// New returns an empty histogram with loadgen's geometry.
func New() *hdrhistogram.Histogram { return hdrhistogram.New(Lowest, Highest, Sig) }

// Recorder is a histogram that is safe for concurrent use.
type Recorder struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{h: New()} }

// Record adds d, clamped to [1µs, 60s]: a latency beyond the range still
// counts, as 60s, rather than vanishing.
func (r *Recorder) Record(d time.Duration) {
	v := min(max(d.Microseconds(), Lowest), Highest)
	r.mu.Lock()
	_ = r.h.RecordValue(v)
	r.mu.Unlock()
}

// Snapshot returns the recorded values so far.
func (r *Recorder) Snapshot() *Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return FromHistogram(r.h)
}

// Snapshot is a histogram in transit: its geometry and the non-zero
// counts as [index, count] pairs of hdrhistogram's Export layout.
type Snapshot struct {
	Lowest  int64      `json:"lo"`
	Highest int64      `json:"hi"`
	Sig     int64      `json:"sig"`
	Counts  [][2]int64 `json:"c"`
}

// FromHistogram exports h sparsely.
func FromHistogram(h *hdrhistogram.Histogram) *Snapshot {
	e := h.Export()
	s := &Snapshot{Lowest: e.LowestTrackableValue, Highest: e.HighestTrackableValue, Sig: e.SignificantFigures}
	for i, c := range e.Counts {
		if c != 0 {
			s.Counts = append(s.Counts, [2]int64{int64(i), c})
		}
	}
	return s
}

// Histogram imports s, checking it the way hdrhistogram's Validate does.
func (s *Snapshot) Histogram() (*hdrhistogram.Histogram, error) {
	if s == nil {
		return New(), nil
	}
	e := &hdrhistogram.Snapshot{
		LowestTrackableValue:  s.Lowest,
		HighestTrackableValue: s.Highest,
		SignificantFigures:    s.Sig,
	}
	if err := e.Validate(); err != nil { // the geometry, before sizing anything by it
		return nil, fmt.Errorf("hist: %w", err)
	}
	e.Counts = hdrhistogram.Import(e).Export().Counts
	for _, ic := range s.Counts {
		if ic[0] < 0 || ic[0] >= int64(len(e.Counts)) {
			return nil, fmt.Errorf("hist: snapshot index %d outside the histogram's %d counts", ic[0], len(e.Counts))
		}
		e.Counts[ic[0]] = ic[1]
	}
	if err := e.Validate(); err != nil {
		return nil, fmt.Errorf("hist: %w", err)
	}
	return hdrhistogram.Import(e), nil
}

// Merge imports every snapshot into one histogram with loadgen's geometry.
// Nil snapshots are skipped.
func Merge(snaps ...*Snapshot) (*hdrhistogram.Histogram, error) {
	out := New()
	for _, s := range snaps {
		if s == nil {
			continue
		}
		h, err := s.Histogram()
		if err != nil {
			return nil, err
		}
		if dropped := out.Merge(h); dropped != 0 {
			return nil, fmt.Errorf("hist: %d values outside 1µs..60s", dropped)
		}
	}
	return out, nil
}

// Summary is what reports print of a histogram; values in microseconds.
type Summary struct {
	Count int64   `json:"count"`
	Min   int64   `json:"min_us"`
	Mean  float64 `json:"mean_us"`
	P50   int64   `json:"p50_us"`
	P90   int64   `json:"p90_us"`
	P99   int64   `json:"p99_us"`
	P999  int64   `json:"p99_9_us"`
	P9999 int64   `json:"p99_99_us"`
	Max   int64   `json:"max_us"`
}

// Summarize computes h's summary.
func Summarize(h *hdrhistogram.Histogram) Summary {
	if h.TotalCount() == 0 {
		return Summary{}
	}
	return Summary{
		Count: h.TotalCount(),
		Min:   h.Min(),
		Mean:  h.Mean(),
		P50:   h.ValueAtPercentile(50),
		P90:   h.ValueAtPercentile(90),
		P99:   h.ValueAtPercentile(99),
		P999:  h.ValueAtPercentile(99.9),
		P9999: h.ValueAtPercentile(99.99),
		Max:   h.Max(),
	}
}

// Micros formats a value in microseconds for people: 850µs, 3.21ms, 1.50s.
func Micros(us int64) string {
	switch {
	case us < 1000:
		return fmt.Sprintf("%dµs", us)
	case us < 1_000_000:
		return fmt.Sprintf("%.2fms", float64(us)/1e3)
	default:
		return fmt.Sprintf("%.2fs", float64(us)/1e6)
	}
}

// CurvePercentiles are the points of a percentile curve: dense towards the
// tail, where latency lives.
var CurvePercentiles = []float64{0, 10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 92.5, 95, 96.25, 97.5, 98.25, 99,
	99.375, 99.5, 99.75, 99.875, 99.9, 99.95, 99.975, 99.99, 99.995, 99.999, 100}

// Point is one point of a percentile curve: the latency in microseconds
// at or below which Percentile percent of the values lie.
type Point struct {
	Percentile float64 `json:"p"`
	Micros     int64   `json:"us"`
}

// Curve returns h's percentile curve at CurvePercentiles, or nil for an
// empty histogram.
func Curve(h *hdrhistogram.Histogram) []Point {
	if h.TotalCount() == 0 {
		return nil
	}
	out := make([]Point, 0, len(CurvePercentiles))
	for _, p := range CurvePercentiles {
		v := h.ValueAtPercentile(p)
		switch p {
		case 0:
			v = h.Min()
		case 100:
			v = h.Max()
		}
		out = append(out, Point{Percentile: p, Micros: v})
	}
	return out
}

// Cumulative returns, for each bound (microseconds, ascending), how many
// values of h are at or below it: the buckets of a Prometheus histogram.
// A value is placed by the lower end of its HDR bucket, so counts are
// exact to the histogram's precision (a value up to 0.1% above a bound
// may count below it).
func Cumulative(h *hdrhistogram.Histogram, bounds []int64) []int64 {
	out := make([]int64, len(bounds))
	if h.TotalCount() == 0 {
		return out
	}
	for _, b := range h.Distribution() {
		if b.Count == 0 {
			continue
		}
		for i := len(bounds) - 1; i >= 0 && b.From <= bounds[i]; i-- {
			out[i] += b.Count
		}
	}
	return out
}
