package loadgen

import (
	"sync/atomic"
	"time"
)

// Kinds of events every sending scenario counts per second.
const (
	evSent = iota
	evAcked
	evDelivered
)

// series counts events per one-second bucket from a start instant shared
// by every worker, so that workers' series add up bucket by bucket.
// Adding is lock-free; events before the start are not counted and
// events past the last bucket land in it.
type series struct {
	names   []string
	start   atomic.Int64 // unix nanos; 0 until set
	buckets [][]atomic.Int64
}

func newSeries(seconds int, names ...string) *series {
	s := &series{names: names, buckets: make([][]atomic.Int64, len(names))}
	for i := range s.buckets {
		s.buckets[i] = make([]atomic.Int64, max(seconds, 1)+1)
	}
	return s
}

// begin sets the start instant.
func (s *series) begin(t time.Time) { s.start.Store(t.UnixNano()) }

// add counts one event of kind at now (unix nanos).
func (s *series) add(kind int, now int64) { s.addN(kind, now, 1) }

func (s *series) addN(kind int, now int64, n int64) {
	st := s.start.Load()
	if st == 0 || now < st {
		return
	}
	b := s.buckets[kind]
	i := min(int((now-st)/int64(time.Second)), len(b)-1)
	b[i].Add(n)
}

// snapshot returns the counts so far, trimmed after the last non-zero
// bucket of any kind.
func (s *series) snapshot() map[string][]int64 {
	last := -1
	for _, b := range s.buckets {
		for i := len(b) - 1; i > last; i-- {
			if b[i].Load() != 0 {
				last = i
				break
			}
		}
	}
	out := make(map[string][]int64, len(s.names))
	for k, name := range s.names {
		v := make([]int64, last+1)
		for i := range v {
			v[i] = s.buckets[k][i].Load()
		}
		out[name] = v
	}
	return out
}

// seriesSeconds is how many buckets a worker keeps: the longest the run
// may take.
func (c *Config) seriesSeconds() int { return int(c.Deadline.Seconds()) + 2 }

// addSeries adds b into a element by element.
func addSeries(a, b []int64) []int64 {
	if len(b) > len(a) {
		a = append(a, make([]int64, len(b)-len(a))...)
	}
	for i, v := range b {
		a[i] += v
	}
	return a
}

// sumSeries is the total of a series.
func sumSeries(s []int64) int64 {
	var n int64
	for _, v := range s {
		n += v
	}
	return n
}
