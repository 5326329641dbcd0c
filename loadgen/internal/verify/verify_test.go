package verify

import (
	"sync"
	"testing"
)

func send(s *Stream, n int) {
	for i := range n {
		s.Sent(int64(i))
	}
}

func TestCleanStream(t *testing.T) {
	var s Stream
	send(&s, 5)
	for seq := uint64(1); seq <= 5; seq++ {
		s.Acked(seq)
		if !s.Delivered(seq, 100+seq) {
			t.Fatalf("first delivery of %d not reported as first", seq)
		}
	}
	if u, d := s.Pending(); u != 0 || d != 0 {
		t.Fatalf("pending %d %d", u, d)
	}
	c := s.Counts()
	want := Counts{Sent: 5, Acked: 5, Delivered: 5}
	if c != want || !c.OK() {
		t.Fatalf("got %+v, want %+v", c, want)
	}
}

// TestKnownFaults feeds one of each fault and expects each counted once.
func TestKnownFaults(t *testing.T) {
	var s Stream
	send(&s, 8)
	for seq := uint64(1); seq <= 7; seq++ {
		s.Acked(seq)
	}
	s.Failed(8)
	// inbox: 1→10, 3→11, 2→12 (reordered), 3→13 (duplicate),
	// 5→15 (gap: 14 missing), 6→16; 4 and 7 never arrive (lost);
	// 8 failed but arrives anyway; 99 was never sent.
	s.Delivered(1, 10)
	s.Delivered(3, 11)
	s.Delivered(2, 12)
	if s.Delivered(3, 13) {
		t.Fatal("duplicate reported as first delivery")
	}
	s.Delivered(5, 15)
	s.Delivered(6, 16)
	s.Delivered(8, 17)
	s.Delivered(99, 18)
	if u, d := s.Pending(); u != 0 || d != 2 {
		t.Fatalf("pending unanswered %d undelivered %d, want 0 2", u, d)
	}
	got := s.Counts()
	want := Counts{Sent: 8, Acked: 7, Failed: 1, Delivered: 6, Lost: 2, Duplicated: 1, Reordered: 1, Gaps: 1, Unknown: 1, DeliveredUnacked: 1}
	if got != want {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	if got.OK() {
		t.Fatal("faulty stream reported OK")
	}
}

func TestAnswers(t *testing.T) {
	var s Stream
	send(&s, 3)
	if !s.Acked(1) || s.Acked(1) || s.Failed(1) {
		t.Fatal("a message is answered once")
	}
	if s.Acked(0) || s.Acked(4) {
		t.Fatal("acks of unsent messages accepted")
	}
	if s.Intended(2) != 1 || s.Intended(9) != 0 {
		t.Fatal("intended times")
	}
	c := s.Counts()
	if c.Unanswered != 2 || c.Lost != 1 {
		t.Fatalf("got %+v, want 2 unanswered and 1 lost", c)
	}
	if live := s.Live(); live.Lost != 0 || live.Unanswered != 0 {
		t.Fatalf("live counts classify in-flight messages: %+v", live)
	}
}

func TestMerge(t *testing.T) {
	a := Counts{Sent: 1, Lost: 2, Gaps: 3}
	a.Merge(Counts{Sent: 10, Lost: 20, Gaps: 30, Unknown: 1})
	if a != (Counts{Sent: 11, Lost: 22, Gaps: 33, Unknown: 1}) {
		t.Fatalf("%+v", a)
	}
}

func TestConcurrent(t *testing.T) {
	var s Stream
	const n = 2000
	acked := make(chan uint64, n)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range n {
			acked <- s.Sent(0)
		}
		close(acked)
	}()
	go func() {
		defer wg.Done()
		for seq := range acked {
			s.Acked(seq)
			s.Delivered(seq, seq)
		}
	}()
	wg.Wait()
	if c := s.Counts(); !c.OK() || c.Delivered != n || c.Acked != n {
		t.Fatalf("%+v", c)
	}
}

// TestOther: messages outside the stream keep the inbox sequence checked
// but count as nothing else.
func TestOther(t *testing.T) {
	var s Stream
	send(&s, 2)
	s.Acked(1)
	s.Acked(2)
	s.Other(7) // an earlier run's message
	s.Delivered(1, 8)
	s.Other(9)
	s.Delivered(2, 11) // 10 missing
	want := Counts{Sent: 2, Acked: 2, Delivered: 2, Gaps: 1}
	if c := s.Counts(); c != want {
		t.Fatalf("got %+v, want %+v", c, want)
	}
}
