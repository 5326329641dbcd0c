package storetest

import (
	"fmt"
	"testing"

	"github.com/surgechat/surge/internal/store"
)

// testConversation pages one conversation forwards, backwards and by time,
// without the owner's other conversations.
func testConversation(t *testing.T, h Harness) {
	s := h.Open(t, h.NewDSNs(t, 1)...)
	var in []store.Message
	for i := range 12 {
		m := msg("alice", fmt.Sprint(i))
		m.Conv = []string{"bob", "carol", "g/team"}[i%3]
		in = append(in, m)
	}
	stored := mustAppend(t, s, 0, in...)
	var bob []store.Message // seqs 1, 4, 7, 10
	for _, m := range stored {
		if m.Conv == "bob" {
			bob = append(bob, m)
		}
	}
	f := func(q store.ConvQuery, want []store.Message, wantMore bool) {
		t.Helper()
		got, more, err := s.Conversation(ctxT(t), 0, "alice", q)
		if err != nil {
			t.Fatalf("Conversation(%+v): %v", q, err)
		}
		checkMessages(t, fmt.Sprintf("Conversation(%+v)", q), got, want)
		if more != wantMore {
			t.Fatalf("Conversation(%+v): more = %v, want %v", q, more, wantMore)
		}
	}
	f(store.ConvQuery{Conv: "bob", Limit: 10}, bob, false)
	f(store.ConvQuery{Conv: "bob", Limit: 2}, bob[2:], true) // newest page
	f(store.ConvQuery{Conv: "bob", Before: bob[2].Seq, Limit: 2}, bob[:2], false)
	f(store.ConvQuery{Conv: "bob", After: bob[0].Seq, Limit: 2}, bob[1:3], true)
	f(store.ConvQuery{Conv: "bob", After: bob[3].Seq, Limit: 2}, nil, false)
	f(store.ConvQuery{Limit: 3}, stored[9:], true) // the whole inbox
	f(store.ConvQuery{Conv: "nobody", Limit: 3}, nil, false)
	f(store.ConvQuery{Conv: "bob", Limit: 0}, nil, false)
	// By time: every message was stored at or after the first one's time.
	f(store.ConvQuery{Conv: "bob", Since: stored[0].StoredAt, Limit: 10}, bob, false)
	f(store.ConvQuery{Conv: "bob", Until: stored[0].StoredAt, Limit: 10}, nil, false)
}
