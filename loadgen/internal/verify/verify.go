// Package verify checks one sender→receiver stream of numbered messages:
// every acked message is delivered exactly once, in the sender's order,
// and the receiver's inbox sequence numbers are contiguous.
//
// A Stream is safe for concurrent use: the sender's and the receiver's
// connections report to it from their own goroutines.
package verify

import "sync"

// Counts is the outcome of one or more streams. Merge adds them up.
type Counts struct {
	Sent       int64 `json:"sent"`       // sends written to the socket
	Acked      int64 `json:"acked"`      // sends the server acked
	Failed     int64 `json:"failed"`     // sends answered with an error frame
	Unanswered int64 `json:"unanswered"` // sends with neither ack nor error
	Delivered  int64 `json:"delivered"`  // distinct messages the receiver got
	Lost       int64 `json:"lost"`       // acked but never delivered
	Duplicated int64 `json:"duplicated"` // deliveries of a message already delivered
	Reordered  int64 `json:"reordered"`  // deliveries behind a later message of the same sender
	Gaps       int64 `json:"gaps"`       // breaks in the receiver's inbox sequence
	Unknown    int64 `json:"unknown"`    // deliveries of a message never sent
	// OrderMismatch counts, in a group, deliveries to a member in another
	// relative order than the reference member saw (see Fanout).
	OrderMismatch int64 `json:"order_mismatch"`
	// DeliveredUnacked counts messages delivered though the sender got an
	// error or nothing back: not a loss, but worth knowing.
	DeliveredUnacked int64 `json:"delivered_unacked"`
}

// Merge adds o to c.
func (c *Counts) Merge(o Counts) {
	c.Sent += o.Sent
	c.Acked += o.Acked
	c.Failed += o.Failed
	c.Unanswered += o.Unanswered
	c.Delivered += o.Delivered
	c.Lost += o.Lost
	c.Duplicated += o.Duplicated
	c.Reordered += o.Reordered
	c.Gaps += o.Gaps
	c.Unknown += o.Unknown
	c.OrderMismatch += o.OrderMismatch
	c.DeliveredUnacked += o.DeliveredUnacked
}

// OK reports whether nothing was lost, duplicated, reordered, skipped or
// invented.
func (c Counts) OK() bool {
	return c.Lost == 0 && c.Duplicated == 0 && c.Reordered == 0 && c.Gaps == 0 && c.Unknown == 0 && c.OrderMismatch == 0
}

const (
	stSent uint8 = iota
	stAcked
	stFailed
)

// Stream tracks the messages of one sender to one receiver, numbered by
// the sender 1, 2, 3, ...
type Stream struct {
	mu        sync.Mutex
	state     []uint8 // by seq-1
	times     []int64 // intended send time by seq-1, unix nanos
	delivered []uint8 // deliveries by seq-1, saturating at 255
	maxSeq    uint64  // highest sender seq delivered
	lastInbox uint64  // receiver's last inbox seq; 0 before the first
	c         Counts
}

// Sent records that the next message was written; it returns its sender
// sequence number (1, 2, ...). intended is when it was meant to be sent.
func (s *Stream) Sent(intended int64) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state = append(s.state, stSent)
	s.times = append(s.times, intended)
	s.delivered = append(s.delivered, 0)
	s.c.Sent++
	return uint64(len(s.state))
}

// Intended returns the intended send time of seq, or 0 if it was never
// sent.
func (s *Stream) Intended(seq uint64) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq == 0 || seq > uint64(len(s.times)) {
		return 0
	}
	return s.times[seq-1]
}

// Acked records the ack of seq. It returns false for an ack of a message
// never sent or already answered.
func (s *Stream) Acked(seq uint64) bool { return s.answer(seq, stAcked) }

// Failed records an error frame for seq.
func (s *Stream) Failed(seq uint64) bool { return s.answer(seq, stFailed) }

func (s *Stream) answer(seq uint64, st uint8) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq == 0 || seq > uint64(len(s.state)) || s.state[seq-1] != stSent {
		return false
	}
	s.state[seq-1] = st
	if st == stAcked {
		s.c.Acked++
	} else {
		s.c.Failed++
	}
	return true
}

// Delivered records that the receiver got sender seq as its inbox entry
// inboxSeq. It returns true for the first delivery of a message sent.
func (s *Stream) Delivered(seq, inboxSeq uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastInbox != 0 && inboxSeq != s.lastInbox+1 {
		s.c.Gaps++
	}
	if inboxSeq > s.lastInbox {
		s.lastInbox = inboxSeq
	}
	if seq == 0 || seq > uint64(len(s.state)) {
		s.c.Unknown++
		return false
	}
	i := seq - 1
	first := s.delivered[i] == 0
	if !first {
		s.c.Duplicated++
	} else {
		s.c.Delivered++
		if seq < s.maxSeq {
			s.c.Reordered++
		}
	}
	if s.delivered[i] < 255 {
		s.delivered[i]++
	}
	s.maxSeq = max(s.maxSeq, seq)
	return first
}

// Other records that the receiver got, as inbox entry inboxSeq, a message
// that is not part of the stream at all (an earlier run's, still being
// delivered): it keeps the inbox sequence checked without counting the
// message.
func (s *Stream) Other(inboxSeq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastInbox != 0 && inboxSeq != s.lastInbox+1 {
		s.c.Gaps++
	}
	s.lastInbox = max(s.lastInbox, inboxSeq)
}

// Pending returns how many sends await an answer and how many acked
// messages await delivery: a drain waits for both to reach zero.
func (s *Stream) Pending() (unanswered, undelivered int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, st := range s.state {
		if st == stSent {
			unanswered++
		}
		if st == stAcked && s.delivered[i] == 0 {
			undelivered++
		}
	}
	return unanswered, undelivered
}

// Live returns the running counts, without classifying what is still in
// flight: for progress lines.
func (s *Stream) Live() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c
}

// LiveAt returns the running counts with Lost set to the acked messages
// meant to be sent before cutoff (unix nanos) and still not delivered:
// lost so far, for judging a run while it goes.
func (s *Stream) LiveAt(cutoff int64) Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.c
	for i, st := range s.state {
		if s.times[i] >= cutoff {
			break // times grow with seq
		}
		if st == stAcked && s.delivered[i] == 0 {
			c.Lost++
		}
	}
	return c
}

// Counts returns the outcome so far: what is still unanswered or
// undelivered counts as unanswered or lost, so call it after the drain.
func (s *Stream) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.c
	for i, st := range s.state {
		switch {
		case st == stSent:
			c.Unanswered++
		case st == stAcked && s.delivered[i] == 0:
			c.Lost++
		}
		if st != stAcked && s.delivered[i] > 0 {
			c.DeliveredUnacked++
		}
	}
	return c
}
