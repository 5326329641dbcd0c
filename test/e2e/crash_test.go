package e2e

import (
	"fmt"
	"testing"
	"time"
)

// TestKill9LosesNothing acks messages, kills the process with SIGKILL at
// once, restarts it on the same data dir and checks that every acked
// message is in both inboxes exactly once, gap-free and in order.
func TestKill9LosesNothing(t *testing.T) {
	s := startServer(t)
	a, _ := s.dial("alice", 0)
	const n = 200
	for i := 1; i <= n; i++ {
		if _, err := a.Send(ctxT(t), "bob", fmt.Sprintf("k%d", i), fmt.Sprintf("body %d", i)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	s.kill()
	s.start()

	check := func(user, conv string) {
		t.Helper()
		_, in := s.dial(user, 0)
		waitFor(t, 15*time.Second, user+"'s inbox after restart", func() bool { return in.len() >= n })
		time.Sleep(200 * time.Millisecond)
		got := in.list()
		if len(got) != n {
			t.Fatalf("%s has %d messages, want %d", user, len(got), n)
		}
		for i, m := range got {
			if m.Seq != uint64(i+1) || m.Body != fmt.Sprintf("body %d", i+1) || m.Conv != conv {
				t.Fatalf("%s[%d] = seq %d conv %s body %q", user, i, m.Seq, m.Conv, m.Body)
			}
		}
	}
	check("bob", "alice")
	check("alice", "bob")

	// The restarted server keeps numbering after the recovered messages.
	a2, _ := s.dial("alice", n)
	if _, err := a2.Send(ctxT(t), "bob", "after-restart", "new"); err != nil {
		t.Fatal(err)
	}
	_, in := s.dial("bob", n)
	waitFor(t, 5*time.Second, "message after restart", func() bool { return in.len() == 1 })
	if m := in.list()[0]; m.Seq != n+1 {
		t.Fatalf("after restart got seq %d, want %d", m.Seq, n+1)
	}
}
