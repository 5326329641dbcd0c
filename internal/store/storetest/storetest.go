// Package storetest is the test suite every store.Store backend must pass,
// with harnesses for the sqlite and mysql drivers.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/surgechat/surge/internal/store"
)

// Run runs the suite against h. Every subtest opens its own stores on fresh
// databases, so they run in parallel.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		f    func(t *testing.T, h Harness)
	}{
		{"Sequence", testSequence},
		{"IndependentOwners", testIndependentOwners},
		{"DedupWithinBatch", testDedupWithinBatch},
		{"DedupAcrossBatches", testDedupAcrossBatches},
		{"SameIDOtherOwners", testSameIDOtherOwners},
		{"RoundTrip", testRoundTrip},
		{"Paging", testPaging},
		{"Conversation", testConversation},
		{"AppendParts", testAppendParts},
		{"LastSeq", testLastSeq},
		{"Empty", testEmpty},
		{"Invalid", testInvalid},
		{"LargeBatch", testLargeBatch},
		{"ConcurrentOneStore", testConcurrentOneStore},
		{"ConcurrentTwoStores", testConcurrentTwoStores},
		{"ContextCanceled", testContextCanceled},
		{"Close", testClose},
		{"CloseWhileBusy", testCloseWhileBusy},
		{"Partitions", testPartitions},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.f(t, h)
		})
	}
}

// ID returns a message id derived from s.
func ID(s string) store.MsgID {
	sum := sha256.Sum256([]byte(s))
	return store.MsgID(sum[:store.MsgIDLen])
}

// msg returns a message for owner whose id and fields derive from name.
func msg(owner, name string) store.Message {
	return store.Message{
		Owner:       owner,
		ID:          ID(name),
		Sender:      "sender-" + name,
		ClientMsgID: "c-" + name,
		Conv:        "conv-" + owner,
		Body:        []byte("body of " + name),
		SentAt:      1_700_000_000_000_000,
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func mustAppend(t *testing.T, s store.Store, part int32, msgs ...store.Message) []store.Message {
	t.Helper()
	out, err := s.Append(ctxT(t), part, msgs)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return out
}

// all returns the whole inbox of owner, read in pages of 7.
func all(t *testing.T, s store.Store, part int32, owner string) []store.Message {
	t.Helper()
	var out []store.Message
	for {
		var after uint64
		if len(out) > 0 {
			after = out[len(out)-1].Seq
		}
		page, err := s.Inbox(ctxT(t), part, owner, after, 7)
		if err != nil {
			t.Fatalf("Inbox(%q, after %d): %v", owner, after, err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
	}
}

// sameMessage reports how got differs from want, or "".
func sameMessage(got, want store.Message) string {
	var diffs []string
	add := func(field string, g, w any) { diffs = append(diffs, fmt.Sprintf("%s %q, want %q", field, g, w)) }
	if got.Owner != want.Owner {
		add("Owner", got.Owner, want.Owner)
	}
	if got.Seq != want.Seq {
		diffs = append(diffs, fmt.Sprintf("Seq %d, want %d", got.Seq, want.Seq))
	}
	if got.ID != want.ID {
		diffs = append(diffs, fmt.Sprintf("ID %x, want %x", got.ID, want.ID))
	}
	if got.Sender != want.Sender {
		add("Sender", got.Sender, want.Sender)
	}
	if got.ClientMsgID != want.ClientMsgID {
		add("ClientMsgID", got.ClientMsgID, want.ClientMsgID)
	}
	if got.Conv != want.Conv {
		add("Conv", got.Conv, want.Conv)
	}
	if !bytes.Equal(got.Body, want.Body) {
		add("Body", got.Body, want.Body)
	}
	if got.SentAt != want.SentAt || got.StoredAt != want.StoredAt {
		diffs = append(diffs, fmt.Sprintf("SentAt, StoredAt %d, %d, want %d, %d", got.SentAt, got.StoredAt, want.SentAt, want.StoredAt))
	}
	return strings.Join(diffs, "; ")
}

// checkMessages fails t unless got and want hold the same messages.
func checkMessages(t *testing.T, what string, got, want []store.Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d messages, want %d", what, len(got), len(want))
	}
	for i := range got {
		if d := sameMessage(got[i], want[i]); d != "" {
			t.Errorf("%s[%d]: %s", what, i, d)
		}
	}
}

// numbered returns copies of msgs with Seq from first and StoredAt from
// stored, which is what Append should return for them.
func numbered(first uint64, stored []store.Message, msgs ...store.Message) []store.Message {
	out := make([]store.Message, len(msgs))
	for i, m := range msgs {
		m.Seq = first + uint64(i)
		m.StoredAt = stored[i].StoredAt
		out[i] = m
	}
	return out
}

func lastSeq(t *testing.T, s store.Store, part int32, owner string) uint64 {
	t.Helper()
	seq, err := s.LastSeq(ctxT(t), part, owner)
	if err != nil {
		t.Fatalf("LastSeq(%q): %v", owner, err)
	}
	return seq
}

func testSequence(t *testing.T, h Harness) {
	s := h.Open(t, h.NewDSNs(t, 1)...)
	var want []store.Message
	for i := range 40 {
		var batch []store.Message
		for j := range i%5 + 1 {
			batch = append(batch, msg("alice", fmt.Sprintf("m%d.%d", i, j)))
		}
		got := mustAppend(t, s, 3, batch...)
		next := numbered(uint64(len(want))+1, got, batch...)
		checkMessages(t, fmt.Sprintf("Append %d", i), got, next)
		want = append(want, next...)
	}
	if got := lastSeq(t, s, 3, "alice"); got != uint64(len(want)) {
		t.Errorf("LastSeq = %d, want %d", got, len(want))
	}
	checkMessages(t, "inbox", all(t, s, 3, "alice"), want)
}

func testIndependentOwners(t *testing.T, h Harness) {
	s := h.Open(t, h.NewDSNs(t, 1)...)
	got := mustAppend(t, s, 0, msg("a", "1"), msg("b", "1"), msg("a", "2"), msg("c", "1"), msg("b", "2"))
	got2 := mustAppend(t, s, 0, msg("c", "2"), msg("a", "3"))
	wantSeqs := []uint64{1, 1, 2, 1, 2, 2, 3}
	for i, m := range append(got, got2...) {
		if m.Seq != wantSeqs[i] {
			t.Errorf("message %d (owner %s): seq %d, want %d", i, m.Owner, m.Seq, wantSeqs[i])
		}
	}
	for owner, n := range map[string]uint64{"a": 3, "b": 2, "c": 2, "d": 0} {
		if got := lastSeq(t, s, 0, owner); got != n {
			t.Errorf("LastSeq(%s) = %d, want %d", owner, got, n)
		}
		inbox := all(t, s, 0, owner)
		for i, m := range inbox {
			if m.Owner != owner || m.Seq != uint64(i+1) {
				t.Errorf("inbox %s[%d] = owner %s seq %d", owner, i, m.Owner, m.Seq)
			}
		}
	}
	// Owners differ byte for byte, not by case.
	got = mustAppend(t, s, 0, msg("A", "1"))
	if got[0].Seq != 1 {
		t.Errorf("owner A continues owner a: seq %d", got[0].Seq)
	}
}

func testDedupWithinBatch(t *testing.T, h Harness) {
	s := h.Open(t, h.NewDSNs(t, 1)...)
	x, y := msg("alice", "x"), msg("alice", "y")
	x2 := x
	x2.Sender, x2.Body = "someone else", []byte("a retry with another body")
	got := mustAppend(t, s, 0, x, y, x2, y)
	want := numbered(1, got, x, y)
	checkMessages(t, "Append", got, want)
	checkMessages(t, "inbox", all(t, s, 0, "alice"), want)
}

func testDedupAcrossBatches(t *testing.T, h Harness) {
	s := h.Open(t, h.NewDSNs(t, 1)...)
	x, y, z := msg("alice", "x"), msg("alice", "y"), msg("alice", "z")
	first := mustAppend(t, s, 0, x, y)
	got := mustAppend(t, s, 0, y, z, x)
	checkMessages(t, "second Append", got, numbered(3, got, z))
	if got := mustAppend(t, s, 0, x, y, z, x); len(got) != 0 {
		t.Errorf("replayed Append stored %d messages", len(got))
	}
	want := append(numbered(1, first, x, y), numbered(3, got, z)...)
	checkMessages(t, "inbox", all(t, s, 0, "alice"), want)
}

func testSameIDOtherOwners(t *testing.T, h Harness) {
	s := h.Open(t, h.NewDSNs(t, 1)...)
	a, b, c := msg("alice", "g1"), msg("bob", "g1"), msg("carol", "g1")
	got := mustAppend(t, s, 0, a, b)
	got = append(got, mustAppend(t, s, 0, c, a)...)
	if len(got) != 3 {
		t.Fatalf("stored %d messages, want 3", len(got))
	}
	for _, m := range got {
		if m.Seq != 1 {
			t.Errorf("owner %s: seq %d, want 1", m.Owner, m.Seq)
		}
		if n := len(all(t, s, 0, m.Owner)); n != 1 {
			t.Errorf("owner %s: %d messages, want 1", m.Owner, n)
		}
	}
}

func testRoundTrip(t *testing.T, h Harness) {
	s := h.Open(t, h.NewDSNs(t, 1)...)
	binary := make([]byte, 256)
	for i := range binary {
		binary[i] = byte(i)
	}
	owner := strings.Repeat("ж", 128) // the longest owner, 256 bytes
	in := []store.Message{
		{Owner: owner, ID: ID("nil"), Body: nil},
		{Owner: owner, ID: ID("empty"), Body: []byte{}, SentAt: -1},
		{Owner: owner, ID: ID("unicode"), Sender: "zoë", ClientMsgID: "ключ-1", Conv: "会话", Body: []byte("héllo 🌍 世界 \u200d"), SentAt: math.MaxInt64},
		{Owner: owner, ID: ID("binary"), Body: binary, SentAt: math.MinInt64},
		{Owner: owner, ID: store.MsgID{}, Sender: strings.Repeat("😀", 64), ClientMsgID: strings.Repeat("x", 64), Conv: strings.Repeat("ü", 130), Body: []byte("max lengths")},
		{Owner: owner, ID: ID("spaces"), Sender: " s ", ClientMsgID: "\t", Conv: "trailing  ", Body: []byte(" \n")},
	}
	before := time.Now().UnixMicro()
	got := mustAppend(t, s, 7, in...)
	after := time.Now().UnixMicro()
	if len(got) != len(in) {
		t.Fatalf("stored %d messages, want %d", len(got), len(in))
	}
	for i := range in {
		if in[i].Seq != 0 || in[i].StoredAt != 0 {
			t.Fatalf("Append wrote into the caller's message %d", i)
		}
		if st := got[i].StoredAt; st < before || st > after {
			t.Errorf("message %d: StoredAt %d outside [%d, %d]", i, st, before, after)
		}
	}
	checkMessages(t, "Append", got, numbered(1, got, in...))
	checkMessages(t, "inbox", all(t, s, 7, owner), got)
}

func testPaging(t *testing.T, h Harness) {
	s := h.Open(t, h.NewDSNs(t, 1)...)
	var in []store.Message
	for i := range 10 {
		in = append(in, msg("alice", fmt.Sprint(i)))
	}
	want := mustAppend(t, s, 0, in...)
	mustAppend(t, s, 0, msg("bob", "other"))
	for _, c := range []struct {
		after      uint64
		limit      int
		start, end int // want[start:end]
	}{
		{0, 3, 0, 3},
		{3, 3, 3, 6},
		{6, 100, 6, 10},
		{9, 5, 9, 10},
		{10, 5, 10, 10},
		{100, 5, 10, 10},
		{math.MaxUint64, 5, 10, 10},
		{0, 0, 0, 0},
		{0, -1, 0, 0},
		{0, 10, 0, 10},
	} {
		got, err := s.Inbox(ctxT(t), 0, "alice", c.after, c.limit)
		if err != nil {
			t.Fatalf("Inbox(after %d, limit %d): %v", c.after, c.limit, err)
		}
		checkMessages(t, fmt.Sprintf("Inbox(after %d, limit %d)", c.after, c.limit), got, want[c.start:c.end])
	}
	if got, err := s.Inbox(ctxT(t), 0, "nobody", 0, 10); err != nil || len(got) != 0 {
		t.Errorf("Inbox(nobody) = %d messages, %v; want none", len(got), err)
	}
}

func testLastSeq(t *testing.T, h Harness) {
	s := h.Open(t, h.NewDSNs(t, 1)...)
	if got := lastSeq(t, s, 0, "alice"); got != 0 {
		t.Errorf("LastSeq of an empty inbox = %d", got)
	}
	mustAppend(t, s, 0, msg("alice", "1"), msg("alice", "2"), msg("bob", "1"))
	mustAppend(t, s, 0, msg("alice", "3"))
	if got := lastSeq(t, s, 0, "alice"); got != 3 {
		t.Errorf("LastSeq(alice) = %d, want 3", got)
	}
	if got := lastSeq(t, s, 0, "bob"); got != 1 {
		t.Errorf("LastSeq(bob) = %d, want 1", got)
	}
	// Owners that cannot be stored have nothing, whatever the collation.
	for _, owner := range []string{"ALICE", "alice ", "", "ali\xffce"} {
		if got := lastSeq(t, s, 0, owner); got != 0 {
			t.Errorf("LastSeq(%q) = %d, want 0", owner, got)
		}
		if got, err := s.Inbox(ctxT(t), 0, owner, 0, 10); err != nil || len(got) != 0 {
			t.Errorf("Inbox(%q) = %d messages, %v; want none", owner, len(got), err)
		}
	}
}

func testEmpty(t *testing.T, h Harness) {
	s := h.Open(t, h.NewDSNs(t, 1)...)
	for _, in := range [][]store.Message{nil, {}} {
		got, err := s.Append(ctxT(t), 0, in)
		if got != nil || err != nil {
			t.Errorf("Append(%#v) = %v, %v; want nil, nil", in, got, err)
		}
	}
}

func testInvalid(t *testing.T, h Harness) {
	s := h.Open(t, h.NewDSNs(t, 1)...)
	good := msg("alice", "good")
	bad := func(f func(m *store.Message)) store.Message {
		m := msg("alice", "bad")
		f(&m)
		return m
	}
	for name, m := range map[string]store.Message{
		"empty owner":          bad(func(m *store.Message) { m.Owner = "" }),
		"owner ends in space":  bad(func(m *store.Message) { m.Owner = "alice " }),
		"long owner":           bad(func(m *store.Message) { m.Owner = strings.Repeat("a", 129) }),
		"long sender":          bad(func(m *store.Message) { m.Sender = strings.Repeat("é", 65) }),
		"long client msg id":   bad(func(m *store.Message) { m.ClientMsgID = strings.Repeat("a", 65) }),
		"long conv":            bad(func(m *store.Message) { m.Conv = strings.Repeat("a", 131) }),
		"owner not UTF-8":      bad(func(m *store.Message) { m.Owner = "al\xffce" }),
		"sender not UTF-8":     bad(func(m *store.Message) { m.Sender = "\xc3" }),
		"conv not UTF-8":       bad(func(m *store.Message) { m.Conv = "\xed\xa0\x80" }), // a surrogate
		"client id not UTF-8":  bad(func(m *store.Message) { m.ClientMsgID = "\x80" }),
		"body over the column": bad(func(m *store.Message) { m.Body = make([]byte, 1<<24) }),
	} {
		got, err := s.Append(ctxT(t), 0, []store.Message{good, m})
		if !errors.Is(err, store.ErrInvalid) || got != nil {
			t.Errorf("%s: Append = %d messages, %v; want ErrInvalid", name, len(got), err)
		}
	}
	if got := lastSeq(t, s, 0, "alice"); got != 0 {
		t.Errorf("refused batches stored %d messages", got)
	}
}

func testLargeBatch(t *testing.T, h Harness) {
	s := h.Open(t, h.NewDSNs(t, 1)...)
	var in []store.Message
	for i := range 1234 {
		in = append(in, msg(fmt.Sprint("owner", i%3), fmt.Sprint(i)))
	}
	got := mustAppend(t, s, 0, in...)
	if len(got) != len(in) {
		t.Fatalf("stored %d messages, want %d", len(got), len(in))
	}
	for i, m := range got {
		if want := uint64(i/3 + 1); m.Seq != want {
			t.Fatalf("message %d: seq %d, want %d", i, m.Seq, want)
		}
	}
	// Replaying it, with big bodies added, stores just the bodies, which
	// are cut into several statements by size.
	for i := range 5 {
		m := msg("owner0", fmt.Sprint("big", i))
		m.Body = bytes.Repeat([]byte{byte(i), '\\', '\'', 0}, 3<<18) // 3 MiB
		in = append(in, m)
	}
	got = mustAppend(t, s, 0, in...)
	checkMessages(t, "replay", got, numbered(413, got, in[len(in)-5:]...))
	checkMessages(t, "inbox", all(t, s, 0, "owner0")[412:], got)
}

func testContextCanceled(t *testing.T, h Harness) {
	s := h.Open(t, h.NewDSNs(t, 1)...)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Append(ctx, 0, []store.Message{msg("alice", "1")}); !errors.Is(err, context.Canceled) {
		t.Errorf("Append: %v, want context.Canceled", err)
	}
	if _, err := s.Inbox(ctx, 0, "alice", 0, 10); !errors.Is(err, context.Canceled) {
		t.Errorf("Inbox: %v, want context.Canceled", err)
	}
	if _, err := s.LastSeq(ctx, 0, "alice"); !errors.Is(err, context.Canceled) {
		t.Errorf("LastSeq: %v, want context.Canceled", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Ping: %v, want context.Canceled", err)
	}
	if got := lastSeq(t, s, 0, "alice"); got != 0 {
		t.Errorf("a canceled Append stored %d messages", got)
	}
}

func testClose(t *testing.T, h Harness) {
	s := h.Open(t, h.NewDSNs(t, 1)...)
	mustAppend(t, s, 0, msg("alice", "1"))
	if err := s.Ping(ctxT(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx := ctxT(t)
	if _, err := s.Append(ctx, 0, []store.Message{msg("alice", "2")}); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Append: %v, want ErrClosed", err)
	}
	if _, err := s.Append(ctx, 0, nil); !errors.Is(err, store.ErrClosed) {
		t.Errorf("empty Append: %v, want ErrClosed", err)
	}
	if _, err := s.Inbox(ctx, 0, "alice", 0, 10); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Inbox: %v, want ErrClosed", err)
	}
	if _, err := s.LastSeq(ctx, 0, "alice"); !errors.Is(err, store.ErrClosed) {
		t.Errorf("LastSeq: %v, want ErrClosed", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Ping: %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func testPartitions(t *testing.T, h Harness) {
	dsns := h.NewDSNs(t, 2)
	s := h.Open(t, dsns...)
	// One owner name in four partitions (which the caller never does) shows
	// where each partition lives: 0 and 2 share DSNs[0], 1 and 3 DSNs[1].
	for part := range int32(4) {
		got := mustAppend(t, s, part, msg("alice", fmt.Sprint("p", part)))
		if want := uint64(part/2 + 1); got[0].Seq != want {
			t.Errorf("partition %d: seq %d, want %d", part, got[0].Seq, want)
		}
	}
	if _, err := s.Append(ctxT(t), -1, []store.Message{msg("alice", "neg")}); err == nil {
		t.Errorf("Append to partition -1 succeeded")
	}
	for i, dsn := range dsns {
		one := h.Open(t, dsn)
		got := all(t, one, 0, "alice")
		if len(got) != 2 || got[0].ID != ID(fmt.Sprint("p", i)) || got[1].ID != ID(fmt.Sprint("p", i+2)) {
			t.Errorf("DSNs[%d] holds %d messages, want partitions %d and %d", i, len(got), i, i+2)
		}
	}
	if err := s.Ping(ctxT(t)); err != nil {
		t.Errorf("Ping: %v", err)
	}
}
