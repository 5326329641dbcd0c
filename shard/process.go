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

// batch holds the reusable state of one process call.
type batch struct {
	rec      wire.Record
	msgs     []store.Message
	presence []presenceOp
	copies   []*kgo.Record // records this batch causes on other partitions
	events   []event       // pushed to online sessions, never stored
	topics   []event       // pushed to topic subscribers on every edge
	payload  []byte
	refs     []router.SessionRef
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

// process applies the records of one partition, in the order documented in
// doc.go, and appends to b.copies the records they cause on other
// partitions, which the caller produces for the whole poll at once before
// it commits. It returns an error only when the partition cannot go on
// here; its offsets are then not committed and its copies are dropped.
func (s *Shard) process(ctx context.Context, part int32, recs []*kgo.Record) error {
	b := &s.b
	b.msgs, b.presence, b.events, b.topics = b.msgs[:0], b.presence[:0], b.events[:0], b.topics[:0]
	copies := len(b.copies)
	err := s.apply(ctx, part, recs)
	if err != nil {
		clear(b.copies[copies:])
		b.copies = b.copies[:copies]
	}
	return err
}

func (s *Shard) apply(ctx context.Context, part int32, recs []*kgo.Record) error {
	b := &s.b
	s.m.batchSize.Update(float64(len(recs)))

	for _, kr := range recs {
		if err := wire.DecodeRecord(kr.Value, &b.rec); err != nil {
			// A record no edge could have written: count it and move on,
			// since stopping here would stop the partition for good.
			s.m.badRecords.Inc()
			s.log.Warn("malformed record", "partition", part, "offset", kr.Offset, "err", err)
			continue
		}
		r := &b.rec
		s.m.records[r.Kind].Inc()
		switch r.Kind {
		case wire.KindSend:
			if err := s.direct(ctx, r); err != nil {
				return err
			}
		case wire.KindGroupSend:
			if err := s.groupSend(ctx, r); err != nil {
				return err
			}
		case wire.KindGroupChange:
			if s.cfg.Social != nil {
				s.cfg.Social.Invalidate(r.Group, r.Version)
			}
		case wire.KindPresence:
			b.events = append(b.events, event{
				users:   slices.Clone(r.Owners),
				payload: wire.AppendPresence(nil, r.User, r.Online),
			})
		case wire.KindTopic:
			b.topics = append(b.topics, event{
				users:   []string{r.Topic},
				payload: wire.AppendTopic(nil, r.Topic, r.Sender, r.ID, r.Body, r.SentAt),
			})
		case wire.KindReject:
			b.events = append(b.events, event{
				users:   []string{r.User},
				payload: wire.AppendError(nil, r.ClientMsgID, r.Code, r.Reason),
			})
		case wire.KindAppend:
			for _, o := range r.Owners {
				b.msgs = append(b.msgs, store.Message{
					Owner: o, ID: r.ID, Sender: r.Sender, ClientMsgID: r.ClientMsgID,
					Conv: r.Conv, Body: r.Body, SentAt: r.SentAt,
				})
			}
		case wire.KindConnect, wire.KindDisconnect:
			b.presence = append(b.presence, presenceOp{
				kind: r.Kind, user: r.User,
				ref:     router.SessionRef{Edge: r.Edge, Session: r.Session},
				expires: kr.Timestamp.Add(s.cfg.DefaultLease),
			})
		case wire.KindLease:
			b.presence = append(b.presence, presenceOp{
				kind: r.Kind, ref: router.SessionRef{Edge: r.Edge},
				expires: kr.Timestamp.Add(time.Duration(r.TTLMillis) * time.Millisecond),
			})
		}
	}

	// A message no store can hold would fail the whole batch on every
	// retry and stop the partition: drop it, loudly. Edges never produce one.
	kept := b.msgs[:0]
	for i := range b.msgs {
		if err := store.Validate(&b.msgs[i]); err != nil {
			s.m.badRecords.Inc()
			s.log.Warn("message dropped", "partition", part, "owner", b.msgs[i].Owner, "err", err)
			continue
		}
		kept = append(kept, b.msgs[i])
	}
	b.msgs = kept

	// 1. Store, in one transaction.
	stored, err := s.store(ctx, part, b.msgs)
	if err != nil {
		return err
	}

	// 2. Presence, then push. Sessions that connected within this batch
	// get the batch's messages too; a client drops what it already has by
	// sequence number.
	for _, op := range b.presence {
		s.applyPresence(part, op)
	}
	now := time.Now()
	for i := range stored {
		s.push(&stored[i], now)
	}
	for _, ev := range b.events {
		for _, u := range ev.users {
			s.pushTo(u, ev.payload)
		}
	}
	for _, ev := range b.topics {
		s.cfg.Plane.Publish(ev.users[0], ev.payload)
		s.m.topicPushes.Inc()
	}
	// 3. The records this batch causes elsewhere are in b.copies: the poll
	// produces them all at once, durable before the commit.
	return nil
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
