package shard

import (
	"context"
	"errors"
	"fmt"
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
	copies   []*kgo.Record
	payload  []byte
	refs     []router.SessionRef
}

type presenceOp struct {
	kind    wire.Kind
	user    string
	ref     router.SessionRef
	expires time.Time
}

// process applies the records of one partition, in the order documented in
// doc.go. It returns an error only when the partition cannot go on here;
// the records' offsets are then not committed.
func (s *Shard) process(ctx context.Context, part int32, recs []*kgo.Record) error {
	b := &s.b
	b.msgs, b.presence, b.copies = b.msgs[:0], b.presence[:0], b.copies[:0]
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
			b.msgs = append(b.msgs, store.Message{
				Owner: r.To, ID: r.ID, Sender: r.Sender, ClientMsgID: r.ClientMsgID,
				Conv: r.Sender, Body: r.Body, SentAt: r.SentAt,
			})
			if r.Sender != r.To {
				b.copies = append(b.copies, s.senderCopy(r))
			}
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

	// 3. Records this batch causes elsewhere, durable before the commit.
	if err := s.produceAll(ctx, b.copies); err != nil {
		return err
	}
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
		t.Connect(part, op.user, op.ref, op.expires)
		s.cfg.Plane.Ready(op.ref.Edge, op.user, op.ref.Session)
	case wire.KindDisconnect:
		t.Disconnect(op.user, op.ref)
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
	for i, ref := range b.refs {
		if seenEdge(b.refs[:i], ref.Edge) {
			continue // the edge writes to all of the user's sessions at once
		}
		if s.cfg.Plane.Deliver(ref.Edge, m.Owner, b.payload) {
			s.m.deliveries.Inc()
		} else {
			s.m.undelivered.Inc()
		}
	}
	s.m.deliveryLat.Update(float64(now.UnixMicro()-m.SentAt) / 1e6)
}

// senderCopy builds the record that appends a direct message to its
// sender's own inbox, on the sender's partition.
func (s *Shard) senderCopy(r *wire.Record) *kgo.Record {
	c := wire.Record{
		Kind: wire.KindAppend, ID: r.ID, Sender: r.Sender, ClientMsgID: r.ClientMsgID,
		Owners: []string{r.Sender}, Conv: r.To, Body: r.Body, SentAt: r.SentAt,
	}
	return &kgo.Record{
		Topic:     s.cfg.Topic,
		Partition: s.cfg.Ring.Partition(r.Sender),
		Key:       []byte(r.Sender),
		Value:     wire.AppendRecord(nil, &c),
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
