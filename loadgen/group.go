package loadgen

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/surgechat/surge/loadgen/internal/hist"
	"github.com/surgechat/surge/loadgen/internal/report"
	"github.com/surgechat/surge/loadgen/internal/verify"
	"github.com/surgechat/surge/loadgen/internal/wsconn"
)

// GroupConfig is the group scenario.
type GroupConfig struct {
	Groups int // groups over all workers; 0 means 10
	Size   int // members of each group, all connected; 0 means 10
	// Creator is who creates the groups through the API: "owner" (the
	// group's first member, with the others as members) or "operator"
	// (the operator, who becomes an extra, unconnected member); "" means
	// "owner".
	Creator string
}

func (g *GroupConfig) setDefaults() {
	if g.Groups <= 0 {
		g.Groups = 10
	}
	if g.Size <= 0 {
		g.Size = 10
	}
	if g.Creator == "" {
		g.Creator = "owner"
	}
}

func (g *GroupConfig) validate() error {
	if g.Creator != "owner" && g.Creator != "operator" {
		return usageErr("--group-creator %q: owner or operator", g.Creator)
	}
	if g.Size < 2 {
		return usageErr("--group-size %d: at least 2", g.Size)
	}
	return nil
}

// group sends into groups created through the HTTP API, whose members
// (registered users, logged in through the API) are all connected. Send k
// of the worker goes into group k mod G from member (k / G) mod N; bodies
// are "group:member:seq:unixnanos". Every member, the sender included,
// gets each message once in its inbox; a Fanout per group checks that and
// the orders.
type group struct {
	cfg     *Config
	sh      share
	d       *dialer
	api     *apiClient
	groups  []*lgroup
	members []*gmember // all of the worker's, for closed-loop slots
	share   float64
	wg      sync.WaitGroup
	cred    credits

	ack, delivery, fanout *hist.Recorder
	sendState
}

type lgroup struct {
	i       int // global index
	id      string
	conv    string // "g/<id>"
	f       *verify.Fanout
	members []*gmember
}

type gmember struct {
	g     *lgroup
	j, at int // index in the group; in group.members
	user  string
	token string
	c     *wsconn.Conn
	mu    sync.Mutex
	buf   []byte
}

func newGroup(cfg *Config, sh share) (Scenario, error) {
	d, err := newDialer(cfg)
	if err != nil {
		return nil, err
	}
	api, err := newAPIClient(cfg)
	if err != nil {
		return nil, err
	}
	s := &group{cfg: cfg, sh: sh, d: d, api: api, ack: hist.NewRecorder(), delivery: hist.NewRecorder(), fanout: hist.NewRecorder(),
		sendState: sendState{ser: newSeries(cfg.seriesSeconds(), "sent", "acked", "delivered")}}
	opt := verify.FanoutOptions{SenderOrder: true, SameOrder: true, InboxSeq: true}
	for _, i := range sh.indices(cfg.Group.Groups) {
		g := &lgroup{i: i, f: verify.NewFanout(cfg.Group.Size, opt)}
		for j := range cfg.Group.Size {
			m := &gmember{g: g, j: j, at: len(s.members), user: fmt.Sprintf("%slgg%dm%d", cfg.UserPrefix, i, j)}
			g.members = append(g.members, m)
			s.members = append(s.members, m)
		}
		s.groups = append(s.groups, g)
	}
	s.share = float64(len(s.groups)) / float64(cfg.Group.Groups)
	if cfg.ClosedLoop {
		s.cred = newCredits(len(s.members), cfg.InFlight)
	}
	return s, nil
}

// Prepare signs the members in, creates the groups and connects every
// member.
func (s *group) Prepare(ctx context.Context) error {
	users := make([]string, len(s.members))
	for i, m := range s.members {
		users[i] = m.user
	}
	tokens, err := s.api.signInAll(ctx, users, s.cfg.Password, s.cfg.APIConcurrency)
	if err != nil {
		return err
	}
	for i, m := range s.members {
		m.token = tokens[i]
	}
	var op string
	if s.cfg.Group.Creator == "operator" {
		if op, err = s.api.operatorToken(ctx, s.cfg); err != nil {
			return err
		}
	}
	err = forEach(ctx, len(s.groups), s.cfg.APIConcurrency, func(k int) error {
		g := s.groups[k]
		token, members := op, users[g.members[0].at:g.members[0].at+len(g.members)]
		if op == "" {
			token, members = g.members[0].token, members[1:]
		}
		return withRetry(ctx, func() error {
			id, err := s.api.createGroup(ctx, token, "loadgen "+s.cfg.RunID+" "+strconv.Itoa(g.i), members)
			g.id, g.conv = id, "g/"+id
			if err != nil {
				return fmt.Errorf("create group %d: %w", g.i, err)
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	return s.connect(ctx)
}

func (s *group) connect(ctx context.Context) error {
	var mu sync.Mutex
	failed := map[string]int{}
	err := dialPaced(ctx, len(s.members), s.cfg.ConnectRate*s.share, func(ctx context.Context, k int, _ time.Time) func() {
		m := s.members[k]
		c, err := s.d.dialToken(ctx, m.token, m.g.i*s.cfg.Group.Size+m.j)
		if err != nil {
			mu.Lock()
			failed[wsconn.Reason(err)]++
			mu.Unlock()
			return nil
		}
		m.c = c
		s.open.Add(1)
		s.wg.Add(1)
		return func() {
			defer s.wg.Done()
			_ = c.ReadLoop(func(b []byte) { s.onFrame(m, b) })
			s.open.Add(-1)
			if !c.ClosedByUs() {
				s.dropped.Add(1)
				m.g.f.Left(m.j, time.Now().UnixNano())
			}
		}
	})
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d connections failed: %v", sumInts(failed), len(s.members), failed)
	}
	return nil
}

func (s *group) onFrame(m *gmember, b []byte) {
	now := time.Now().UnixNano()
	var f frame
	if !decodeFrame(b, &f) {
		return
	}
	g := m.g
	switch f.Type {
	case "ack":
		if seq, ok := seqOf(s.cfg.RunID, f.ID); ok && g.f.Acked(m.j, seq) {
			s.ser.add(evAcked, now)
			s.cred.release(m.at)
			if t := g.f.Intended(m.j, seq); s.in(t) {
				s.ack.Record(time.Duration(now - t))
				s.ackedWin.Add(1)
			}
		}
	case "error":
		if seq, ok := seqOf(s.cfg.RunID, f.ID); ok && g.f.Failed(m.j, seq) {
			s.cred.answered(m.at, f.Code)
		}
		s.errs.add(f.Code)
	case "msg":
		s.bytes.Add(int64(len(b)))
		ids, seq, t, ok := parseBody(f.Body, 2)
		if !ok || ids[0] != g.i || f.Conv != g.conv || ids[1] >= len(g.members) {
			g.f.Unknown(m.j, f.Seq)
			return
		}
		first, all := g.f.Delivered(m.j, ids[1], seq, f.Seq)
		if !first {
			return
		}
		s.ser.add(evDelivered, now)
		if s.in(t) {
			s.delivery.Record(time.Duration(now - t))
			s.deliveredWin.Add(1)
			if all {
				s.fanout.Record(time.Duration(now - t))
			}
		}
	}
}

// send writes the next message of member m, meant for intended.
func (s *group) send(m *gmember, intended time.Time, lag time.Duration) {
	t := intended.UnixNano()
	m.mu.Lock()
	seq := m.g.f.Sent(m.j, t)
	m.buf = appendSend(m.buf[:0], s.cfg.RunID, seq, "group", m.g.id, []int{m.g.i, m.j}, t, s.cfg.BodySize)
	err := m.c.WriteText(m.buf)
	m.mu.Unlock()
	if err != nil {
		s.writeErrs.Add(1)
	}
	s.ser.add(evSent, time.Now().UnixNano())
	s.sent(t, lag)
}

func (s *group) Run(ctx context.Context, start time.Time, stop <-chan struct{}) error {
	defer s.final.Store(true)
	s.ser.begin(start)
	warm, dur := s.cfg.Warmup, s.cfg.Duration
	s.set(start, warm, dur)
	var err error
	if s.cfg.ClosedLoop {
		err = closedLoop(ctx, start.Add(warm+dur), stop, s.cred, func(i int, now time.Time) { s.send(s.members[i], now, 0) })
	} else {
		sch := newSchedule(s.cfg.rampPoints(s.cfg.Rate), warm+dur, s.share)
		n := len(s.groups)
		err = openLoop(ctx, start, sch, stop, func(k int, intended time.Time, lag time.Duration) {
			g := s.groups[k%n]
			s.send(g.members[(k/n)%len(g.members)], intended, lag)
		})
	}
	if err != nil {
		return err
	}
	return drain(ctx, s.cfg.Drain, func() int {
		pending := 0
		for _, g := range s.groups {
			a, d := g.f.Pending()
			pending += a + d
		}
		return pending
	})
}

func (s *group) Close() {
	s.closeOnce.Do(func() {
		for _, m := range s.members {
			if m.c != nil {
				m.c.Close(3 * time.Second)
			}
		}
		s.wg.Wait()
		s.api.close()
	})
}

func (s *group) Snapshot() *Result {
	vs := make([]liveCounter, len(s.groups))
	for i, g := range s.groups {
		vs[i] = g.f
	}
	r := s.snapshot(s.cfg.Drain, vs)
	r.Hists["ack"] = s.ack.Snapshot()
	r.Hists["delivery"] = s.delivery.Snapshot()
	r.Hists["fanout"] = s.fanout.Snapshot()
	return r
}

func summarizeGroup(cfg *Config, m *merged, rep *report.Report) {
	rep.Params["groups"] = cfg.Group.Groups
	rep.Params["group_size"] = cfg.Group.Size
	rep.Params["creator"] = cfg.Group.Creator
	summarizeSend(cfg, m, rep)
	// sent and acked count messages; delivered counts member deliveries:
	// the fan-out.
	for _, name := range []string{"ack", "delivery", "fanout"} {
		rep.Latency[name] = hist.Summarize(m.hist(name))
	}
}

// forEach calls fn(0..n-1), conc at a time, and returns the first error.
func forEach(ctx context.Context, n, conc int, fn func(i int) error) error {
	sem := make(chan struct{}, max(conc, 1))
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := fn(i); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}
