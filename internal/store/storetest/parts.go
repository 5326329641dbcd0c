package storetest

import (
	"fmt"
	"testing"

	"github.com/surgechat/surge/internal/store"
)

// testAppendParts stores several partitions at once across two databases,
// with repeats, and checks that each partition gets its own messages,
// numbered as Append would.
func testAppendParts(t *testing.T, h Harness) {
	s := h.Open(t, h.NewDSNs(t, 2)...)
	mustAppend(t, s, 1, msg("bob", "old")) // bob continues from 1
	parts := []int32{0, 1, 2, 3}
	msgs := [][]store.Message{
		{msg("alice", "a1"), msg("alice", "a2"), msg("alice", "a1")},
		{msg("bob", "b1"), msg("bob", "old")},
		{msg("carol", "c1")},
		nil,
	}
	got, errs := s.AppendParts(ctxT(t), parts, msgs)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("partition %d: %v", parts[i], err)
		}
	}
	want := [][]string{{"alice:1", "alice:2"}, {"bob:2"}, {"carol:1"}, nil}
	for i := range parts {
		var have []string
		for _, m := range got[i] {
			have = append(have, fmt.Sprintf("%s:%d", m.Owner, m.Seq))
		}
		if fmt.Sprint(have) != fmt.Sprint(want[i]) {
			t.Fatalf("partition %d stored %v, want %v", parts[i], have, want[i])
		}
	}
	checkMessages(t, "alice", all(t, s, 0, "alice"), got[0])
	if _, errs := s.AppendParts(ctxT(t), []int32{-1}, [][]store.Message{nil}); errs[0] == nil {
		t.Fatal("a negative partition was accepted")
	}
}
