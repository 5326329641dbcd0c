package edge

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/surgechat/surge/edge/internal/ws"
	"github.com/surgechat/surge/internal/wire"
)

// requests recycles decoded requests, so that neither a connection holds
// one while idle nor a frame allocates one.
var requests = sync.Pool{New: func() any { return new(wire.Request) }}

// Sync page sizes.
const (
	defaultSyncLimit = 100
	maxSyncLimit     = 1000
)

// request handles one client text frame on the connection's loop.
func (e *Edge) request(c *conn, data []byte, now int64) {
	r := requests.Get().(*wire.Request)
	defer requests.Put(r)
	if err := wire.DecodeRequest(data, r); err != nil {
		e.reject(c, "", wire.CodeBadFrame, "frame is not a JSON object with a \"type\"")
		return
	}
	switch r.Type {
	case wire.TypeSend:
		e.send(c, r, now)
	case wire.TypeSync:
		e.startSync(c, r.ID, r.After, r.Limit)
	case wire.TypePing:
		c.enqueueLocal(wire.AppendPong(nil, r.ID, now/1e3), e.cfg.WriteQueue)
	case wire.TypePresence:
		e.presence(c, r)
	case wire.TypeSubscribe:
		e.subscribe(c, r)
	case wire.TypeUnsubscribe:
		e.unsubscribe(c, r)
	default:
		e.reject(c, r.ID, wire.CodeBadFrame, "unknown type "+quoteShort(r.Type))
	}
}

func (e *Edge) reject(c *conn, id, code, reason string) {
	e.m.rejected(code)
	c.enqueueLocal(wire.AppendError(nil, id, code, reason), e.cfg.WriteQueue)
}

// send validates a send, produces it keyed by the recipient (a user, or a
// group) and acks it once the broker has it.
func (e *Edge) send(c *conn, r *wire.Request, now int64) {
	switch {
	case !wire.ValidID(r.ID):
		e.reject(c, r.ID, wire.CodeBadRequest, "id must be 1-64 characters of A-Z a-z 0-9 _ . - @")
		return
	case r.Group != "" && r.To != "":
		e.reject(c, r.ID, wire.CodeBadRecipient, "give either to (a user) or group, not both")
		return
	case r.Group != "" && !wire.ValidID(r.Group):
		e.reject(c, r.ID, wire.CodeBadRecipient, "group must be a group id: 1-64 characters of A-Z a-z 0-9 _ . - @")
		return
	case r.Group == "" && !wire.ValidID(r.To):
		e.reject(c, r.ID, wire.CodeBadRecipient, "to must be a user id: 1-64 characters of A-Z a-z 0-9 _ . - @")
		return
	case len(r.Body) > e.cfg.MaxBody:
		e.reject(c, r.ID, wire.CodeTooLarge, "body exceeds the limit of "+strconv.Itoa(e.cfg.MaxBody)+" bytes")
		return
	case !utf8.ValidString(r.Body):
		e.reject(c, r.ID, wire.CodeBadRequest, "body must be UTF-8 text")
		return
	case !c.bucket.allow(now, e.cfg.SendRate, e.cfg.SendBurst):
		e.reject(c, r.ID, wire.CodeRateLimited, "send rate over "+strconv.Itoa(int(e.cfg.SendRate))+"/s; retry later with the same id")
		return
	}
	if code, reason := e.precheck(c.user, r); code != "" {
		e.reject(c, r.ID, code, reason)
		return
	}
	p := sendPool.Get().(*pendingSend)
	p.e, p.c, p.start = e, c, now
	owner := r.To
	p.rec.Kind, p.rec.Group = wire.KindSend, ""
	if r.Group != "" {
		owner = "g/" + r.Group
		p.rec.Kind, p.rec.Group = wire.KindGroupSend, r.Group
	}
	p.rec.ID = wire.NewMsgID(c.user, owner, r.ID)
	p.rec.Sender, p.rec.ClientMsgID, p.rec.To = c.user, r.ID, r.To
	p.rec.Body = append(p.rec.Body[:0], r.Body...)
	p.rec.SentAt = now / 1e3
	p.kr = kgo.Record{
		Topic:     e.cfg.Topic,
		Partition: e.cfg.Ring.Partition(owner),
		Key:       append(p.kr.Key[:0], owner...),
		Value:     wire.AppendRecord(p.kr.Value[:0], &p.rec),
	}
	e.cfg.Producer.TryProduce(context.Background(), &p.kr, p.done)
}

// precheck refuses, from what the social cache already holds, a send that
// the shard would refuse; on a miss it warms the cache in the background
// and lets the shard decide.
func (e *Edge) precheck(user string, r *wire.Request) (code, reason string) {
	sc := e.cfg.Social
	if sc == nil {
		return "", ""
	}
	if r.Group != "" {
		m, ok := sc.PeekMembership(r.Group)
		if !ok {
			e.warm(func(ctx context.Context) { _, _ = sc.Membership(ctx, r.Group) })
			return "", ""
		}
		if !m.Exists || !m.Has(user) {
			return wire.CodeNotMember, "not a member of group " + r.Group
		}
		return "", ""
	}
	if user == r.To {
		return "", ""
	}
	d, ok := sc.PeekDirect(user, r.To)
	if !ok {
		to := r.To
		e.warm(func(ctx context.Context) { _, _ = sc.CheckDirect(ctx, user, to) })
		return "", ""
	}
	if !d.Allowed {
		switch d.Reason {
		case "not_friends":
			return wire.CodeNotFriends, "only friends may send " + r.To + " direct messages"
		case "no_such_user":
			return wire.CodeBadRecipient, "no user " + r.To
		}
		return wire.CodeBlocked, "direct messages between you and " + r.To + " are blocked"
	}
	return "", ""
}

// warm runs fn in the background unless too many warm-ups are running.
func (e *Edge) warm(fn func(context.Context)) {
	select {
	case e.warms <- struct{}{}:
	default:
		return
	}
	go func() {
		defer func() { <-e.warms }()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		fn(ctx)
	}()
}

// presence answers which of the asked users are online.
func (e *Edge) presence(c *conn, r *wire.Request) {
	switch {
	case e.cfg.Presence == nil:
		e.reject(c, r.ID, wire.CodeUnavailable, "presence is not served by this edge")
		return
	case len(r.Users) == 0 || len(r.Users) > maxPresenceUsers:
		e.reject(c, r.ID, wire.CodeBadRequest, "users must list 1 to "+strconv.Itoa(maxPresenceUsers)+" user ids")
		return
	}
	id, users := r.ID, slices.Clone(r.Users)
	go func() {
		// Only friends see one another: others are left out of the answer.
		if sc := e.cfg.Social; sc != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			friends, err := sc.Friends(ctx, c.user)
			cancel()
			if err != nil {
				c.enqueue(wire.AppendError(nil, id, wire.CodeUnavailable, "friend list unavailable; retry"), e.cfg.WriteQueue)
				return
			}
			users = slices.DeleteFunc(users, func(u string) bool { return !slices.Contains(friends, u) })
		}
		online := make([]bool, len(users))
		for i, u := range users {
			online[i] = e.cfg.Presence.Online(u)
		}
		c.enqueue(wire.AppendPresenceReply(nil, id, users, online), e.cfg.WriteQueue)
	}()
}

const maxPresenceUsers = 100

// maxTopics bounds the topics one connection may subscribe to.
const maxTopics = 32

func (e *Edge) subscribe(c *conn, r *wire.Request) {
	switch {
	case !wire.ValidID(r.Topic):
		e.reject(c, r.ID, wire.CodeBadRequest, "topic must be 1-64 characters of A-Z a-z 0-9 _ . - @")
		return
	case slices.Contains(c.topics, r.Topic):
	case len(c.topics) >= maxTopics:
		e.reject(c, r.ID, wire.CodeBadRequest, "at most "+strconv.Itoa(maxTopics)+" topics per connection")
		return
	default:
		c.topics = append(c.topics, r.Topic)
		e.topics.add(r.Topic, c)
	}
	c.enqueueLocal(wire.AppendSubscribed(nil, wire.TypeSubscribed, r.ID, r.Topic), e.cfg.WriteQueue)
}

func (e *Edge) unsubscribe(c *conn, r *wire.Request) {
	if i := slices.Index(c.topics, r.Topic); i >= 0 {
		c.topics = slices.Delete(c.topics, i, i+1)
		e.topics.remove(r.Topic, c)
	}
	c.enqueueLocal(wire.AppendSubscribed(nil, wire.TypeUnsubscribed, r.ID, r.Topic), e.cfg.WriteQueue)
}

// pendingSend is a send between produce and ack; pooled so that the hot
// path reuses records and buffers.
type pendingSend struct {
	e     *Edge
	c     *conn
	start int64
	rec   wire.Record
	kr    kgo.Record
	ack   []byte
}

var sendPool = sync.Pool{New: func() any { return new(pendingSend) }}

// done runs on the producer's goroutine once the broker answered.
func (p *pendingSend) done(_ *kgo.Record, err error) {
	e, c := p.e, p.c
	if err != nil {
		e.m.produceErrors.Inc()
		e.m.rejected(wire.CodeUnavailable)
		p.ack = wire.AppendError(p.ack[:0], p.rec.ClientMsgID, wire.CodeUnavailable, "message not stored: "+err.Error()+"; retry with the same id")
	} else {
		e.m.produced.Inc()
		e.m.accepted.Inc()
		e.m.ackLat.Update(float64(nowNanos()-p.start) / 1e9)
		p.ack = wire.AppendAck(p.ack[:0], p.rec.ClientMsgID, p.rec.ID)
	}
	c.enqueue(p.ack, e.cfg.WriteQueue)
	p.e, p.c = nil, nil
	sendPool.Put(p)
}

// startSync answers a sync off the loop: the store query blocks.
func (e *Edge) startSync(c *conn, id string, after uint64, limit int) {
	if limit <= 0 {
		limit = defaultSyncLimit
	}
	limit = min(limit, maxSyncLimit)
	e.m.syncs.Inc()
	go e.sync(c, id, after, limit)
}

func (e *Edge) sync(c *conn, id string, after uint64, limit int) {
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.SyncWait+10*time.Second)
	defer cancel()
	// Wait until the shard has registered the session, so that everything
	// stored after this read is pushed and nothing falls between the two.
	deadline := time.Now().Add(e.cfg.SyncWait)
	for !c.ready.Load() {
		if time.Now().After(deadline) {
			e.m.rejected(wire.CodeUnavailable)
			c.enqueue(wire.AppendError(nil, id, wire.CodeUnavailable, "session not registered by the shard yet; retry"), e.cfg.WriteQueue)
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	select {
	case e.syncs <- struct{}{}:
	case <-ctx.Done():
		c.enqueue(wire.AppendError(nil, id, wire.CodeUnavailable, "sync queue full; retry"), e.cfg.WriteQueue)
		return
	}
	defer func() { <-e.syncs }()

	start := time.Now()
	msgs, err := e.cfg.Inbox.Inbox(ctx, c.part, c.user, after, limit+1)
	e.m.syncLat.UpdateDuration(start)
	if err != nil {
		e.log.Warn("sync", "user", c.user, "err", err)
		e.m.rejected(wire.CodeUnavailable)
		c.enqueue(wire.AppendError(nil, id, wire.CodeUnavailable, "history store unavailable; retry"), e.cfg.WriteQueue)
		return
	}
	more := len(msgs) > limit
	if more {
		msgs = msgs[:limit]
	}
	last := after
	var buf []byte
	budget := e.cfg.WriteQueue / 2 // one reply never makes its reader a slow consumer
	for i := range msgs {
		buf = wire.AppendMsg(buf[:0], &msgs[i])
		if budget -= len(buf) + ws.MaxServerHeader; budget < 0 && i > 0 {
			more = true // the client asks again from last
			break
		}
		if !c.enqueue(buf, e.cfg.WriteQueue) {
			return // slow consumer or closing: the client syncs again
		}
		last = msgs[i].Seq
	}
	c.enqueue(wire.AppendSynced(buf[:0], id, after, last, more), e.cfg.WriteQueue)
}

// producePresence counts c in or out of its partition's sessions, for the
// leases, and produces the connect or disconnect record.
func (e *Edge) producePresence(c *conn, connect bool) {
	e.partMu.Lock()
	if connect {
		e.partConn[c.part]++
	} else if e.partConn[c.part]--; e.partConn[c.part] <= 0 {
		delete(e.partConn, c.part)
	}
	e.partMu.Unlock()
	e.announce(c, connect)
}

// announce produces c's connect (or disconnect) record on its user's
// partition without counting it: Announce repeats connects this way.
func (e *Edge) announce(c *conn, connect bool) {
	r := wire.Record{Kind: wire.KindDisconnect, User: c.user, Edge: e.cfg.ID, Session: c.session}
	if connect {
		r.Kind = wire.KindConnect
	}
	e.producePresenceRecord(c.part, c.user, &r)
}

func (e *Edge) producePresenceRecord(part int32, key string, r *wire.Record) {
	kr := &kgo.Record{Topic: e.cfg.Topic, Partition: part, Key: []byte(key), Value: wire.AppendRecord(nil, r)}
	e.cfg.Producer.TryProduce(context.Background(), kr, func(_ *kgo.Record, err error) {
		if err != nil {
			e.m.produceErrors.Inc()
			e.log.Warn("presence record not produced", "kind", r.Kind, "err", err)
			return
		}
		e.m.produced.Inc()
	})
}

// housekeeping pings quiet connections, closes dead ones and renews the
// edge's presence leases.
func (e *Edge) housekeeping(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastLease := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			e.checkConns(now)
			if now.Sub(lastLease) >= e.cfg.LeaseInterval {
				e.renewLeases()
				lastLease = now
			}
		}
	}
}

func (e *Edge) checkConns(now time.Time) {
	n := now.UnixNano()
	e.pending.Range(func(k, _ any) bool {
		c := k.(*conn)
		if n-c.opened > int64(e.cfg.HandshakeTimeout) {
			e.m.upgrades["timeout"].Inc()
			_ = c.gc.Close()
		}
		return true
	})
	e.users.all(func(c *conn) {
		quiet := n - c.lastRead.Load()
		switch {
		case quiet > int64(e.cfg.IdleTimeout):
			e.m.idleClosed.Inc()
			c.closeWith(1001, "idle timeout")
		case quiet > int64(e.cfg.Heartbeat) && !c.pinged.Load():
			c.pinged.Store(true)
			c.enqueueFrame(ws.OpPing, nil, e.cfg.WriteQueue, true)
		}
	})
}

func (e *Edge) renewLeases() {
	e.partMu.Lock()
	parts := make([]int32, 0, len(e.partConn))
	for p := range e.partConn {
		parts = append(parts, p)
	}
	e.partMu.Unlock()
	r := wire.Record{Kind: wire.KindLease, Edge: e.cfg.ID, TTLMillis: (3 * e.cfg.LeaseInterval).Milliseconds()}
	for _, p := range parts {
		e.producePresenceRecord(p, e.cfg.ID, &r)
	}
}

func quoteShort(s string) string {
	if len(s) > 32 {
		s = s[:32] + "..."
	}
	return string(wire.AppendString(nil, s))
}
