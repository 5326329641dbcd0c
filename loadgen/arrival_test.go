package loadgen

import (
	"context"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestScheduleConstant(t *testing.T) {
	s := newSchedule([]RatePoint{{0, 200}}, 2500*time.Millisecond, 1)
	if s.N() != 500 {
		t.Fatalf("N = %d, want 500", s.N())
	}
	for _, k := range []int{0, 1, 7, 499} {
		if got, want := s.At(k), time.Duration(k)*5*time.Millisecond; absDur(got-want) > time.Microsecond {
			t.Fatalf("At(%d) = %v, want %v", k, got, want)
		}
	}
	// A worker's share halves the rate and doubles the spacing.
	h := newSchedule([]RatePoint{{0, 200}}, 2500*time.Millisecond, 0.5)
	if h.N() != 250 || absDur(h.At(10)-100*time.Millisecond) > time.Microsecond {
		t.Fatalf("half share: N %d, At(10) %v", h.N(), h.At(10))
	}
}

// TestScheduleRamp: from 0 to 1000/s over 10s, the count due by t is
// 50·t², so event k is due at sqrt(k/50) seconds and 5000 fit.
func TestScheduleRamp(t *testing.T) {
	s := newSchedule([]RatePoint{{0, 0}, {10 * time.Second, 1000}}, 10*time.Second, 1)
	if s.N() != 5000 {
		t.Fatalf("N = %d, want 5000", s.N())
	}
	for _, k := range []int{0, 1, 50, 1250, 4999} {
		want := time.Duration(math.Sqrt(float64(k)/50) * float64(time.Second))
		if got := s.At(k); absDur(got-want) > time.Microsecond {
			t.Fatalf("At(%d) = %v, want %v", k, got, want)
		}
	}
	// Held after the last point: 10s at the ramp, then 1000/s for 5s more.
	s = newSchedule([]RatePoint{{0, 0}, {10 * time.Second, 1000}}, 15*time.Second, 1)
	if s.N() != 10000 || absDur(s.At(5000)-10*time.Second) > time.Microsecond || absDur(s.At(7500)-12500*time.Millisecond) > time.Microsecond {
		t.Fatalf("held: N %d At(5000) %v At(7500) %v", s.N(), s.At(5000), s.At(7500))
	}
	// Down, and cut short: 1000/s falling to 0 over 10s, run for 5s: the
	// rate at 5s is 500/s, so 3750 due.
	s = newSchedule([]RatePoint{{0, 1000}, {10 * time.Second, 0}}, 5*time.Second, 1)
	if s.N() != 3750 {
		t.Fatalf("falling: N = %d, want 3750", s.N())
	}
	// Times increase strictly through every kind of segment.
	s = newSchedule([]RatePoint{{0, 100}, {time.Second, 100}, {2 * time.Second, 0}, {3 * time.Second, 0}, {4 * time.Second, 300}}, 6*time.Second, 1)
	prev := time.Duration(-1)
	for k := range s.N() {
		at := s.At(k)
		if at <= prev || at > 6*time.Second {
			t.Fatalf("At(%d) = %v after %v", k, at, prev)
		}
		if at > 2*time.Second && at < 3*time.Second {
			t.Fatalf("At(%d) = %v falls where the rate is 0", k, at)
		}
		prev = at
	}
	// 100 + 50 + 0 + 150 + 600 = 900
	if s.N() != 900 {
		t.Fatalf("mixed: N = %d, want 900", s.N())
	}
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func TestParseRamp(t *testing.T) {
	pts, err := ParseRamp("0:1000/s, 30s:5000/s,1m:5000")
	if err != nil {
		t.Fatal(err)
	}
	want := []RatePoint{{0, 1000}, {30 * time.Second, 5000}, {time.Minute, 5000}}
	if len(pts) != len(want) {
		t.Fatalf("got %+v", pts)
	}
	for i := range want {
		if pts[i] != want[i] {
			t.Fatalf("got %+v, want %+v", pts, want)
		}
	}
	for _, bad := range []string{"", "1000/s", "5s:100/s", "0:100/s,10s:x", "0:100/s,10s:200/s,5s:300/s", "0:-5/s", "0:100/min", "0:100/s,abc:1"} {
		if _, err := ParseRamp(bad); err == nil {
			t.Errorf("ParseRamp(%q) accepted", bad)
		}
	}
}

func TestClosedLoop(t *testing.T) {
	c := newCredits(2, 3)
	var sent atomic.Int64
	end := time.Now().Add(300 * time.Millisecond)
	// Nothing answers: each sender stops at its 3 in flight.
	if err := closedLoop(context.Background(), end, nil, c, func(int, time.Time) { sent.Add(1) }); err != nil {
		t.Fatal(err)
	}
	if sent.Load() != 6 {
		t.Fatalf("%d sends with no answers, want 2 senders × 3 in flight", sent.Load())
	}
	// Answered at once: many more, and stop ends it.
	stop := make(chan struct{})
	sent.Store(0)
	c = newCredits(1, 1)
	time.AfterFunc(100*time.Millisecond, func() { close(stop) })
	start := time.Now()
	_ = closedLoop(context.Background(), time.Now().Add(time.Minute), stop, c, func(int, time.Time) { sent.Add(1); c.release(0) })
	if sent.Load() < 10 || time.Since(start) > 10*time.Second {
		t.Fatalf("%d sends in %v", sent.Load(), time.Since(start))
	}
}

func TestParseMix(t *testing.T) {
	seq, err := parseMix("login=2,register=1,history=3")
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, op := range seq {
		n[op]++
	}
	if len(seq) != 6 || n["login"] != 2 || n["register"] != 1 || n["history"] != 3 {
		t.Fatalf("sequence %q", seq)
	}
	if seq[0] == seq[1] && seq[1] == seq[2] {
		t.Fatalf("weights not spread: %q", seq)
	}
	for _, bad := range []string{"login", "login=x", "fly=1", "login=0", "login=-1"} {
		if _, err := parseMix(bad); err == nil || !strings.Contains(err.Error(), "mix") {
			t.Errorf("parseMix(%q) = %v", bad, err)
		}
	}
}

func TestSeriesMerge(t *testing.T) {
	start := time.Unix(1000, 0)
	a, b := newSeries(10, "sent", "delivered"), newSeries(10, "sent", "delivered")
	a.begin(start)
	b.begin(start)
	a.add(0, start.Add(-time.Second).UnixNano()) // before the start: not counted
	a.add(0, start.Add(100*time.Millisecond).UnixNano())
	a.add(0, start.Add(2500*time.Millisecond).UnixNano())
	b.addN(0, start.Add(2900*time.Millisecond).UnixNano(), 4)
	b.add(1, start.Add(time.Hour).UnixNano()) // past the end: the last bucket
	m, err := merge([]*Result{{Series: a.snapshot()}, {Series: b.snapshot()}})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Series["sent"]; len(got) != 11 || got[0] != 1 || got[2] != 5 || sumSeries(got) != 6 {
		t.Fatalf("sent %v", got)
	}
	if got := m.Series["delivered"]; got[10] != 1 {
		t.Fatalf("delivered %v", got)
	}
}
