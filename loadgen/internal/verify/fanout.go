package verify

import (
	"slices"
	"sort"
	"sync"
)

// FanoutOptions say which orders a Fanout checks.
type FanoutOptions struct {
	// SenderOrder: every member gets each sender's messages in the order
	// they were sent (counted as Reordered otherwise).
	SenderOrder bool
	// SameOrder: all members see the messages in one relative order
	// (counted as OrderMismatch otherwise).
	SameOrder bool
	// InboxSeq: deliveries carry the member's inbox sequence number, which
	// must grow by one (counted as Gaps otherwise).
	InboxSeq bool
}

// Fanout checks messages that each go to every member of a set, such as a
// group's members or a topic's subscribers: each member gets each acked
// message exactly once, and in the orders the options ask for. Senders
// are numbered 0, 1, ... (a group's members; 0 for a topic's publisher)
// and number their messages 1, 2, 3, ...
//
// The reference order for SameOrder is the order seen by the member that
// got the most messages: every other member's deliveries that come before
// one they should follow, in that order, count as OrderMismatch. Members
// that agree pairwise with the reference agree with each other.
//
// A Fanout is safe for concurrent use.
type Fanout struct {
	mu       sync.Mutex
	opt      FanoutOptions
	msgs     []fmsg
	bySender [][]uint32 // message index by sender, seq-1
	mem      []fmember
	left     []int64 // sorted leftAt of members who left
	c        Counts  // Sent, Acked, Failed, Delivered, Duplicated, Reordered, Gaps, Unknown so far
}

type fmsg struct {
	intended  int64
	sender    int32
	receivers int32 // distinct members that got it
	state     uint8
}

type fmember struct {
	seen      []uint64 // bitset by message index
	order     []uint32 // first deliveries, message indices, in arrival order
	lastInbox uint64
	maxSeq    []uint64 // by sender: highest seq delivered
	leftAt    int64    // 0: still there; else messages meant after it are not expected
}

// NewFanout tracks messages to members members.
func NewFanout(members int, opt FanoutOptions) *Fanout {
	return &Fanout{opt: opt, mem: make([]fmember, members)}
}

// Members returns the number of members.
func (f *Fanout) Members() int { return len(f.mem) }

// Sent records the next message of sender, meant to be sent at intended
// (unix nanos), and returns its sender sequence number.
func (f *Fanout) Sent(sender int, intended int64) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(f.bySender) <= sender {
		f.bySender = append(f.bySender, nil)
	}
	f.bySender[sender] = append(f.bySender[sender], uint32(len(f.msgs)))
	f.msgs = append(f.msgs, fmsg{intended: intended, sender: int32(sender)})
	f.c.Sent++
	return uint64(len(f.bySender[sender]))
}

// index returns the message index of sender's seq, or -1.
func (f *Fanout) index(sender int, seq uint64) int {
	if sender < 0 || sender >= len(f.bySender) || seq == 0 || seq > uint64(len(f.bySender[sender])) {
		return -1
	}
	return int(f.bySender[sender][seq-1])
}

// Intended returns the intended send time of sender's seq, or 0.
func (f *Fanout) Intended(sender int, seq uint64) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i := f.index(sender, seq); i >= 0 {
		return f.msgs[i].intended
	}
	return 0
}

// Acked records the ack of sender's seq; false if it was never sent or
// already answered.
func (f *Fanout) Acked(sender int, seq uint64) bool { return f.answer(sender, seq, stAcked) }

// Failed records an error for sender's seq.
func (f *Fanout) Failed(sender int, seq uint64) bool { return f.answer(sender, seq, stFailed) }

func (f *Fanout) answer(sender int, seq uint64, st uint8) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := f.index(sender, seq)
	if i < 0 || f.msgs[i].state != stSent {
		return false
	}
	f.msgs[i].state = st
	if st == stAcked {
		f.c.Acked++
	} else {
		f.c.Failed++
	}
	return true
}

// Delivered records that member got sender's seq, as its inbox entry
// inboxSeq (ignored without InboxSeq). first is true for the first
// delivery of the message to this member; all is true when this delivery
// made the message reach every member.
func (f *Fanout) Delivered(member, sender int, seq, inboxSeq uint64) (first, all bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := &f.mem[member]
	f.inbox(m, inboxSeq)
	i := f.index(sender, seq)
	if i < 0 {
		f.c.Unknown++
		return false, false
	}
	w, bit := i/64, uint64(1)<<(i%64)
	if w >= len(m.seen) {
		m.seen = slices.Grow(m.seen, w+1-len(m.seen))[:w+1]
	}
	if m.seen[w]&bit != 0 {
		f.c.Duplicated++
		return false, false
	}
	m.seen[w] |= bit
	m.order = append(m.order, uint32(i))
	f.c.Delivered++
	if f.opt.SenderOrder {
		for len(m.maxSeq) <= sender {
			m.maxSeq = append(m.maxSeq, 0)
		}
		if seq < m.maxSeq[sender] {
			f.c.Reordered++
		}
		m.maxSeq[sender] = max(m.maxSeq[sender], seq)
	}
	f.msgs[i].receivers++
	return true, int(f.msgs[i].receivers) == len(f.mem)
}

// Unknown records that member got something that is none of the tracked
// messages, as its inbox entry inboxSeq.
func (f *Fanout) Unknown(member int, inboxSeq uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inbox(&f.mem[member], inboxSeq)
	f.c.Unknown++
}

func (f *Fanout) inbox(m *fmember, seq uint64) {
	if !f.opt.InboxSeq {
		return
	}
	if m.lastInbox != 0 && seq != m.lastInbox+1 {
		f.c.Gaps++
	}
	m.lastInbox = max(m.lastInbox, seq)
}

// Left records that member stopped receiving at (unix nanos): messages
// meant to be sent after it are not expected there.
func (f *Fanout) Left(member int, at int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mem[member].leftAt != 0 {
		return
	}
	f.mem[member].leftAt = at
	i := sort.Search(len(f.left), func(i int) bool { return f.left[i] >= at })
	f.left = slices.Insert(f.left, i, at)
}

// expected is how many members should get a message meant for t.
func (f *Fanout) expected(t int64) int {
	return len(f.mem) - sort.Search(len(f.left), func(i int) bool { return f.left[i] >= t })
}

// Pending returns how many messages await an answer and how many acked
// ones have not reached every member expected to get them.
func (f *Fanout) Pending() (unanswered, undelivered int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.msgs {
		switch m := &f.msgs[i]; {
		case m.state == stSent:
			unanswered++
		case m.state == stAcked && int(m.receivers) < f.expected(m.intended):
			undelivered++
		}
	}
	return unanswered, undelivered
}

// LiveAt returns the counts so far, with Lost counting the member
// deliveries missing from acked messages meant before cutoff.
func (f *Fanout) LiveAt(cutoff int64) Counts {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.c
	for i := range f.msgs {
		m := &f.msgs[i]
		if m.intended >= cutoff {
			continue
		}
		if m.state == stAcked {
			c.Lost += int64(max(f.expected(m.intended)-int(m.receivers), 0))
		}
	}
	return c
}

// Counts returns the outcome: what is still unanswered or undelivered
// counts as such, so call it after the drain.
func (f *Fanout) Counts() Counts {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.c
	var acked int64
	for i := range f.msgs {
		m := &f.msgs[i]
		switch m.state {
		case stSent:
			c.Unanswered++
		case stAcked:
			acked++
		}
		if m.state != stAcked && m.receivers > 0 {
			c.DeliveredUnacked++
		}
	}
	for mi := range f.mem {
		m := &f.mem[mi]
		want := acked
		if m.leftAt != 0 {
			want = 0
			for i := range f.msgs {
				if f.msgs[i].state == stAcked && f.msgs[i].intended <= m.leftAt {
					want++
				}
			}
		}
		var got int64
		for _, i := range m.order {
			if f.msgs[i].state == stAcked && (m.leftAt == 0 || f.msgs[i].intended <= m.leftAt) {
				got++
			}
		}
		c.Lost += max(want-got, 0)
	}
	if f.opt.SameOrder {
		c.OrderMismatch = f.mismatches()
	}
	return c
}

// mismatches counts deliveries out of the reference member's order.
func (f *Fanout) mismatches() int64 {
	ref := 0
	for i := range f.mem {
		if len(f.mem[i].order) > len(f.mem[ref].order) {
			ref = i
		}
	}
	rank := make([]int32, len(f.msgs))
	for i := range rank {
		rank[i] = -1
	}
	for r, i := range f.mem[ref].order {
		rank[i] = int32(r)
	}
	var n int64
	for mi := range f.mem {
		if mi == ref {
			continue
		}
		top := int32(-1)
		for _, i := range f.mem[mi].order {
			switch r := rank[i]; {
			case r < 0:
			case r < top:
				n++
			default:
				top = r
			}
		}
	}
	return n
}
