package shard

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/surgechat/surge/internal/wire"
)

// notifier tells a user's friends when the user comes online or goes
// offline, at most once per PresenceThrottle per user: a change inside
// the window is held and sent when the window ends, if it still holds, so
// a flapping connection costs its friends one event, not dozens.
type notifier struct {
	s  *Shard
	ch chan presenceChange
}

type presenceChange struct {
	user   string
	online bool
}

type told struct {
	online bool
	at     time.Time
}

func newNotifier(s *Shard) *notifier {
	return &notifier{s: s, ch: make(chan presenceChange, 4096)}
}

// changed queues a change; it never blocks, dropping the change when the
// queue is full.
func (n *notifier) changed(user string, online bool) {
	if n.s.cfg.Social == nil {
		return
	}
	select {
	case n.ch <- presenceChange{user, online}:
	default:
		n.s.m.presenceDrop.Inc()
	}
}

func (n *notifier) run(ctx context.Context) {
	if n.s.cfg.Social == nil {
		return
	}
	window := n.s.cfg.PresenceThrottle
	last := make(map[string]told)
	held := make(map[string]bool)
	tick := time.NewTicker(window / 4)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-n.ch:
			now := time.Now()
			l, seen := last[c.user]
			if !seen || now.Sub(l.at) >= window {
				if !seen || l.online != c.online {
					n.tell(ctx, c.user, c.online)
				}
				last[c.user] = told{c.online, now}
				delete(held, c.user)
				continue
			}
			held[c.user] = c.online
		case now := <-tick.C:
			for u, online := range held {
				if l := last[u]; now.Sub(l.at) >= window {
					if l.online != online {
						n.tell(ctx, u, online)
					}
					last[u] = told{online, now}
					delete(held, u)
				}
			}
			for u, l := range last {
				if _, h := held[u]; !h && now.Sub(l.at) >= window {
					delete(last, u)
				}
			}
		}
	}
}

// tell produces presence records to the partitions of user's friends.
func (n *notifier) tell(ctx context.Context, user string, online bool) {
	s := n.s
	friends, err := s.cfg.Social.Friends(ctx, user)
	if err != nil {
		s.m.presenceDrop.Inc()
		return
	}
	byPart := make(map[int32][]string)
	for _, f := range friends {
		p := s.cfg.Ring.Partition(f)
		byPart[p] = append(byPart[p], f)
	}
	for p, owners := range byPart {
		r := wire.Record{Kind: wire.KindPresence, User: user, Owners: owners, Online: online}
		kr := &kgo.Record{Topic: s.cfg.Topic, Partition: p, Key: []byte(owners[0]), Value: wire.AppendRecord(nil, &r)}
		s.cl.Produce(ctx, kr, func(_ *kgo.Record, err error) {
			if err != nil {
				s.m.presenceDrop.Inc()
				return
			}
			s.m.presenceSent.Inc()
		})
	}
}
