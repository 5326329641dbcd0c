package router

import (
	"slices"
	"testing"
	"time"
)

func TestTablePresence(t *testing.T) {
	tb := NewTable()
	t0 := time.Unix(1000, 0)
	e1a := SessionRef{Edge: "e1", Session: 1}
	e1b := SessionRef{Edge: "e1", Session: 2}
	e2 := SessionRef{Edge: "e2", Session: 7}

	if !tb.Connect(3, "alice", e1a, t0.Add(time.Minute)) {
		t.Fatal("first session did not bring alice online")
	}
	if tb.Connect(3, "alice", e1a, t0.Add(time.Minute)) {
		t.Fatal("a repeated connect (replay, announce) counted as coming online")
	}
	tb.Connect(3, "alice", e1b, t0.Add(time.Minute))
	tb.Connect(5, "bob", e2, t0.Add(time.Minute))
	if got := tb.Sessions(nil, "alice"); !slices.Equal(got, []SessionRef{e1a, e1b}) {
		t.Fatalf("alice's sessions = %v", got)
	}
	if u, s := tb.Counts(); u != 2 || s != 3 {
		t.Fatalf("counts = %d users, %d sessions", u, s)
	}
	if tb.Disconnect("alice", e1a) {
		t.Fatal("alice went offline with a session left")
	}
	if !tb.Disconnect("alice", e1b) || tb.Online("alice") {
		t.Fatal("alice still online after her last disconnect")
	}
	if tb.Disconnect("nobody", e1a) {
		t.Fatal("disconnect of an unknown user reported a change")
	}

	// Leases: e2 renews on partition 5, e1 does not renew on partition 3.
	tb.Connect(3, "carol", e1a, t0.Add(time.Minute))
	tb.Lease(5, "e2", t0.Add(10*time.Minute))
	off := tb.Expire(t0.Add(2 * time.Minute))
	if !slices.Equal(off, []string{"carol"}) || !tb.Online("bob") {
		t.Fatalf("expired %v; bob online %v", off, tb.Online("bob"))
	}
	if off := tb.Expire(t0.Add(11 * time.Minute)); !slices.Equal(off, []string{"bob"}) {
		t.Fatalf("second expiry dropped %v, want bob", off)
	}

	// A lost partition forgets its users and leases.
	tb.Connect(3, "dave", e1a, t0.Add(time.Hour))
	tb.Connect(4, "erin", e1a, t0.Add(time.Hour))
	tb.DropPartition(3)
	if tb.Online("dave") || !tb.Online("erin") {
		t.Fatal("DropPartition(3) did not drop exactly partition 3's users")
	}
}
