package shard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/surgechat/surge/internal/store"
	"github.com/surgechat/surge/internal/wire"
	"github.com/surgechat/surge/router"
)

// batch holds the reusable state of one poll.
type batch struct {
	rec     wire.Record
	work    []partWork    // one per partition with records in the poll
	copies  []*kgo.Record // records the poll causes on other partitions
	payload []byte
	refs    []router.SessionRef
}

// partWork is what one partition's records of a poll ask for.
type partWork struct {
	part     int32
	last     *kgo.Record // the last record, committed when all is done
	hw       int64       // the partition's high watermark, for the lag
	msgs     []store.Message
	stored   []store.Message
	presence []presenceOp
	events   []event       // pushed to online sessions, never stored
	topics   []event       // pushed to topic subscribers on every edge
	copies   []*kgo.Record // records caused on other partitions
}

func (w *partWork) reset(part int32) {
	w.part, w.last, w.hw = part, nil, 0
	clear(w.msgs)
	clear(w.copies)
	w.msgs, w.stored, w.presence = w.msgs[:0], nil, w.presence[:0]
	w.events, w.topics, w.copies = w.events[:0], w.topics[:0], w.copies[:0]
}

// event is a frame for the sessions of some users that is pushed and
// never stored: a presence change of a friend, or the rejection of a send.
type event struct {
	users   []string
	payload []byte
}

type presenceOp struct {
	kind    wire.Kind
	user    string
	ref     router.SessionRef
	expires time.Time
}

// poll applies one poll's records in the order documented in doc.go: it
// reads every partition's records, stores them all (one transaction per
// database) and pushes. It leaves in b.copies the records they cause on
// other partitions, and returns the last record of every partition whose
// store succeeded: the committer produces the one, then commits the other.
// A partition that cannot go on here is left out; its records are not
// committed.
func (s *Shard) poll(ctx context.Context, fetches kgo.Fetches) ([]*kgo.Record, error) {
	b := &s.b
	b.work = b.work[:0]
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) == 0 || !s.writable(p.Partition) {
			return
		}
		if len(b.work) < cap(b.work) {
			b.work = b.work[:len(b.work)+1]
		} else {
			b.work = append(b.work, partWork{})
		}
		w := &b.work[len(b.work)-1]
		w.reset(p.Partition)
		w.last, w.hw = p.Records[len(p.Records)-1], p.HighWatermark
		if err := s.read(ctx, w, p.Records); err != nil {
			if ctx.Err() == nil {
				s.log.Error("partition stopped", "partition", p.Partition, "err", err)
			}
			b.work = b.work[:len(b.work)-1]
		}
	})
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	// 1. Store, in one transaction per database.
	s.storeAll(ctx, b.work)

	// 2. Presence, then push. Sessions that connected within this poll get
	// its messages too; a client drops what it already has by sequence.
	now := time.Now()
	var commit []*kgo.Record
	clear(b.copies)
	b.copies = b.copies[:0]
	for i := range b.work {
		w := &b.work[i]
		if w.last == nil {
			continue // its store failed
		}
		for _, op := range w.presence {
			s.applyPresence(w.part, op)
		}
		for j := range w.stored {
			s.push(&w.stored[j], now)
		}
		for _, ev := range w.events {
			for _, u := range ev.users {
				s.pushTo(u, ev.payload)
			}
		}
		for _, ev := range w.topics {
			s.cfg.Plane.Publish(ev.users[0], ev.payload)
			s.m.topicPushes.Inc()
		}
		b.copies = append(b.copies, w.copies...)
		commit = append(commit, w.last)
		s.m.lag(w.part, w.hw-w.last.Offset-1)
	}

	// 3 and 4 (produce b.copies, then commit) are the committer's.
	return commit, nil
}

// read decodes one partition's records into w.
func (s *Shard) read(ctx context.Context, w *partWork, recs []*kgo.Record) error {
	r := &s.b.rec
	s.m.batchSize.Update(float64(len(recs)))
	for _, kr := range recs {
		if err := wire.DecodeRecord(kr.Value, r); err != nil {
			// A record no edge could have written: count it and move on,
			// since stopping here would stop the partition for good.
			s.m.badRecords.Inc()
			s.log.Warn("malformed record", "partition", w.part, "offset", kr.Offset, "err", err)
			continue
		}
		s.m.records[r.Kind].Inc()
		switch r.Kind {
		case wire.KindSend:
			if err := s.direct(ctx, w, r); err != nil {
				return err
			}
		case wire.KindGroupSend:
			if err := s.groupSend(ctx, w, r); err != nil {
				return err
			}
		case wire.KindGroupChange:
			if s.cfg.Social != nil {
				s.cfg.Social.Invalidate(r.Group, r.Version)
			}
		case wire.KindPresence:
			w.events = append(w.events, event{
				users:   slices.Clone(r.Owners),
				payload: wire.AppendPresence(nil, r.User, r.Online),
			})
		case wire.KindTopic:
			w.topics = append(w.topics, event{
				users:   []string{r.Topic},
				payload: wire.AppendTopic(nil, r.Topic, r.Sender, r.ID, r.Body, r.SentAt),
			})
		case wire.KindReject:
			w.events = append(w.events, event{
				users:   []string{r.User},
				payload: wire.AppendError(nil, r.ClientMsgID, r.Code, r.Reason),
			})
		case wire.KindAppend:
			for _, o := range r.Owners {
				s.addMsg(w, store.Message{
					Owner: o, ID: r.ID, Sender: r.Sender, ClientMsgID: r.ClientMsgID,
					Conv: r.Conv, Body: r.Body, SentAt: r.SentAt,
				})
			}
		case wire.KindConnect, wire.KindDisconnect:
			w.presence = append(w.presence, presenceOp{
				kind: r.Kind, user: r.User,
				ref:     router.SessionRef{Edge: r.Edge, Session: r.Session},
				expires: kr.Timestamp.Add(s.cfg.DefaultLease),
			})
		case wire.KindLease:
			w.presence = append(w.presence, presenceOp{
				kind: r.Kind, ref: router.SessionRef{Edge: r.Edge},
				expires: kr.Timestamp.Add(time.Duration(r.TTLMillis) * time.Millisecond),
			})
		}
	}
	return nil
}

// addMsg queues m for the store. A message no store can hold would fail the
// whole transaction on every retry and stop the partition: it is dropped,
// loudly. Edges never produce one.
func (s *Shard) addMsg(w *partWork, m store.Message) {
	if err := store.Validate(&m); err != nil {
		s.m.badRecords.Inc()
		s.log.Warn("message dropped", "partition", w.part, "owner", m.Owner, "err", err)
		return
	}
	w.msgs = append(w.msgs, m)
}

// storeAll stores every partition's messages, all at once. A partition
// whose database failed is then stored on its own, so that a fenced
// partition (or one database's outage) holds up only itself; a partition
// whose store fails has its last record cleared, which leaves it
// uncommitted.
func (s *Shard) storeAll(ctx context.Context, work []partWork) {
	var parts []int32
	var msgs [][]store.Message
	var which []int // index into work
	for i := range work {
		if len(work[i].msgs) > 0 {
			parts = append(parts, work[i].part)
			msgs = append(msgs, work[i].msgs)
			which = append(which, i)
		}
	}
	if len(parts) == 0 {
		return
	}
	start := time.Now()
	stored, errs := s.cfg.Store.AppendParts(ctx, parts, msgs)
	s.m.appendLatency.UpdateDuration(start)
	for k, i := range which {
		w := &work[i]
		err := errs[k]
		if err == nil {
			w.stored = stored[k]
			s.m.stored.Add(len(w.stored))
			s.m.duplicates.Add(len(w.msgs) - len(w.stored))
			continue
		}
		if w.stored, err = s.store(ctx, w.part, w.msgs); err != nil {
			if ctx.Err() == nil {
				s.log.Error("partition stopped", "partition", w.part, "err", err)
			}
			w.last = nil
		}
	}
}

// store appends msgs, retrying while the store is unreachable. A sequence
// conflict fences the partition.
func (s *Shard) store(ctx context.Context, part int32, msgs []store.Message) ([]store.Message, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	backoff := 50 * time.Millisecond
	for {
		start := time.Now()
		stored, err := s.cfg.Store.Append(ctx, part, msgs)
		if err == nil {
			s.m.appendLatency.UpdateDuration(start)
			s.m.stored.Add(len(stored))
			s.m.duplicates.Add(len(msgs) - len(stored))
			return stored, nil
		}
		if errors.Is(err, store.ErrConflict) {
			s.m.conflicts.Inc()
			s.fence(part)
			return nil, fmt.Errorf("partition %d fenced: %w", part, err)
		}
		s.m.storeErrors.Inc()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !s.writable(part) {
			return nil, fmt.Errorf("partition %d revoked while the store failed: %w", part, err)
		}
		s.log.Warn("store append failed; retrying", "partition", part, "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (s *Shard) applyPresence(part int32, op presenceOp) {
	t := s.cfg.Table
	switch op.kind {
	case wire.KindConnect:
		if t.Connect(part, op.user, op.ref, op.expires) {
			s.presence.changed(op.user, true)
		}
		s.cfg.Plane.Ready(op.ref.Edge, op.user, op.ref.Session)
	case wire.KindDisconnect:
		if t.Disconnect(op.user, op.ref) {
			s.presence.changed(op.user, false)
		}
	case wire.KindLease:
		t.Lease(part, op.ref.Edge, op.expires)
	}
}

// push sends m to every edge holding a session of its owner. The payload is
// encoded once and shared by all of them.
func (s *Shard) push(m *store.Message, now time.Time) {
	b := &s.b
	b.refs = s.cfg.Table.Sessions(b.refs[:0], m.Owner)
	if len(b.refs) == 0 {
		return
	}
	b.payload = wire.AppendMsg(b.payload[:0], m)
	s.deliver(m.Owner, b.refs, b.payload)
	s.m.deliveryLat.Update(float64(now.UnixMicro()-m.SentAt) / 1e6)
}

// pushTo pushes payload to user's online sessions.
func (s *Shard) pushTo(user string, payload []byte) {
	b := &s.b
	b.refs = s.cfg.Table.Sessions(b.refs[:0], user)
	s.deliver(user, b.refs, payload)
}

func (s *Shard) deliver(user string, refs []router.SessionRef, payload []byte) {
	for i, ref := range refs {
		if seenEdge(refs[:i], ref.Edge) {
			continue // the edge writes to all of the user's sessions at once
		}
		if s.cfg.Plane.Deliver(ref.Edge, user, payload) {
			s.m.deliveries.Inc()
		} else {
			s.m.undelivered.Inc()
		}
	}
}

// produceAll produces recs and waits until the broker has every one,
// retrying failures: the offsets that caused them are not committed before.
func (s *Shard) produceAll(ctx context.Context, recs []*kgo.Record) error {
	for len(recs) > 0 {
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			failed []*kgo.Record
			last   error
		)
		wg.Add(len(recs))
		for _, r := range recs {
			s.cl.Produce(ctx, r, func(r *kgo.Record, err error) {
				if err != nil {
					mu.Lock()
					failed, last = append(failed, r), err
					mu.Unlock()
				}
				wg.Done()
			})
		}
		wg.Wait()
		s.m.copies.Add(len(recs) - len(failed))
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if len(failed) > 0 {
			s.log.Warn("produce copies failed; retrying", "records", len(failed), "err", last)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
		recs = failed
	}
	return nil
}

func seenEdge(refs []router.SessionRef, edge string) bool {
	for _, r := range refs {
		if r.Edge == edge {
			return true
		}
	}
	return false
}
