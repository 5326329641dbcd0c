package router

import (
	"strconv"
	"testing"
)

func BenchmarkRingPartition(b *testing.B) {
	f := func(partitions, vnodes int) {
		b.Run(strconv.Itoa(partitions)+"x"+strconv.Itoa(vnodes), func(b *testing.B) {
			r := NewRing(partitions, WithVNodes(vnodes))
			owners := testOwners(1 << 12)
			b.ReportAllocs()
			var sink int32
			i := 0
			for b.Loop() {
				sink += r.Partition(owners[i&(len(owners)-1)])
				i++
			}
			_ = sink
		})
	}
	f(64, DefaultVNodes)
	f(1024, DefaultVNodes)
}

// BenchmarkRingRebalance measures membership changes: the time to build the
// new ring, and as metrics the fraction of 1e5 owners that changed partition
// ("moved-frac") next to the ideal share of the partition added or removed
// ("ideal-frac", 1/n of the larger ring).
func BenchmarkRingRebalance(b *testing.B) {
	owners := testOwners(100000)
	f := func(name string, before *Ring, change func(*Ring) *Ring, ideal float64) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var after *Ring
			for b.Loop() {
				after = change(before)
			}
			moved := 0
			for _, o := range owners {
				if before.Partition(o) != after.Partition(o) {
					moved++
				}
			}
			b.ReportMetric(float64(moved)/float64(len(owners)), "moved-frac")
			b.ReportMetric(ideal, "ideal-frac")
		})
	}
	f("16to17", NewRing(16), func(r *Ring) *Ring { return r.With(16) }, 1.0/17)
	f("64to65", NewRing(64), func(r *Ring) *Ring { return r.With(64) }, 1.0/65)
	f("64to63", NewRing(64), func(r *Ring) *Ring { return r.Without(63) }, 1.0/64)
}
