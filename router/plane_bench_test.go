package router

import (
	"bytes"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
)

// countSink counts what reaches an edge.
type countSink struct {
	delivered, bytes, announces atomic.Int64
}

func (s *countSink) Deliver(_ string, payload []byte) {
	s.bytes.Add(int64(len(payload)))
	s.delivered.Add(1)
}
func (s *countSink) Ready(string, uint64)   {}
func (s *countSink) Announce(int32)         { s.announces.Add(1) }
func (s *countSink) Publish(string, []byte) {}

// BenchmarkPlaneTCPDeliver pushes 200-byte deliveries from a shard's Plane
// through loopback plane connections to edge sinks, round-robin over the
// edges, and stops the clock only once every delivery has reached its
// sink. The shard keeps at most window deliveries in flight per edge, well
// under QueueBytes, so nothing is dropped: the figure is the plane's
// throughput, not the speed of dropping. Allocations count both sides.
func BenchmarkPlaneTCPDeliver(b *testing.B) {
	for _, edges := range []int{1, 4} {
		b.Run(fmt.Sprintf("edges=%d", edges), func(b *testing.B) {
			benchPlaneDeliver(b, edges, 200)
		})
	}
}

func benchPlaneDeliver(b *testing.B, edges, size int) {
	const window = 16 << 10
	srv := startServer(b, PlaneConfig{})
	ids := make([]string, edges)
	sinks := make([]*countSink, edges)
	for i := range edges {
		ids[i], sinks[i] = fmt.Sprintf("edge-%d", i), &countSink{}
		startEdge(b, srv.addr, ids[i], sinks[i])
	}
	waitFor(b, "every edge to attach", func() bool {
		for _, s := range sinks {
			if s.announces.Load() == 0 {
				return false
			}
		}
		return true
	})
	users := make([]string, 64)
	for i := range users {
		users[i] = fmt.Sprintf("user-%d", i)
	}
	payload := bytes.Repeat([]byte("x"), size)
	sent := make([]int64, edges)

	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		e := i % edges
		for sent[e]-sinks[e].delivered.Load() >= window {
			runtime.Gosched()
		}
		if !srv.p.Deliver(ids[e], users[i%len(users)], payload) {
			b.Fatal("edge detached")
		}
		sent[e]++
	}
	deadline := time.Now().Add(time.Minute)
	for e := range edges {
		for sinks[e].delivered.Load() < sent[e] {
			if time.Now().After(deadline) {
				b.Fatalf("edge %d got %d of %d deliveries", e, sinks[e].delivered.Load(), sent[e])
			}
			runtime.Gosched()
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
	if d := srv.counter(`surge_plane_deliveries_total{result="dropped"}`); d != 0 {
		b.Fatalf("%d deliveries dropped", d)
	}
}

// BenchmarkRemoteSinkDeliver is the shard's share of a delivery: encoding
// it into an edge's queue. The writer's swap is simulated every 1,000
// deliveries.
func BenchmarkRemoteSinkDeliver(b *testing.B) {
	rs := &remoteSink{m: newServerMetrics(vm.NewSet()), max: 8 << 20, maxFrame: 1 << 20,
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	payload := bytes.Repeat([]byte("x"), 200)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		rs.Deliver("alice", payload)
		if i++; i%1000 == 0 {
			rs.mu.Lock()
			rs.buf = rs.buf[:0]
			rs.mu.Unlock()
		}
	}
}
