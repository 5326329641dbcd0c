package hist

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"
)

// TestMergeAcrossWorkers records values in three "workers", moves their
// snapshots through JSON as worker processes do, and checks that the
// merge equals one histogram that saw every value.
func TestMergeAcrossWorkers(t *testing.T) {
	all := New()
	var snaps []*Snapshot
	rng := rand.New(rand.NewPCG(1, 2))
	for w := range 3 {
		r := NewRecorder()
		for range 10000 {
			us := 50 + rng.Int64N(int64(5000*(w+1)))
			r.Record(time.Duration(us) * time.Microsecond)
			_ = all.RecordValue(us)
		}
		b, err := json.Marshal(r.Snapshot())
		if err != nil {
			t.Fatal(err)
		}
		var s Snapshot
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatal(err)
		}
		snaps = append(snaps, &s)
	}
	got, err := Merge(append(snaps, nil)...)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equals(all) {
		t.Fatalf("merged histogram differs: count %d vs %d, p99 %d vs %d",
			got.TotalCount(), all.TotalCount(), got.ValueAtPercentile(99), all.ValueAtPercentile(99))
	}
	if Summarize(got) != Summarize(all) {
		t.Fatalf("summaries differ:\n%+v\n%+v", Summarize(got), Summarize(all))
	}
}

func TestPercentiles(t *testing.T) {
	r := NewRecorder()
	for us := int64(1); us <= 100000; us++ {
		r.Record(time.Duration(us) * time.Microsecond)
	}
	h, err := r.Snapshot().Histogram()
	if err != nil {
		t.Fatal(err)
	}
	s := Summarize(h)
	near := func(name string, got, want int64) {
		t.Helper()
		if d := float64(got-want) / float64(want); d < -0.001 || d > 0.001 {
			t.Errorf("%s = %d, want %d within 0.1%%", name, got, want)
		}
	}
	if s.Count != 100000 {
		t.Fatalf("count %d", s.Count)
	}
	near("p50", s.P50, 50000)
	near("p90", s.P90, 90000)
	near("p99", s.P99, 99000)
	near("p99.9", s.P999, 99900)
	near("p99.99", s.P9999, 99990)
	near("max", s.Max, 100000)
	if s.Min != 1 {
		t.Errorf("min %d, want 1", s.Min)
	}
}

func TestRecordClamps(t *testing.T) {
	r := NewRecorder()
	r.Record(0)
	r.Record(-time.Second)
	r.Record(5 * time.Minute)
	h, _ := r.Snapshot().Histogram()
	if h.TotalCount() != 3 || h.Min() != Lowest || h.Max() < Highest {
		t.Fatalf("count %d min %d max %d", h.TotalCount(), h.Min(), h.Max())
	}
}

func TestSnapshotRejectsGarbage(t *testing.T) {
	s := &Snapshot{Lowest: 1, Highest: 60_000_000, Sig: 3, Counts: [][2]int64{{5, -1}}}
	if _, err := s.Histogram(); err == nil {
		t.Fatal("negative count accepted")
	}
	s = &Snapshot{Lowest: 1, Highest: 60_000_000, Sig: 3, Counts: [][2]int64{{1 << 30, 1}}}
	if _, err := s.Histogram(); err == nil {
		t.Fatal("index beyond the geometry accepted")
	}
}

func TestMicros(t *testing.T) {
	f := func(us int64, want string) {
		t.Helper()
		if got := Micros(us); got != want {
			t.Errorf("Micros(%d) = %q, want %q", us, got, want)
		}
	}
	f(850, "850µs")
	f(3210, "3.21ms")
	f(1_500_000, "1.50s")
}

func TestCurveAndCumulative(t *testing.T) {
	h := New()
	for v := int64(1); v <= 1000; v++ {
		_ = h.RecordValue(v * 10) // 10µs .. 10ms
	}
	c := Curve(h)
	if len(c) != len(CurvePercentiles) || c[0].Micros != 10 || c[len(c)-1].Micros < 9990 {
		t.Fatalf("curve %+v", c)
	}
	for i := 1; i < len(c); i++ {
		if c[i].Micros < c[i-1].Micros || c[i].Percentile <= c[i-1].Percentile {
			t.Fatalf("curve not monotonic at %d: %+v", i, c)
		}
	}
	if Curve(New()) != nil {
		t.Fatal("curve of an empty histogram")
	}
	got := Cumulative(h, []int64{5, 100, 1000, 5000, 20000})
	want := []int64{0, 10, 100, 500, 1000}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Cumulative = %v, want %v", got, want)
		}
	}
}
