package storetest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/surgechat/surge/internal/store"
)

type msgKey struct {
	owner string
	id    store.MsgID
}

func testConcurrentOneStore(t *testing.T, h Harness) {
	s := h.Open(t, h.NewDSNs(t, 1)...)
	hammer(t, []store.Store{s})
}

// testConcurrentTwoStores is two shards that both believe they own a
// partition, as during a rebalance.
func testConcurrentTwoStores(t *testing.T, h Harness) {
	dsns := h.NewDSNs(t, 1)
	hammer(t, []store.Store{h.Open(t, dsns...), h.Open(t, dsns...)})
}

// hammer appends to two owners from many goroutines at once, through the
// given stores in turn, and then checks the promises: each inbox is
// 1..N without a gap or a repeated message, and holds exactly the messages
// that successful Appends returned, at the seqs they returned. An Append may
// fail only with ErrConflict, which must leave nothing behind.
func hammer(t *testing.T, stores []store.Store) {
	const workers, rounds = 8, 15
	type result struct {
		stored []store.Message
		err    error
	}
	results := make(chan result, workers*rounds)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			s := stores[w%len(stores)]
			// Half the workers list the owners the other way round, so
			// concurrent transactions touch them in both orders.
			owners := [2]string{"hot", "cold"}
			if w%2 == 1 {
				owners[0], owners[1] = owners[1], owners[0]
			}
			for r := range rounds {
				batch := []store.Message{
					msg(owners[0], fmt.Sprintf("w%d.r%d.a", w, r)),
					msg(owners[1], fmt.Sprintf("w%d.r%d.b", w, r)),
					msg(owners[0], fmt.Sprintf("w%d.r%d.c", w, r)),
					// A message every worker sends: a replay racing the original.
					msg("hot", fmt.Sprint("shared", r%4)),
				}
				stored, err := s.Append(ctxT(t), 0, batch)
				results <- result{stored, err}
			}
		})
	}
	wg.Wait()
	close(results)

	returned := make(map[msgKey]store.Message)
	var ok, conflicts int
	for r := range results {
		switch {
		case r.err == nil:
			ok++
			for _, m := range r.stored {
				k := msgKey{m.Owner, m.ID}
				if prev, dup := returned[k]; dup {
					t.Errorf("two Appends stored %s %x: seqs %d and %d", m.Owner, m.ID, prev.Seq, m.Seq)
				}
				returned[k] = m
			}
		case errors.Is(r.err, store.ErrConflict):
			conflicts++
			if r.stored != nil {
				t.Errorf("a conflicting Append returned %d messages", len(r.stored))
			}
		default:
			t.Errorf("Append: %v", r.err)
		}
	}
	t.Logf("%d Appends succeeded, %d failed with ErrConflict", ok, conflicts)
	if ok == 0 {
		t.Fatal("no Append succeeded")
	}
	checkInboxes(t, stores[0], returned, "hot", "cold")
}

// checkInboxes fails t unless the inboxes of owners hold exactly the
// returned messages, numbered 1..N.
func checkInboxes(t *testing.T, s store.Store, returned map[msgKey]store.Message, owners ...string) {
	t.Helper()
	want := make(map[string]int)
	for k := range returned {
		want[k.owner]++
	}
	for _, owner := range owners {
		inbox := all(t, s, 0, owner)
		if len(inbox) != want[owner] {
			t.Errorf("%s: %d messages stored, successful Appends returned %d", owner, len(inbox), want[owner])
		}
		for i, m := range inbox {
			if m.Seq != uint64(i+1) {
				t.Fatalf("%s: position %d holds seq %d", owner, i, m.Seq)
			}
			r, ok := returned[msgKey{m.Owner, m.ID}]
			if !ok {
				t.Errorf("%s seq %d: stored, but no successful Append returned it", owner, m.Seq)
				continue
			}
			if d := sameMessage(m, r); d != "" {
				t.Errorf("%s seq %d: %s", owner, m.Seq, d)
			}
		}
		if got := lastSeq(t, s, 0, owner); got != uint64(len(inbox)) {
			t.Errorf("%s: LastSeq %d, inbox of %d", owner, got, len(inbox))
		}
	}
}

// testCloseWhileBusy closes a store under load: every Append succeeds or
// fails with ErrConflict or ErrClosed, and what succeeded is stored.
func testCloseWhileBusy(t *testing.T, h Harness) {
	dsns := h.NewDSNs(t, 1)
	s := h.Open(t, dsns...)
	const workers = 4
	var (
		mu       sync.Mutex
		returned = make(map[msgKey]store.Message)
		started  sync.WaitGroup
		wg       sync.WaitGroup
		n        atomic.Int64
	)
	started.Add(workers)
	for w := range workers {
		wg.Go(func() {
			first := true
			for {
				m := msg("alice", fmt.Sprint("m", n.Add(1)))
				got, err := s.Append(ctxT(t), 0, []store.Message{m})
				if errors.Is(err, store.ErrConflict) {
					continue // another worker took the seq
				}
				if err != nil {
					if !errors.Is(err, store.ErrClosed) {
						t.Errorf("worker %d: Append: %v", w, err)
					}
					if first {
						started.Done()
					}
					return
				}
				mu.Lock()
				returned[msgKey{m.Owner, m.ID}] = got[0]
				mu.Unlock()
				if first {
					first = false
					started.Done()
				}
			}
		})
	}
	started.Wait()
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	wg.Wait()
	checkInboxes(t, h.Open(t, dsns...), returned, "alice")
}
