package shard

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/surgechat/surge/internal/kafka"
	"github.com/surgechat/surge/internal/store"
	"github.com/surgechat/surge/internal/wire"
	"github.com/surgechat/surge/router"
)

const testParts = 4

type fixture struct {
	brokers []string
	store   store.Store
	ring    *router.Ring
	prod    *kgo.Client
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	k, err := kafka.StartEmbedded("", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	ctx := context.Background()
	if err := kafka.EnsureTopic(ctx, k.Addrs(), kafka.DefaultTopic, testParts); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, store.Config{Driver: store.DriverSQLite, DSNs: []string{filepath.Join(t.TempDir(), "inbox.db")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	prod, err := kgo.NewClient(kafka.ProducerOptions(k.Addrs())...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	return &fixture{brokers: k.Addrs(), store: st, ring: router.NewRing(testParts), prod: prod}
}

// send produces a direct message the way an edge does.
func (f *fixture) send(t *testing.T, from, to, id string) {
	t.Helper()
	r := wire.Record{Kind: wire.KindSend, ID: wire.NewMsgID(from, to, id), Sender: from, ClientMsgID: id, To: to,
		Body: []byte("body " + id), SentAt: time.Now().UnixMicro()}
	kr := &kgo.Record{Topic: kafka.DefaultTopic, Partition: f.ring.Partition(to), Key: []byte(to), Value: wire.AppendRecord(nil, &r)}
	if err := f.prod.ProduceSync(context.Background(), kr).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// run starts a shard in group and returns a stop function.
func (f *fixture) run(t *testing.T, group string) func() {
	t.Helper()
	return f.runWith(t, group, vm.NewSet())
}

func (f *fixture) runWith(t *testing.T, group string, set *vm.Set) func() {
	t.Helper()
	s, err := New(Config{Brokers: f.brokers, Group: group, Ring: f.ring, Store: f.store, Plane: router.NewPlane(),
		FetchMaxWait: 10 * time.Millisecond, Metrics: set})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = s.Run(ctx) }()
	return func() { cancel(); wg.Wait() }
}

func (f *fixture) inbox(t *testing.T, owner string) []store.Message {
	t.Helper()
	msgs, err := f.store.Inbox(context.Background(), f.ring.Partition(owner), owner, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func (f *fixture) waitInbox(t *testing.T, owner string, n int) []store.Message {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		msgs := f.inbox(t, owner)
		if len(msgs) >= n {
			return msgs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has %d messages after 15s, want %d", owner, len(msgs), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func checkInbox(t *testing.T, owner string, msgs []store.Message, wantIDs []string) {
	t.Helper()
	if len(msgs) != len(wantIDs) {
		t.Fatalf("%s has %d messages, want %d", owner, len(msgs), len(wantIDs))
	}
	for i, m := range msgs {
		if m.Seq != uint64(i+1) || m.ClientMsgID != wantIDs[i] {
			t.Fatalf("%s[%d] = seq %d id %s, want seq %d id %s", owner, i, m.Seq, m.ClientMsgID, i+1, wantIDs[i])
		}
	}
}

// TestReplayIsIdempotent consumes the log, then consumes all of it again
// as if no offset had ever been committed: every inbox must come out the
// same, gap-free and without a duplicate, sender copies included.
func TestReplayIsIdempotent(t *testing.T) {
	f := newFixture(t)
	var ids []string
	for i := 0; i < 50; i++ {
		id := fmt.Sprintf("m%d", i)
		ids = append(ids, id)
		f.send(t, "alice", "bob", id)
		f.send(t, "carol", "bob", "c"+id)
	}
	f.send(t, "alice", "bob", "m0") // a client retry

	stop := f.run(t, "first")
	bob := f.waitInbox(t, "bob", 100)
	f.waitInbox(t, "alice", 50)
	stop()

	set := vm.NewSet()
	stop = f.runWith(t, "replay-from-zero", set)
	// The replay consumes the 101 sends and the first run's 101 sender
	// copies, and produces the copies again: wait until it has consumed
	// those too.
	sends := set.GetOrCreateCounter(`surge_kafka_consumed_records_total{kind="send"}`)
	appends := set.GetOrCreateCounter(`surge_kafka_consumed_records_total{kind="append"}`)
	deadline := time.Now().Add(15 * time.Second)
	for sends.Get() < 101 || appends.Get() < 202 {
		if time.Now().After(deadline) {
			t.Fatalf("replay consumed %d sends and %d appends", sends.Get(), appends.Get())
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()

	again := f.inbox(t, "bob")
	if len(again) != len(bob) {
		t.Fatalf("bob had %d messages, %d after the replay", len(bob), len(again))
	}
	for i := range bob {
		if again[i].ID != bob[i].ID || again[i].Seq != bob[i].Seq {
			t.Fatalf("replay changed bob[%d]", i)
		}
	}
	checkInbox(t, "alice", f.inbox(t, "alice"), ids)
	var carolIDs []string
	for _, id := range ids {
		carolIDs = append(carolIDs, "c"+id)
	}
	checkInbox(t, "carol", f.inbox(t, "carol"), carolIDs)
	// Per-sender order holds inside bob's single total order.
	var fromAlice []string
	for _, m := range again {
		if m.Sender == "alice" {
			fromAlice = append(fromAlice, m.ClientMsgID)
		}
	}
	if fmt.Sprint(fromAlice) != fmt.Sprint(ids) {
		t.Fatalf("alice's messages reached bob as %v", fromAlice)
	}
}

// TestMalformedRecordDoesNotStopPartition checks that garbage on a
// partition is counted and skipped.
func TestMalformedRecordDoesNotStopPartition(t *testing.T) {
	f := newFixture(t)
	p := f.ring.Partition("bob")
	for _, v := range [][]byte{nil, []byte("garbage"), {1, 99}} {
		kr := &kgo.Record{Topic: kafka.DefaultTopic, Partition: p, Key: []byte("bob"), Value: v}
		if err := f.prod.ProduceSync(context.Background(), kr).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	f.send(t, "alice", "bob", "after-garbage")
	stop := f.run(t, "g")
	defer stop()
	checkInbox(t, "bob", f.waitInbox(t, "bob", 1), []string{"after-garbage"})
}
