package loadgen

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/surgechat/surge/loadgen/internal/hist"
	"github.com/surgechat/surge/loadgen/internal/report"
	"github.com/surgechat/surge/loadgen/internal/verify"
	"github.com/surgechat/surge/loadgen/internal/wsconn"
)

// TopicConfig is the topic scenario.
type TopicConfig struct {
	Topics      int // topics over all workers; 0 means 1
	Subscribers int // subscribed connections over all topics, spread evenly; 0 means 100
}

func (t *TopicConfig) setDefaults() {
	if t.Topics <= 0 {
		t.Topics = 1
	}
	if t.Subscribers <= 0 {
		t.Subscribers = 100
	}
}

func (t *TopicConfig) validate() error {
	if t.Subscribers < t.Topics {
		return usageErr("%d subscribers cannot cover %d topics", t.Subscribers, t.Topics)
	}
	return nil
}

// topic holds subscribers (registered users, each connected and
// subscribed to one topic "lg-<run>-<t>") while the operator publishes
// over HTTP (POST /v1/publish). Publish k of the worker goes to topic k
// mod T with body "t:seq:unixnanos"; a Fanout per topic checks that every
// subscriber got every accepted publish once (pushes carry no sequence,
// and concurrent publishes have no order, so order is not checked).
type topic struct {
	cfg    *Config
	d      *dialer
	api    *apiClient
	op     string // the operator's token
	topics []*ltopic
	subs   []*tsub
	share  float64
	wg     sync.WaitGroup
	pubs   sync.WaitGroup // publishes in flight
	sem    chan struct{}
	cred   credits

	publish, delivery, fanout *hist.Recorder
	sendState
	subscribed atomic.Int64
}

type ltopic struct {
	i    int
	name string
	f    *verify.Fanout
	subs []*tsub
}

type tsub struct {
	t    *ltopic
	j, n int // index in the topic; global subscriber index
	user string
	c    *wsconn.Conn
}

func newTopic(cfg *Config, sh share) (Scenario, error) {
	d, err := newDialer(cfg)
	if err != nil {
		return nil, err
	}
	api, err := newAPIClient(cfg)
	if err != nil {
		return nil, err
	}
	s := &topic{cfg: cfg, d: d, api: api, sem: make(chan struct{}, maxHTTPConns),
		publish: hist.NewRecorder(), delivery: hist.NewRecorder(), fanout: hist.NewRecorder(),
		sendState: sendState{ser: newSeries(cfg.seriesSeconds(), "sent", "acked", "delivered")}}
	T := cfg.Topic.Topics
	for _, i := range sh.indices(T) {
		t := &ltopic{i: i, name: "lg-" + cfg.RunID + "-" + strconv.Itoa(i)}
		for n := i; n < cfg.Topic.Subscribers; n += T {
			sub := &tsub{t: t, j: len(t.subs), n: n, user: fmt.Sprintf("%slgt%d", cfg.UserPrefix, n)}
			t.subs = append(t.subs, sub)
			s.subs = append(s.subs, sub)
		}
		t.f = verify.NewFanout(len(t.subs), verify.FanoutOptions{})
		s.topics = append(s.topics, t)
	}
	s.share = float64(len(s.topics)) / float64(T)
	if cfg.ClosedLoop {
		s.cred = newCredits(len(s.topics), cfg.InFlight)
	}
	return s, nil
}

// Prepare signs the operator and the subscribers in, connects the
// subscribers and subscribes each to its topic.
func (s *topic) Prepare(ctx context.Context) error {
	var err error
	if s.op, err = s.api.operatorToken(ctx, s.cfg); err != nil {
		return err
	}
	users := make([]string, len(s.subs))
	for i, sub := range s.subs {
		users[i] = sub.user
	}
	tokens, err := s.api.signInAll(ctx, users, s.cfg.Password, s.cfg.APIConcurrency)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	failed := map[string]int{}
	err = dialPaced(ctx, len(s.subs), s.cfg.ConnectRate*s.share, func(ctx context.Context, k int, _ time.Time) func() {
		sub := s.subs[k]
		c, err := s.d.dialToken(ctx, tokens[k], sub.n)
		if err != nil {
			mu.Lock()
			failed[wsconn.Reason(err)]++
			mu.Unlock()
			return nil
		}
		sub.c = c
		s.open.Add(1)
		s.wg.Add(1)
		if err := c.WriteText([]byte(`{"type":"subscribe","id":"sub","topic":"` + sub.t.name + `"}`)); err != nil {
			mu.Lock()
			failed["subscribe"]++
			mu.Unlock()
		}
		return func() {
			defer s.wg.Done()
			_ = c.ReadLoop(func(b []byte) { s.onFrame(sub, b) })
			s.open.Add(-1)
			if !c.ClosedByUs() {
				s.dropped.Add(1)
				sub.t.f.Left(sub.j, time.Now().UnixNano())
			}
		}
	})
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d connections failed: %v", sumInts(failed), len(s.subs), failed)
	}
	deadline := time.Now().Add(s.cfg.ConnectTimeout)
	for s.subscribed.Load() < int64(len(s.subs)) {
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d subscriptions unanswered after %v", int64(len(s.subs))-s.subscribed.Load(), len(s.subs), s.cfg.ConnectTimeout)
		}
		if err := sleepUntil(ctx, time.Now().Add(10*time.Millisecond)); err != nil {
			return err
		}
	}
	return nil
}

func (s *topic) onFrame(sub *tsub, b []byte) {
	now := time.Now().UnixNano()
	var f frame
	if !decodeFrame(b, &f) {
		return
	}
	t := sub.t
	switch f.Type {
	case "subscribed":
		s.subscribed.Add(1)
	case "error":
		s.errs.add(f.Code)
	case "topic":
		s.bytes.Add(int64(len(b)))
		ids, seq, at, ok := parseBody(f.Body, 1)
		if !ok || f.Topic != t.name || ids[0] != t.i {
			t.f.Unknown(sub.j, 0)
			return
		}
		first, all := t.f.Delivered(sub.j, 0, seq, 0)
		if !first {
			return
		}
		s.ser.add(evDelivered, now)
		if s.in(at) {
			s.delivery.Record(time.Duration(now - at))
			s.deliveredWin.Add(1)
			if all {
				s.fanout.Record(time.Duration(now - at))
			}
		}
	}
}

// post publishes the next message of topic ti, meant for intended, on a
// goroutine of its own; done runs after the answer.
func (s *topic) post(ctx context.Context, ti int, intended time.Time, lag time.Duration, done func()) {
	t := s.topics[ti]
	at := intended.UnixNano()
	seq := t.f.Sent(0, at)
	body := string(appendBody(nil, []int{t.i}, seq, at, s.cfg.BodySize))
	id := s.cfg.RunID + "-" + strconv.Itoa(t.i) + "-" + strconv.FormatUint(seq, 10)
	s.ser.add(evSent, time.Now().UnixNano())
	s.sent(at, lag)
	s.pubs.Add(1)
	go func() {
		defer s.pubs.Done()
		defer done()
		err := s.api.publishTopic(ctx, s.op, t.name, id, body)
		now := time.Now().UnixNano()
		if err != nil {
			t.f.Failed(0, seq)
			s.errs.add(statusKey(err))
			return
		}
		t.f.Acked(0, seq)
		s.ser.add(evAcked, now)
		if s.in(at) {
			s.publish.Record(time.Duration(now - at))
			s.ackedWin.Add(1)
		}
	}()
}

func (s *topic) Run(ctx context.Context, start time.Time, stop <-chan struct{}) error {
	defer s.final.Store(true)
	s.ser.begin(start)
	warm, dur := s.cfg.Warmup, s.cfg.Duration
	s.set(start, warm, dur)
	var err error
	if s.cfg.ClosedLoop {
		err = closedLoop(ctx, start.Add(warm+dur), stop, s.cred, func(i int, now time.Time) {
			s.post(ctx, i, now, 0, func() { s.cred.release(i) })
		})
	} else {
		sch := newSchedule(s.cfg.rampPoints(s.cfg.Rate), warm+dur, s.share)
		err = openLoop(ctx, start, sch, stop, func(k int, intended time.Time, _ time.Duration) {
			select { // at most maxHTTPConns publishes in flight: waiting here makes the next ones late
			case s.sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			s.post(ctx, k%len(s.topics), intended, time.Since(intended), func() { <-s.sem })
		})
	}
	if err != nil {
		return err
	}
	return drain(ctx, s.cfg.Drain, func() int {
		pending := 0
		for _, t := range s.topics {
			a, d := t.f.Pending()
			pending += a + d
		}
		return pending
	})
}

func (s *topic) Close() {
	s.closeOnce.Do(func() {
		s.pubs.Wait()
		for _, sub := range s.subs {
			if sub.c != nil {
				sub.c.Close(3 * time.Second)
			}
		}
		s.wg.Wait()
		s.api.close()
	})
}

func (s *topic) Snapshot() *Result {
	vs := make([]liveCounter, len(s.topics))
	for i, t := range s.topics {
		vs[i] = t.f
	}
	r := s.snapshot(s.cfg.Drain, vs)
	r.Hists["publish"] = s.publish.Snapshot()
	r.Hists["delivery"] = s.delivery.Snapshot()
	r.Hists["fanout"] = s.fanout.Snapshot()
	return r
}

func summarizeTopic(cfg *Config, m *merged, rep *report.Report) {
	rep.Params["topics"] = cfg.Topic.Topics
	rep.Params["subscribers"] = cfg.Topic.Subscribers
	rep.Params["operator"] = cfg.OperatorUser
	summarizeSend(cfg, m, rep)
	for _, name := range []string{"publish", "delivery", "fanout"} {
		rep.Latency[name] = hist.Summarize(m.hist(name))
	}
}
