package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestDirectMessageOnline(t *testing.T) {
	s := startServer(t)
	a, aIn := s.dial("alice", 0)
	_, bIn := s.dial("bob", 0)

	msgID, err := a.Send(ctxT(t), "bob", "m1", "hello bob")
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	if len(msgID) != 32 {
		t.Fatalf("msg_id %q: want 32 hex characters", msgID)
	}
	waitFor(t, 5*time.Second, "bob's delivery", func() bool { return bIn.len() == 1 })
	got := bIn.list()[0]
	if got.Seq != 1 || got.From != "alice" || got.Conv != "alice" || got.Body != "hello bob" || got.MsgID != msgID || got.ID != "m1" {
		t.Fatalf("bob got %+v", got)
	}
	// The sender's own copy lands in alice's inbox, conversation bob.
	waitFor(t, 5*time.Second, "alice's own copy", func() bool { return aIn.len() == 1 })
	if own := aIn.list()[0]; own.Seq != 1 || own.Conv != "bob" || own.MsgID != msgID {
		t.Fatalf("alice's copy %+v", own)
	}
	// Exactly once: nothing more arrives.
	time.Sleep(200 * time.Millisecond)
	if n := bIn.len(); n != 1 {
		t.Fatalf("bob has %d messages, want 1", n)
	}
}

func TestOfflineThenSync(t *testing.T) {
	s := startServer(t)
	a, _ := s.dial("alice", 0)
	b, bIn := s.dial("bob", 0)
	if _, err := a.Send(ctxT(t), "bob", "m0", "while online"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "first delivery", func() bool { return bIn.len() == 1 })
	b.Close()

	const missed = 25
	for i := 1; i <= missed; i++ {
		if _, err := a.Send(ctxT(t), "bob", fmt.Sprintf("m%d", i), fmt.Sprintf("missed %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	_, bIn2 := s.dial("bob", 1)
	waitFor(t, 5*time.Second, "sync of missed messages", func() bool { return bIn2.len() == missed })
	for i, m := range bIn2.list() {
		if m.Seq != uint64(i+2) || m.Body != fmt.Sprintf("missed %d", i+1) {
			t.Fatalf("synced[%d] = seq %d body %q", i, m.Seq, m.Body)
		}
	}
}

func TestRepeatedClientMsgIDDeliveredOnce(t *testing.T) {
	s := startServer(t)
	a, _ := s.dial("alice", 0)
	_, bIn := s.dial("bob", 0)
	id1, err := a.Send(ctxT(t), "bob", "same", "once")
	if err != nil {
		t.Fatal(err)
	}
	id2, err := a.Send(ctxT(t), "bob", "same", "once")
	if err != nil {
		t.Fatal(err)
	}
	if id1 != id2 {
		t.Fatalf("retry got msg_id %s, first %s", id2, id1)
	}
	if _, err := a.Send(ctxT(t), "bob", "next", "after"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "two deliveries", func() bool { return bIn.len() == 2 })
	time.Sleep(200 * time.Millisecond)
	got := bIn.list()
	if len(got) != 2 || got[0].ID != "same" || got[1].ID != "next" || got[1].Seq != 2 {
		t.Fatalf("bob got %+v", got)
	}
}

// TestLargeSyncIsPaged syncs more bytes than one reply may carry: the
// server pages the reply instead of overrunning the client's write queue,
// and the client keeps asking until it has everything.
func TestLargeSyncIsPaged(t *testing.T) {
	s := startServer(t, "--send-rate", "1000")
	a, _ := s.dial("alice", 0)
	body := strings.Repeat("z", 4000)
	const n = 400 // 1.6 MB, more than half of the 1 MiB write queue
	for i := 0; i < n; i++ {
		if err := a.SendAsync("bob", fmt.Sprintf("big%d", i), body, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Send(ctxT(t), "bob", "last", "end"); err != nil {
		t.Fatal(err)
	}
	_, in := s.dial("bob", 0)
	waitFor(t, 20*time.Second, "the whole inbox", func() bool { return in.len() == n+1 })
	for i, m := range in.list() {
		if m.Seq != uint64(i+1) {
			t.Fatalf("message %d has seq %d", i, m.Seq)
		}
	}
}
