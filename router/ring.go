package router

import (
	"fmt"
	"slices"
)

// DefaultVNodes is the number of virtual nodes a Ring places per partition
// when WithVNodes is not given. With V virtual nodes a partition's share of
// the key space deviates from the mean by about 1/sqrt(V): 6% at 256.
const DefaultVNodes = 256

// RingOption configures a Ring built by NewRing or NewRingFor.
type RingOption func(*ringConfig)

type ringConfig struct {
	vnodes int
}

// WithVNodes sets the number of virtual nodes per partition (default
// DefaultVNodes, 256). More virtual nodes balance better (share deviation
// about 1/sqrt(n)) at the cost of 12 bytes per node and a slightly deeper
// binary search. Values below 1 panic in the constructor.
//
// Every process that routes the same owners must use the same value: it is
// part of the mapping.
func WithVNodes(n int) RingOption {
	return func(c *ringConfig) { c.vnodes = n }
}

// Ring is a consistent-hash ring that maps owner ids (user ids, "g/"-prefixed
// group ids) onto Kafka partitions.
//
// Each member partition p owns vnodes points on a 64-bit circle, placed by
// vnodePoint(p, i), and an owner belongs to the partition of the first point
// at or after hash(owner), wrapping around. Both functions are fixed (see
// hashOwner and vnodePoint), so every process, version and architecture
// computes the same mapping for the same membership and vnode count.
//
// Because a point depends only on its own partition, adding a partition moves
// only the keys that land on its new points (about 1/(n+1) of them, all to
// the new partition) and removing one moves only that partition's keys.
//
// A Ring is immutable after construction and safe for concurrent use.
// With and Without return new rings.
type Ring struct {
	points  []uint64 // sorted ascending; distinct (vnodePoint is a bijection)
	owners  []int32  // owners[i] is the partition that owns points[i]
	members []int32  // sorted ascending, distinct
	vnodes  int
}

// NewRing returns a ring over partitions 0..partitions-1. It panics if
// partitions < 1 or an option is invalid.
func NewRing(partitions int, opts ...RingOption) *Ring {
	if partitions < 1 || int64(partitions) > 1<<31 {
		panic(fmt.Sprintf("router: NewRing: partitions must be in [1, 2^31], got %d", partitions))
	}
	parts := make([]int32, partitions)
	for i := range parts {
		parts[i] = int32(i)
	}
	return newRing(parts, newRingConfig(opts))
}

// NewRingFor returns a ring over the given partition ids, in any order. It
// panics if parts is empty or holds a negative or duplicate id, or an option
// is invalid. NewRingFor([0..n-1]) is the same ring as NewRing(n).
func NewRingFor(parts []int32, opts ...RingOption) *Ring {
	if len(parts) == 0 {
		panic("router: NewRingFor: no partitions")
	}
	members := slices.Clone(parts)
	slices.Sort(members)
	for i, p := range members {
		if p < 0 {
			panic(fmt.Sprintf("router: NewRingFor: negative partition %d", p))
		}
		if i > 0 && members[i-1] == p {
			panic(fmt.Sprintf("router: NewRingFor: duplicate partition %d", p))
		}
	}
	return newRing(members, newRingConfig(opts))
}

func newRingConfig(opts []RingOption) ringConfig {
	c := ringConfig{vnodes: DefaultVNodes}
	for _, o := range opts {
		o(&c)
	}
	if c.vnodes < 1 || c.vnodes > 1<<24 {
		panic(fmt.Sprintf("router: WithVNodes: must be in [1, 2^24], got %d", c.vnodes))
	}
	return c
}

// newRing builds the ring for members, which must be sorted and distinct.
func newRing(members []int32, c ringConfig) *Ring {
	type point struct {
		h uint64
		p int32
	}
	pts := make([]point, 0, len(members)*c.vnodes)
	for _, p := range members {
		for i := range c.vnodes {
			pts = append(pts, point{vnodePoint(p, uint32(i)), p})
		}
	}
	slices.SortFunc(pts, func(a, b point) int {
		switch {
		case a.h < b.h:
			return -1
		case a.h > b.h:
			return 1
		}
		return 0
	})
	r := &Ring{
		points:  make([]uint64, len(pts)),
		owners:  make([]int32, len(pts)),
		members: members,
		vnodes:  c.vnodes,
	}
	for i, pt := range pts {
		r.points[i], r.owners[i] = pt.h, pt.p
	}
	return r
}

// Partition returns the partition that owns owner. It allocates nothing.
func (r *Ring) Partition(owner string) int32 {
	h := hashOwner(owner)
	// Find the first point >= h; sort.Search by hand so nothing escapes.
	lo, hi := 0, len(r.points)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if r.points[m] < h {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(r.points) {
		lo = 0 // wrap around the circle
	}
	return r.owners[lo]
}

// Partitions returns the number of partitions on the ring.
func (r *Ring) Partitions() int { return len(r.members) }

// Members returns the ring's partition ids in ascending order. The caller
// owns the returned slice.
func (r *Ring) Members() []int32 { return slices.Clone(r.members) }

// Has reports whether partition p is on the ring.
func (r *Ring) Has(p int32) bool {
	_, ok := slices.BinarySearch(r.members, p)
	return ok
}

// VNodes returns the number of virtual nodes per partition.
func (r *Ring) VNodes() int { return r.vnodes }

// With returns a ring that also holds partition p, with the same vnode
// count. Only keys that map to p on the new ring move, and they all move to
// p. If p is already a member, With returns r. It panics if p is negative.
func (r *Ring) With(p int32) *Ring {
	if p < 0 {
		panic(fmt.Sprintf("router: Ring.With: negative partition %d", p))
	}
	i, ok := slices.BinarySearch(r.members, p)
	if ok {
		return r
	}
	return newRing(slices.Insert(slices.Clone(r.members), i, p), ringConfig{vnodes: r.vnodes})
}

// Without returns a ring without partition p, with the same vnode count.
// Only the keys p owned move; every other key keeps its partition. If p is
// not a member, Without returns r. It panics if p is the last member: an
// empty ring cannot route.
func (r *Ring) Without(p int32) *Ring {
	i, ok := slices.BinarySearch(r.members, p)
	if !ok {
		return r
	}
	if len(r.members) == 1 {
		panic(fmt.Sprintf("router: Ring.Without: %d is the last partition", p))
	}
	return newRing(slices.Delete(slices.Clone(r.members), i, i+1), ringConfig{vnodes: r.vnodes})
}

// The ring's hash functions are part of the wire contract between edges and
// shards: changing either one remaps owners to other partitions, which breaks
// per-owner ordering across a rolling upgrade. ring_test.go pins them with
// golden values.
//
// hashOwner is 64-bit FNV-1a (simple, byte-at-a-time, defined the same on
// every platform; hash/maphash is seeded per process and so unusable here)
// followed by the splitmix64 finalizer, because FNV-1a alone mixes its last
// bytes poorly into the high bits, and the high bits decide the position on
// the ring: ids like "u1001" and "u1002" would otherwise land side by side.
// The loop is written out instead of using hash/fnv to stay allocation-free.
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
	golden64    = 0x9e3779b97f4a7c15 // splitmix64's increment, 2^64/phi, odd
)

func hashOwner(s string) uint64 {
	h := uint64(fnvOffset64)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime64
	}
	return mix64(h)
}

// vnodePoint places virtual node i of partition p: the splitmix64 output for
// the counter (p<<32 | i) + 1. Multiplying by an odd constant and mix64 are
// both bijections on uint64, so distinct (p, i) pairs never share a point and
// ring order never depends on tie-breaking.
func vnodePoint(p int32, i uint32) uint64 {
	c := uint64(uint32(p))<<32 | uint64(i)
	return mix64((c + 1) * golden64)
}

// mix64 is the splitmix64 finalizer (Stafford's variant 13), a bijection
// with full avalanche.
func mix64(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}
