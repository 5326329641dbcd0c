package loadgen

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// RatePoint is a point of a rate ramp: at At (from the start of sending,
// warm-up included) the rate is Rate per second; between points it moves
// linearly, after the last one it stays.
type RatePoint struct {
	At   time.Duration `json:"at"`
	Rate float64       `json:"rate"`
}

// ParseRamp parses a ramp such as "0:1000/s,30s:5000/s": comma-separated
// time:rate points, times as Go durations (a bare 0 allowed) in
// ascending order from 0, rates per second with an optional "/s".
func ParseRamp(s string) ([]RatePoint, error) {
	var pts []RatePoint
	for _, part := range strings.Split(s, ",") {
		at, rate, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return nil, fmt.Errorf("ramp point %q: want time:rate, such as 30s:5000/s", part)
		}
		var d time.Duration
		if at != "0" {
			var err error
			if d, err = time.ParseDuration(at); err != nil {
				return nil, fmt.Errorf("ramp point %q: %v", part, err)
			}
		}
		r, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rate), "/s"), 64)
		if err != nil || r < 0 || math.IsInf(r, 0) || math.IsNaN(r) {
			return nil, fmt.Errorf("ramp point %q: rate must be a number ≥ 0 per second", part)
		}
		pts = append(pts, RatePoint{At: d, Rate: r})
	}
	if err := checkRamp(pts); err != nil {
		return nil, err
	}
	return pts, nil
}

func checkRamp(pts []RatePoint) error {
	if len(pts) == 0 || pts[0].At != 0 {
		return fmt.Errorf("a ramp starts with a point at 0, such as 0:100/s")
	}
	for i := 1; i < len(pts); i++ {
		if pts[i].At <= pts[i-1].At {
			return fmt.Errorf("ramp times must increase: %v after %v", pts[i].At, pts[i-1].At)
		}
	}
	for _, p := range pts {
		if p.Rate < 0 {
			return fmt.Errorf("ramp rate %v is negative", p.Rate)
		}
	}
	return nil
}

// schedule is an open-loop arrival process: event k is due at At(k),
// where the integral of the rate from 0 reaches k, whatever happened to
// event k-1. A constant rate r gives k/r.
type schedule struct {
	segs []segment
	n    int
}

// segment is a stretch of linearly changing rate, in seconds.
type segment struct {
	t0, t1 float64
	r0, r1 float64
	c0     float64 // events due before t0
}

func (g segment) count() float64 { return (g.r0 + g.r1) / 2 * (g.t1 - g.t0) }

// newSchedule builds the schedule of pts, scaled by scale (a worker's
// share), over length.
func newSchedule(pts []RatePoint, length time.Duration, scale float64) *schedule {
	s := &schedule{}
	end := length.Seconds()
	rateAt := func(t float64) float64 { // of the unscaled ramp
		i := sort.Search(len(pts), func(i int) bool { return pts[i].At.Seconds() > t }) - 1
		if i < 0 {
			i = 0
		}
		if i == len(pts)-1 {
			return pts[i].Rate
		}
		a, b := pts[i], pts[i+1]
		f := (t - a.At.Seconds()) / (b.At.Seconds() - a.At.Seconds())
		return a.Rate + f*(b.Rate-a.Rate)
	}
	var bounds []float64
	for _, p := range pts {
		if t := p.At.Seconds(); t < end {
			bounds = append(bounds, t)
		}
	}
	bounds = append(bounds, end)
	c := 0.0
	for i := 0; i+1 < len(bounds); i++ {
		g := segment{t0: bounds[i], t1: bounds[i+1], c0: c}
		g.r0 = rateAt(g.t0) * scale
		if i+1 < len(pts) && pts[i+1].At.Seconds() <= end {
			g.r1 = pts[i+1].Rate * scale // exact at the next point
		} else {
			g.r1 = rateAt(g.t1) * scale
		}
		c += g.count()
		s.segs = append(s.segs, g)
	}
	s.n = int(c + 1e-9)
	return s
}

// N is the number of events due within the length.
func (s *schedule) N() int { return s.n }

// At returns when event k (0-based) is due, from the start.
func (s *schedule) At(k int) time.Duration {
	x := float64(k)
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].c0 > x }) - 1
	for i > 0 && s.segs[i].count() == 0 {
		i-- // a stretch of rate 0 holds no event
	}
	g := s.segs[max(i, 0)]
	d := x - g.c0
	// Solve c0 + r0·τ + a·τ² = k with a = (r1-r0)/(2·len), in the form
	// that stays exact when a is 0 and when r0 is 0.
	a := (g.r1 - g.r0) / (2 * (g.t1 - g.t0))
	den := g.r0 + math.Sqrt(math.Max(g.r0*g.r0+4*a*d, 0))
	tau := 0.0
	if den > 0 {
		tau = 2 * d / den
	}
	return time.Duration((g.t0 + tau) * float64(time.Second))
}

// rampPoints is the ramp of cfg: Ramp if set, else the constant rate.
func (c *Config) rampPoints(rate float64) []RatePoint {
	if len(c.Ramp) > 0 {
		return c.Ramp
	}
	return []RatePoint{{At: 0, Rate: rate}}
}

// openLoop calls fire for each event of sch at its due time from start,
// until the schedule ends or stop closes. lag is how late the call is.
func openLoop(ctx context.Context, start time.Time, sch *schedule, stop <-chan struct{}, fire func(k int, intended time.Time, lag time.Duration)) error {
	for k := range sch.N() {
		intended := start.Add(sch.At(k))
		if d := time.Until(intended); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-stop:
				t.Stop()
				return nil
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
		} else {
			select {
			case <-stop:
				return nil
			default:
			}
		}
		fire(k, intended, time.Since(intended))
	}
	return ctx.Err()
}

// credits are the closed-loop slots of each sender: a send takes one, its
// answer gives it back.
type credits []chan struct{}

func newCredits(senders, inFlight int) credits {
	c := make(credits, senders)
	for i := range c {
		c[i] = make(chan struct{}, inFlight)
		for range inFlight {
			c[i] <- struct{}{}
		}
	}
	return c
}

// release gives sender i's slot back; extra releases are dropped.
func (c credits) release(i int) {
	if c == nil {
		return
	}
	select {
	case c[i] <- struct{}{}:
	default:
	}
}

// answered gives sender i's slot back once an error frame of code came:
// after a pause for rate_limited (the server asks to slow down; a closed
// loop that resent at once would only feed it errors), at once otherwise.
func (c credits) answered(i int, code string) {
	if c == nil {
		return
	}
	if code == "rate_limited" {
		time.AfterFunc(100*time.Millisecond, func() { c.release(i) })
		return
	}
	c.release(i)
}

// closedLoop runs one loop per sender: each sends whenever it holds a
// slot, until end or stop. The send's intended time is when it went.
func closedLoop(ctx context.Context, end time.Time, stop <-chan struct{}, c credits, fire func(i int, now time.Time)) error {
	over := make(chan struct{})
	t := time.AfterFunc(time.Until(end), func() { close(over) })
	defer t.Stop()
	done := make(chan struct{})
	for i := range c {
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				select {
				case <-c[i]:
				case <-over:
					return
				case <-stop:
					return
				case <-ctx.Done():
					return
				}
				now := time.Now()
				if !now.Before(end) {
					return
				}
				fire(i, now)
			}
		}()
	}
	for range c {
		<-done
	}
	return ctx.Err()
}
