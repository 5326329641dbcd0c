package loadgen

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/surgechat/surge/loadgen/internal/hist"
	"github.com/surgechat/surge/loadgen/internal/verify"
	"github.com/surgechat/surge/loadgen/internal/wsconn"
)

// ReconnectConfig is the reconnect scenario.
type ReconnectConfig struct {
	Users   int // receivers, all dropped at once; 0 means 1000
	Senders int // sender connections, each serving Users/Senders receivers; 0 means one per 50 msgs/s of Rate
	// StormAt is when every receiver drops, from the start; 0 means
	// Warmup + Duration/3.
	StormAt time.Duration
	// Offline is how long they stay away before the reconnects begin; 0
	// means 1s.
	Offline time.Duration
	// Rate is reconnects per second over all workers (open loop); 0 means
	// Config.ConnectRate.
	Rate float64
}

func (r *ReconnectConfig) setDefaults(c *Config) {
	if r.Users <= 0 {
		r.Users = 1000
	}
	if r.Senders <= 0 {
		peak := c.Rate
		for _, p := range c.Ramp {
			peak = math.Max(peak, p.Rate)
		}
		r.Senders = min(max(int(math.Ceil(peak/50)), c.Workers, 1), r.Users)
	}
	if r.StormAt <= 0 {
		r.StormAt = c.Warmup + c.Duration/3
	}
	if r.Offline <= 0 {
		r.Offline = time.Second
	}
	if r.Rate <= 0 {
		r.Rate = c.ConnectRate
	}
}

func (r *ReconnectConfig) validate(c *Config) error {
	if r.Senders > r.Users {
		return usageErr("--senders %d: at most --users (%d)", r.Senders, r.Users)
	}
	if r.StormAt >= c.Warmup+c.Duration {
		return usageErr("--storm-at %v: must fall before sending ends at %v", r.StormAt, c.Warmup+c.Duration)
	}
	return nil
}

// reconnect keeps messages flowing from sender connections "rs<run>-<j>"
// to receivers "rc<run>-<i>" (fresh users, so inboxes start at 1), drops
// every receiver at once at StormAt, and reconnects them at Rate after
// Offline while the senders go on. Each receiver keeps the client's
// discipline of docs/PROTOCOL.md: it hands entries out in seq order
// exactly once, holds what follows a gap and syncs from its last seq on
// every (re)connect. Recovery is when, after the first sync reply, it has
// handed out every message that was acked before its reconnect began.
type reconnect struct {
	cfg     *Config
	d       *dialer
	rcvs    []*rcv
	senders []*rsender
	share   float64
	wg      sync.WaitGroup
	ser     *series
	storm   atomic.Int64 // unix nanos of the storm, once it happened

	ack, delivery, reconn, recover *hist.Recorder
	window
	open, dropped                   atomic.Int64
	reconnected, recovered, retries atomic.Int64
	redelivered, syncs              atomic.Int64
	final                           atomic.Bool
	errs                            errorCounts
	failed                          errorCounts // reconnect failures by reason
	closeOnce                       sync.Once
}

type rsender struct {
	j    int
	user string
	c    *wsconn.Conn
	mu   sync.Mutex
	buf  []byte
}

type rcv struct {
	i    int
	user string
	snd  *rsender
	s    verify.Stream

	mu         sync.Mutex
	c          *wsconn.Conn
	gen        int    // bumped when the storm drops the connection
	last       uint64 // highest inbox seq handed out; all before it were
	held       map[uint64]frame
	syncing    bool
	ackAt      []int64 // by sender seq-1: when the ack came, 0 before
	got        []bool  // by sender seq-1: handed out
	recovering bool
	synced     bool  // a sync reply came since the reconnect
	recStart   int64 // intended reconnect time
	need, cur  int   // sends made before the reconnect; scan cursor
}

func newReconnect(cfg *Config, sh share) (Scenario, error) {
	d, err := newDialer(cfg)
	if err != nil {
		return nil, err
	}
	rc := cfg.Reconnect
	s := &reconnect{cfg: cfg, d: d, ack: hist.NewRecorder(), delivery: hist.NewRecorder(), reconn: hist.NewRecorder(),
		recover: hist.NewRecorder(), ser: newSeries(cfg.seriesSeconds(), "sent", "acked", "delivered", "reconnected", "recovered")}
	bySender := map[int]*rsender{}
	for _, j := range sh.indices(rc.Senders) {
		snd := &rsender{j: j, user: fmt.Sprintf("%srs%s-%d", cfg.UserPrefix, cfg.RunID, j)}
		bySender[j] = snd
		s.senders = append(s.senders, snd)
	}
	for i := range rc.Users {
		if snd, ok := bySender[i%rc.Senders]; ok {
			s.rcvs = append(s.rcvs, &rcv{i: i, user: fmt.Sprintf("%src%s-%d", cfg.UserPrefix, cfg.RunID, i), snd: snd, held: map[uint64]frame{}})
		}
	}
	s.share = float64(len(s.rcvs)) / float64(rc.Users)
	return s, nil
}

// Prepare connects the receivers, waits for their first sync, then
// connects the senders.
func (s *reconnect) Prepare(ctx context.Context) error {
	var mu sync.Mutex
	failed := map[string]int{}
	fail := func(err error) func() {
		mu.Lock()
		failed[wsconn.Reason(err)]++
		mu.Unlock()
		return nil
	}
	n := len(s.rcvs)
	err := dialPaced(ctx, n+len(s.senders), s.cfg.ConnectRate*s.share, func(ctx context.Context, k int, _ time.Time) func() {
		if k >= n {
			snd := s.senders[k-n]
			c, err := s.d.dial(ctx, snd.user, s.cfg.Reconnect.Users+snd.j)
			if err != nil {
				return fail(err)
			}
			snd.c = c
			return s.hold(c, func(b []byte) { s.onSenderFrame(b) }, nil)
		}
		r := s.rcvs[k]
		c, err := s.d.dial(ctx, r.user, r.i)
		if err != nil {
			return fail(err)
		}
		return s.attach(r, c)
	})
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d connections failed: %v", sumInts(failed), n+len(s.senders), failed)
	}
	// Every receiver registered with its shard (its first sync answered):
	// from here on, what is stored for it is pushed.
	deadline := time.Now().Add(s.cfg.ConnectTimeout + 5*time.Second)
	for {
		waiting := 0
		for _, r := range s.rcvs {
			r.mu.Lock()
			if !r.synced {
				waiting++
			}
			r.mu.Unlock()
		}
		if waiting == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d receivers got no sync reply", waiting)
		}
		if err := sleepUntil(ctx, time.Now().Add(10*time.Millisecond)); err != nil {
			return err
		}
	}
}

// hold returns the read loop of c; onEnd runs after it with whether the
// storm (not the server) ended it.
func (s *reconnect) hold(c *wsconn.Conn, onText func([]byte), storm func() bool) func() {
	s.open.Add(1)
	s.wg.Add(1)
	return func() {
		defer s.wg.Done()
		_ = c.ReadLoop(onText)
		s.open.Add(-1)
		if !c.ClosedByUs() && (storm == nil || !storm()) {
			s.dropped.Add(1)
		}
	}
}

// attach makes c receiver r's connection and syncs from its last seq.
func (s *reconnect) attach(r *rcv, c *wsconn.Conn) func() {
	r.mu.Lock()
	r.c, r.synced = c, false
	gen := r.gen
	s.sync(r)
	r.mu.Unlock()
	return s.hold(c, func(b []byte) { s.onReceiverFrame(r, c, b) }, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.gen != gen
	})
}

// sync asks for r's inbox after its last seq; r.mu is held.
func (s *reconnect) sync(r *rcv) {
	if r.c == nil {
		return
	}
	r.syncing = true
	s.syncs.Add(1)
	_ = r.c.WriteText([]byte(`{"type":"sync","id":"sync","limit":500,"after":` + strconv.FormatUint(r.last, 10) + `}`))
}

func (s *reconnect) onSenderFrame(b []byte) {
	var f frame
	if !decodeFrame(b, &f) {
		return
	}
	switch f.Type {
	case "ack", "error":
		rest, ok := strings.CutPrefix(f.ID, s.cfg.RunID+"-")
		is, seqs, ok2 := strings.Cut(rest, "-")
		i, err1 := strconv.Atoi(is)
		seq, err2 := strconv.ParseUint(seqs, 10, 64)
		if f.Type == "error" {
			s.errs.add(f.Code)
		}
		if !ok || !ok2 || err1 != nil || err2 != nil {
			return
		}
		r := s.rcvByIndex(i)
		if r == nil {
			return
		}
		if f.Type == "error" {
			r.s.Failed(seq)
			return
		}
		if r.s.Acked(seq) {
			now := time.Now().UnixNano()
			r.mu.Lock()
			if seq <= uint64(len(r.ackAt)) {
				r.ackAt[seq-1] = now
			}
			r.mu.Unlock()
			s.ser.add(evAcked, now)
			if t := r.s.Intended(seq); s.in(t) {
				s.ack.Record(time.Duration(now - t))
				s.ackedWin.Add(1)
			}
		}
	}
}

// rcvByIndex finds the worker's receiver with global index i: receivers
// are in ascending order.
func (s *reconnect) rcvByIndex(i int) *rcv {
	lo, hi := 0, len(s.rcvs)
	for lo < hi {
		mid := (lo + hi) / 2
		if s.rcvs[mid].i < i {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < len(s.rcvs) && s.rcvs[lo].i == i {
		return s.rcvs[lo]
	}
	return nil
}

func (s *reconnect) onReceiverFrame(r *rcv, c *wsconn.Conn, b []byte) {
	var f frame
	if !decodeFrame(b, &f) {
		return
	}
	now := time.Now().UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.c != c {
		return // a frame of a connection the storm dropped
	}
	switch f.Type {
	case "msg":
		switch {
		case f.Seq <= r.last:
			s.redelivered.Add(1) // a push and a sync both brought it: expected around a reconnect
		case f.Seq == r.last+1:
			s.handOut(r, f, now)
			for {
				next, ok := r.held[r.last+1]
				if !ok {
					break
				}
				delete(r.held, next.Seq)
				s.handOut(r, next, now)
			}
		default:
			if _, ok := r.held[f.Seq]; ok {
				s.redelivered.Add(1)
			}
			r.held[f.Seq] = f
			if !r.syncing {
				s.sync(r)
			}
		}
	case "synced":
		r.syncing, r.synced = false, true
		if f.More || len(r.held) > 0 {
			s.sync(r)
		}
	case "error":
		if f.ID == "sync" {
			r.syncing = false
			go func() { // the shard had not registered the session yet: try again
				time.Sleep(100 * time.Millisecond)
				r.mu.Lock()
				if r.c == c && !r.syncing {
					s.sync(r)
				}
				r.mu.Unlock()
			}()
		}
		s.errs.add(f.Code)
	}
	s.checkRecovered(r, now)
}

// handOut gives the application inbox entry f; r.mu is held.
func (s *reconnect) handOut(r *rcv, f frame, now int64) {
	r.last = f.Seq
	ids, seq, t, ok := parseBody(f.Body, 1)
	if !ok || ids[0] != r.i {
		r.s.Delivered(0, f.Seq)
		return
	}
	if seq >= 1 && seq <= uint64(len(r.got)) {
		r.got[seq-1] = true
	}
	if r.s.Delivered(seq, f.Seq) {
		s.ser.add(evDelivered, now)
		if s.in(t) {
			s.delivery.Record(time.Duration(now - t))
			s.deliveredWin.Add(1)
		}
	}
}

// checkRecovered ends r's recovery once a sync answered and every send
// acked before the reconnect began was handed out; r.mu is held.
func (s *reconnect) checkRecovered(r *rcv, now int64) {
	if !r.recovering || !r.synced {
		return
	}
	for r.cur < r.need && (r.ackAt[r.cur] == 0 || r.ackAt[r.cur] >= r.recStart || r.got[r.cur]) {
		r.cur++
	}
	if r.cur == r.need {
		r.recovering = false
		s.recovered.Add(1)
		s.ser.add(4, now)
		s.recover.Record(time.Duration(now - r.recStart))
	}
}
