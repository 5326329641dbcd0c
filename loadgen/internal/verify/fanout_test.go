package verify

import "testing"

func groupOpts() FanoutOptions {
	return FanoutOptions{SenderOrder: true, SameOrder: true, InboxSeq: true}
}

// sendAll sends n messages from each of senders, all acked, and returns
// (sender, seq) in send order.
func sendAll(f *Fanout, senders, n int) [][2]int {
	var out [][2]int
	for k := range n {
		for s := range senders {
			seq := f.Sent(s, int64(k*senders+s))
			f.Acked(s, seq)
			out = append(out, [2]int{s, int(seq)})
		}
	}
	return out
}

func TestFanoutClean(t *testing.T) {
	f := NewFanout(3, groupOpts())
	msgs := sendAll(f, 2, 3)
	for m := range 3 {
		for i, x := range msgs {
			first, all := f.Delivered(m, x[0], uint64(x[1]), uint64(100+i))
			if !first || all != (m == 2) {
				t.Fatalf("member %d message %d: first=%v all=%v", m, i, first, all)
			}
		}
	}
	if u, d := f.Pending(); u != 0 || d != 0 {
		t.Fatalf("pending %d %d", u, d)
	}
	c := f.Counts()
	want := Counts{Sent: 6, Acked: 6, Delivered: 18}
	if c != want || !c.OK() {
		t.Fatalf("got %+v, want %+v", c, want)
	}
}

// TestFanoutOrderMismatch: member 0 sees a b c d, member 1 sees b a c d
// (one delivery out of member 0's order), member 2 sees a b d c: two
// mismatches in all, while each sender's own order holds everywhere.
func TestFanoutOrderMismatch(t *testing.T) {
	f := NewFanout(3, groupOpts())
	// a, c from sender 0; b, d from sender 1.
	a, b, c, d := [2]int{0, 1}, [2]int{1, 1}, [2]int{0, 2}, [2]int{1, 2}
	for _, x := range [][2]int{a, b, c, d} {
		seq := f.Sent(x[0], 0)
		f.Acked(x[0], seq)
	}
	orders := [][][2]int{{a, b, c, d}, {b, a, c, d}, {a, b, d, c}}
	for m, order := range orders {
		for i, x := range order {
			f.Delivered(m, x[0], uint64(x[1]), uint64(i+1))
		}
	}
	got := f.Counts()
	if got.OrderMismatch != 2 || got.Reordered != 0 || got.Lost != 0 || got.Gaps != 0 || got.OK() {
		t.Fatalf("got %+v, want 2 order mismatches and nothing else", got)
	}
}

// TestFanoutKnownFaults feeds one of each fault.
func TestFanoutKnownFaults(t *testing.T) {
	f := NewFanout(2, groupOpts())
	for range 4 {
		f.Sent(0, 0)
	}
	for seq := uint64(1); seq <= 3; seq++ {
		f.Acked(0, seq)
	}
	f.Failed(0, 4)
	// member 0: 1, 2, 3 in order, then 2 again (duplicate).
	f.Delivered(0, 0, 1, 1)
	f.Delivered(0, 0, 2, 2)
	f.Delivered(0, 0, 3, 3)
	if first, _ := f.Delivered(0, 0, 2, 4); first {
		t.Fatal("duplicate reported as first")
	}
	// member 1: 2 then 1 (sender order broken: one reorder, and one
	// mismatch against member 0), inbox skips 12, 3 never comes (lost),
	// 4 failed but arrives, and something never sent.
	f.Delivered(1, 0, 2, 10)
	f.Delivered(1, 0, 1, 11)
	f.Delivered(1, 0, 4, 13)
	f.Delivered(1, 0, 99, 14)
	f.Unknown(1, 15)
	want := Counts{Sent: 4, Acked: 3, Failed: 1, Delivered: 6, Lost: 1, Duplicated: 1, Reordered: 1, Gaps: 1,
		Unknown: 2, OrderMismatch: 1, DeliveredUnacked: 1}
	if got := f.Counts(); got != want {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	// Lost so far only counts what was due before the cutoff.
	if got := f.LiveAt(0).Lost; got != 0 {
		t.Fatalf("lost before time 0: %d", got)
	}
	if got := f.LiveAt(1).Lost; got != 1 {
		t.Fatalf("lost so far: %d, want 1", got)
	}
}

// TestFanoutLeft: a member that left is not expected to get what was sent
// after it left.
func TestFanoutLeft(t *testing.T) {
	f := NewFanout(2, FanoutOptions{})
	for i := range 4 {
		f.Acked(0, f.Sent(0, int64(10*(i+1)))) // due at 10, 20, 30, 40
	}
	for seq := uint64(1); seq <= 4; seq++ {
		f.Delivered(0, 0, seq, 0)
	}
	f.Delivered(1, 0, 1, 0)
	f.Delivered(1, 0, 2, 0)
	f.Left(1, 25)
	if c := f.Counts(); c.Lost != 0 || !c.OK() {
		t.Fatalf("got %+v, want nothing lost", c)
	}
	if u, d := f.Pending(); u != 0 || d != 0 {
		t.Fatalf("pending %d %d", u, d)
	}
}
