package router

import (
	"hash/fnv"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// testOwners returns n owner ids shaped like Surge's: numeric user ids and
// "g/"-prefixed group ids, interleaved.
func testOwners(n int) []string {
	owners := make([]string, n)
	for i := range owners {
		if i%2 == 0 {
			owners[i] = strconv.Itoa(1000000 + i)
		} else {
			owners[i] = "g/" + strconv.Itoa(i)
		}
	}
	return owners
}

// TestRingGolden pins the mapping. If it fails, the hash or the vnode
// placement changed, and edges and shards of different versions would route
// the same owner to different partitions: don't update the values unless the
// change ships with a migration.
func TestRingGolden(t *testing.T) {
	f := func(r *Ring, owner string, want int32) {
		t.Helper()
		if got := r.Partition(owner); got != want {
			t.Fatalf("Partition(%q) on %d partitions x %d vnodes = %d, want %d",
				owner, r.Partitions(), r.VNodes(), got, want)
		}
	}
	r64 := NewRing(64)
	f(r64, "", 53)
	f(r64, "alice", 27)
	f(r64, "bob", 51)
	f(r64, "1000001", 42)
	f(r64, "g/general", 22)
	f(r64, "g/42", 29)
	r16 := NewRing(16, WithVNodes(8))
	f(r16, "alice", 12)
	f(r16, "bob", 7)
	f(r16, "g/general", 1)

	h := func(s string, want uint64) {
		t.Helper()
		if got := hashOwner(s); got != want {
			t.Fatalf("hashOwner(%q) = %#x, want %#x", s, got, want)
		}
	}
	h("", 0xf52a15e9a9b5e89b)
	h("alice", 0xc5d1556d66774a5c)
	h("g/general", 0x3c880bca74f50120)

	p := func(part int32, i uint32, want uint64) {
		t.Helper()
		if got := vnodePoint(part, i); got != want {
			t.Fatalf("vnodePoint(%d, %d) = %#x, want %#x", part, i, got, want)
		}
	}
	p(0, 0, 0xe220a8397b1dcdaf) // SplitMix64 seeded 0, first output
	p(0, 1, 0x6e789e6aa1b965f4)
	p(63, 255, 0x576612257a77ada3)
}

// TestHashOwnerIsFNV1a checks the hand-written loop against hash/fnv, so the
// documented definition (FNV-1a 64, then mix64) is the real one.
func TestHashOwnerIsFNV1a(t *testing.T) {
	f := func(s string) {
		t.Helper()
		h := fnv.New64a()
		h.Write([]byte(s))
		if got, want := hashOwner(s), mix64(h.Sum64()); got != want {
			t.Fatalf("hashOwner(%q) = %#x, want mix64(fnv1a64) = %#x", s, got, want)
		}
	}
	f("")
	f("a")
	f("alice")
	f("g/general")
	f(strings.Repeat("\xff\x00", 100))
}

func TestRingPointsSortedAndDistinct(t *testing.T) {
	f := func(n, vnodes int) {
		t.Helper()
		r := NewRing(n, WithVNodes(vnodes))
		if len(r.points) != n*vnodes {
			t.Fatalf("%d partitions x %d vnodes: %d points", n, vnodes, len(r.points))
		}
		for i := 1; i < len(r.points); i++ {
			if r.points[i-1] >= r.points[i] {
				t.Fatalf("%d partitions x %d vnodes: points[%d]=%#x >= points[%d]=%#x",
					n, vnodes, i-1, r.points[i-1], i, r.points[i])
			}
		}
	}
	f(1, 1)
	f(64, 256)
	f(1024, 64)
}

func TestRingEveryPartitionGetsKeys(t *testing.T) {
	owners := testOwners(100000)
	f := func(n, vnodes int) {
		t.Helper()
		r := NewRing(n, WithVNodes(vnodes))
		counts := make([]int, n)
		for _, o := range owners {
			p := r.Partition(o)
			if p < 0 || int(p) >= n {
				t.Fatalf("%d partitions: Partition(%q) = %d, out of range", n, o, p)
			}
			counts[p]++
		}
		for p, c := range counts {
			if c == 0 {
				t.Fatalf("%d partitions x %d vnodes: partition %d got no keys of %d", n, vnodes, p, len(owners))
			}
		}
	}
	f(1, 256)
	f(2, 256)
	f(17, 256)
	f(64, 256)
	f(64, 1)
	f(1024, 256)
}

// TestRingBalance bounds each partition's share of keys.
//
// The math: with V vnodes per partition on a ring of N*V random points, a
// partition's arc is a sum of V spacings, so its share is about
// Beta(V, (N-1)V), relative standard deviation sqrt((N-1)/(N*V)) ~ 1/sqrt(V)
// = 6.2% at V=256. Counting K keys adds Poisson noise 1/sqrt(K/N): 2.5% for
// 1e5 keys over 64 partitions. Together sigma ~ 6.7%, so ±35% is over 5
// sigma for each partition (a 1e-5 chance that any of 64 exceeds it if the
// hash behaves randomly) and the test still fails on a broken hash or
// placement, which skews shares by far more. With V=64 sigma is ~12.6%.
func TestRingBalance(t *testing.T) {
	owners := testOwners(100000)
	f := func(n, vnodes int, bound float64) {
		t.Helper()
		r := NewRing(n, WithVNodes(vnodes))
		counts := make([]int, n)
		for _, o := range owners {
			counts[r.Partition(o)]++
		}
		mean := float64(len(owners)) / float64(n)
		worst := 0.0
		for p, c := range counts {
			dev := (float64(c) - mean) / mean
			worst = max(worst, math.Abs(dev))
			if math.Abs(dev) > bound {
				t.Fatalf("%d partitions x %d vnodes: partition %d has %d keys, %+.1f%% off the mean %.0f (bound ±%.0f%%)",
					n, vnodes, p, c, 100*dev, mean, 100*bound)
			}
		}
		t.Logf("%d partitions x %d vnodes, %d keys: worst share %.1f%% off the mean", n, vnodes, len(owners), 100*worst)
	}
	f(64, 256, 0.35)
	f(16, 256, 0.30)
	f(16, 64, 0.60)
}

func TestRingGrow(t *testing.T) {
	owners := testOwners(100000)
	f := func(from int) {
		t.Helper()
		before := NewRing(from)
		added := int32(from)
		after := before.With(added)
		if after.Partitions() != from+1 {
			t.Fatalf("With(%d) on %d partitions: %d partitions", added, from, after.Partitions())
		}
		fresh := NewRing(from + 1)
		moved := 0
		for _, o := range owners {
			a, b := before.Partition(o), after.Partition(o)
			if b != fresh.Partition(o) {
				t.Fatalf("%q: NewRing(%d).With(%d) gives %d, NewRing(%d) gives %d", o, from, added, b, from+1, fresh.Partition(o))
			}
			if a == b {
				continue
			}
			if b != added {
				t.Fatalf("%d->%d partitions: %q moved from %d to %d, not to the new partition %d", from, from+1, o, a, b, added)
			}
			moved++
		}
		// The new partition's share; see TestRingBalance for the ±35%.
		frac, ideal := float64(moved)/float64(len(owners)), 1/float64(from+1)
		if math.Abs(frac-ideal) > 0.35*ideal {
			t.Fatalf("%d->%d partitions: moved %.4f of keys, want %.4f ±35%%", from, from+1, frac, ideal)
		}
	}
	f(1)
	f(16)
	f(64)
}

func TestRingShrink(t *testing.T) {
	owners := testOwners(100000)
	f := func(n int, removed int32) {
		t.Helper()
		before := NewRing(n)
		after := before.Without(removed)
		if after.Partitions() != n-1 || after.Has(removed) {
			t.Fatalf("Without(%d) on %d partitions: members %v", removed, n, after.Members())
		}
		moved := 0
		for _, o := range owners {
			a, b := before.Partition(o), after.Partition(o)
			switch {
			case a == removed && b == removed:
				t.Fatalf("%q still maps to removed partition %d", o, removed)
			case a != removed && a != b:
				t.Fatalf("%d partitions without %d: %q moved from %d to %d but only %d's keys may move", n, removed, o, a, b, removed)
			case a == removed:
				moved++
			}
		}
		frac, ideal := float64(moved)/float64(len(owners)), 1/float64(n)
		if math.Abs(frac-ideal) > 0.35*ideal {
			t.Fatalf("%d partitions without %d: moved %.4f of keys, want %.4f ±35%%", n, removed, frac, ideal)
		}
	}
	f(2, 0)
	f(17, 16)
	f(64, 0)
	f(64, 31)
}

func TestRingMembership(t *testing.T) {
	r := NewRingFor([]int32{7, 3, 5})
	if got := r.Members(); len(got) != 3 || got[0] != 3 || got[1] != 5 || got[2] != 7 {
		t.Fatalf("Members() = %v, want [3 5 7]", got)
	}
	if r.With(5) != r {
		t.Fatalf("With(member) built a new ring")
	}
	if r.Without(4) != r {
		t.Fatalf("Without(non-member) built a new ring")
	}
	if g := r.With(4); !g.Has(4) || g.Partitions() != 4 || r.Has(4) {
		t.Fatalf("With(4): new ring has 4 = %v (%d members), old ring has 4 = %v", g.Has(4), g.Partitions(), r.Has(4))
	}
	ring, sub := NewRing(8), NewRingFor([]int32{0, 1, 2, 3, 4, 5, 6, 7})
	for _, o := range testOwners(1000) {
		if ring.Partition(o) != sub.Partition(o) {
			t.Fatalf("NewRing(8) and NewRingFor(0..7) disagree on %q", o)
		}
	}
	one := NewRingFor([]int32{9})
	for _, o := range testOwners(100) {
		if p := one.Partition(o); p != 9 {
			t.Fatalf("single-partition ring maps %q to %d", o, p)
		}
	}
}

func TestRingPanics(t *testing.T) {
	f := func(name string, fn func(), want string) {
		t.Helper()
		defer func() {
			t.Helper()
			r := recover()
			msg, _ := r.(string)
			if !strings.Contains(msg, want) {
				t.Fatalf("%s: panic %v, want one containing %q", name, r, want)
			}
		}()
		fn()
	}
	f("NewRing(0)", func() { NewRing(0) }, "partitions must be")
	f("NewRing(-1)", func() { NewRing(-1) }, "partitions must be")
	f("WithVNodes(0)", func() { NewRing(4, WithVNodes(0)) }, "WithVNodes")
	f("NewRingFor(nil)", func() { NewRingFor(nil) }, "no partitions")
	f("NewRingFor dup", func() { NewRingFor([]int32{1, 2, 1}) }, "duplicate partition 1")
	f("NewRingFor neg", func() { NewRingFor([]int32{-3}) }, "negative partition -3")
	f("With(-1)", func() { NewRing(2).With(-1) }, "negative partition")
	f("Without(last)", func() { NewRing(1).Without(0) }, "last partition")
}

func TestRingPartitionAllocs(t *testing.T) {
	r := NewRing(64)
	owner := "g/some-group-id"
	if n := testing.AllocsPerRun(1000, func() { r.Partition(owner) }); n != 0 {
		t.Fatalf("Partition allocates %v times per call, want 0", n)
	}
}

// TestRingConcurrent lets the race detector check that a Ring is read-only.
func TestRingConcurrent(t *testing.T) {
	r := NewRing(32)
	owners := testOwners(2000)
	want := make([]int32, len(owners))
	for i, o := range owners {
		want[i] = r.Partition(o)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i, o := range owners {
				if got := r.Partition(o); got != want[i] {
					t.Errorf("concurrent Partition(%q) = %d, want %d", o, got, want[i])
					return
				}
			}
			_ = r.With(40).Without(3)
		})
	}
	wg.Wait()
}
