package shard

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/surgechat/surge/internal/socialcache"
	"github.com/surgechat/surge/internal/store"
	"github.com/surgechat/surge/internal/wire"
)

// GroupOwner is the inbox owner of a group's timeline, and the key that
// places the group on its partition.
func GroupOwner(group string) string { return "g/" + group }

// direct handles a direct message: the recipient's inbox, then the
// sender's own copy on the sender's partition.
func (s *Shard) direct(ctx context.Context, w *partWork, r *wire.Record) error {
	if s.cfg.Social != nil && r.Sender != r.To {
		d, err := s.cfg.Social.CheckDirect(ctx, r.Sender, r.To)
		switch {
		case err != nil:
			// The social service never answered for this pair: the check
			// is not essential, so the message flows.
			s.m.degraded.Inc()
		case !d.Allowed:
			code := wire.CodeBlocked
			switch d.Reason {
			case "not_friends":
				code = wire.CodeNotFriends
			case "no_such_user":
				code = wire.CodeBadRecipient
			}
			s.reject(w, r, r.To, code, "direct message to "+r.To+" refused: "+d.Reason)
			return nil
		}
	}
	s.addMsg(w, store.Message{
		Owner: r.To, ID: r.ID, Sender: r.Sender, ClientMsgID: r.ClientMsgID,
		Conv: r.Sender, Body: r.Body, SentAt: r.SentAt,
	})
	if r.Sender != r.To {
		w.copies = append(w.copies, s.appendRecord(r, []string{r.Sender}, r.To))
	}
	return nil
}

// groupSend appends a group message to the group's timeline and fans it
// out to every member's inbox, one record per partition of members.
func (s *Shard) groupSend(ctx context.Context, w *partWork, r *wire.Record) error {
	conv := GroupOwner(r.Group)
	if s.cfg.Social == nil {
		s.reject(w, r, conv, wire.CodeUnavailable, "this deployment runs no social service")
		return nil
	}
	m, err := s.membership(ctx, r.Group)
	if err != nil {
		return err
	}
	if !m.Exists && r.Trusted {
		// A publish to a group that is gone: the publisher is no user to
		// tell, and the message service checked the group when it took it.
		s.m.rejected.Inc()
		return nil
	}
	if !m.Exists || !r.Trusted && !m.Has(r.Sender) {
		s.reject(w, r, conv, wire.CodeNotMember, "not a member of group "+r.Group)
		return nil
	}
	s.addMsg(w, store.Message{
		Owner: conv, ID: r.ID, Sender: r.Sender, ClientMsgID: r.ClientMsgID,
		Conv: conv, Body: r.Body, SentAt: r.SentAt,
	})
	byPart := make(map[int32][]string)
	for _, u := range m.Members {
		p := s.cfg.Ring.Partition(u)
		byPart[p] = append(byPart[p], u)
	}
	for _, owners := range byPart {
		w.copies = append(w.copies, s.appendRecord(r, owners, conv))
	}
	s.m.fanout.Update(float64(len(m.Members)))
	return nil
}

// membership asks the cache, which falls back to what it knew when the
// social service is down; a group never seen before waits for the
// service, holding the partition, so that nothing is lost.
func (s *Shard) membership(ctx context.Context, group string) (socialcache.Membership, error) {
	backoff := 100 * time.Millisecond
	for {
		m, err := s.cfg.Social.Membership(ctx, group)
		if err == nil {
			return m, nil
		}
		s.m.socialWaits.Inc()
		s.log.Warn("group membership unavailable; holding the partition", "group", group, "err", err)
		select {
		case <-ctx.Done():
			return socialcache.Membership{}, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// reject tells the sender, through its own partition, that a send it was
// acked for was refused.
func (s *Shard) reject(w *partWork, r *wire.Record, to, code, reason string) {
	s.m.rejected.Inc()
	rej := wire.Record{Kind: wire.KindReject, User: r.Sender, ClientMsgID: r.ClientMsgID, To: to, ID: r.ID, Code: code, Reason: reason}
	w.copies = append(w.copies, &kgo.Record{
		Topic:     s.cfg.Topic,
		Partition: s.cfg.Ring.Partition(r.Sender),
		Key:       []byte(r.Sender),
		Value:     wire.AppendRecord(nil, &rej),
	})
}

// appendRecord builds the record that appends r's message to owners'
// inboxes, who all live on one partition.
func (s *Shard) appendRecord(r *wire.Record, owners []string, conv string) *kgo.Record {
	c := wire.Record{
		Kind: wire.KindAppend, ID: r.ID, Sender: r.Sender, ClientMsgID: r.ClientMsgID,
		Owners: owners, Conv: conv, Body: r.Body, SentAt: r.SentAt,
	}
	return &kgo.Record{
		Topic:     s.cfg.Topic,
		Partition: s.cfg.Ring.Partition(owners[0]),
		Key:       []byte(owners[0]),
		Value:     wire.AppendRecord(nil, &c),
	}
}
