package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/surgechat/surge/loadgen/internal/hist"
	"github.com/surgechat/surge/loadgen/internal/report"
)

// APIConfig is the api scenario.
type APIConfig struct {
	Users int // pool of registered users, in pairs; 0 means 100
	// Mix weighs the operations: "register=1,login=2,friend=2,history=4,sync=1"
	// (the default when ""). Operations: register, login, friend,
	// history, sync, me.
	Mix string
	// Seed is how many direct messages the first user of each pair sends
	// the second over the WebSocket before the run, so that history and
	// sync read something; 0 means none.
	Seed int
}

const defaultMix = "register=1,login=2,friend=2,history=4,sync=1"

var apiOps = []string{"register", "login", "friend", "history", "sync", "me"}

func (a *APIConfig) setDefaults() {
	if a.Users <= 0 {
		a.Users = 100
	}
	if a.Mix == "" {
		a.Mix = defaultMix
	}
}

func (a *APIConfig) validate() error {
	if a.Users < 2 {
		return usageErr("--users %d: at least 2 (one pair)", a.Users)
	}
	_, err := parseMix(a.Mix)
	return err
}

// parseMix turns "a=1,b=2" into a smooth weighted round-robin sequence:
// each operation appears as often as its weight, spread out.
func parseMix(s string) ([]string, error) {
	weights := map[string]int{}
	for _, part := range strings.Split(s, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(w)
		if !ok || err != nil || n < 0 || n > 1000 {
			return nil, usageErr("--mix %q: want op=weight,..., weights 0 to 1000", s)
		}
		known := false
		for _, op := range apiOps {
			known = known || op == name
		}
		if !known {
			return nil, usageErr("--mix: unknown operation %q (have %s)", name, strings.Join(apiOps, ", "))
		}
		weights[name] += n
	}
	total := 0
	names := make([]string, 0, len(weights))
	for n, w := range weights {
		total += w
		names = append(names, n)
	}
	if total == 0 {
		return nil, usageErr("--mix %q: all weights are 0", s)
	}
	sort.Strings(names)
	cur := map[string]int{}
	seq := make([]string, 0, total)
	for range total {
		best := ""
		for _, n := range names {
			cur[n] += weights[n]
			if best == "" || cur[n] > cur[best] {
				best = n
			}
		}
		cur[best] -= total
		seq = append(seq, best)
	}
	return seq, nil
}

// apiLoad drives the HTTP API at a rate: operation k of the worker is
// mix[k mod len(mix)], due at its scheduled time. register makes a new
// user each time; login logs a pool user in; friend runs the friend
// request, accept and removal of a pool pair (so pairs can be used again);
// history reads the conversation of a pair; sync reads a user's inbox; me
// reads a profile. Latency per endpoint runs from the operation's due
// time (the later steps of friend from when they began); errors are
// counted by HTTP status.
type apiLoad struct {
	cfg    *Config
	sh     share
	api    *apiClient
	mix    []string
	users  []string // pool, in pairs (2p, 2p+1)
	tokens []string
	busy   []atomic.Bool // by pair: a friend operation runs on it
	share  float64
	ops    sync.WaitGroup
	sem    chan struct{}
	ser    *series
	cred   credits

	hmu   sync.Mutex
	hists map[string]*hist.Recorder
	window
	cmu     sync.Mutex
	outcome map[string]int64 // "<op>.ok", "<op>.http_409", ...
	errs    errorCounts
	final   atomic.Bool
	seeded  atomic.Int64
	skipped atomic.Int64
}

func newAPILoad(cfg *Config, sh share) (Scenario, error) {
	api, err := newAPIClient(cfg)
	if err != nil {
		return nil, err
	}
	mix, err := parseMix(cfg.APILoad.Mix)
	if err != nil {
		return nil, err
	}
	s := &apiLoad{cfg: cfg, sh: sh, api: api, mix: mix, sem: make(chan struct{}, maxHTTPConns),
		hists: map[string]*hist.Recorder{}, outcome: map[string]int64{},
		ser: newSeries(cfg.seriesSeconds(), "sent", "acked", "failed")}
	pairs := sh.indices(cfg.APILoad.Users / 2)
	for _, p := range pairs {
		s.users = append(s.users, fmt.Sprintf("%slga%d", cfg.UserPrefix, 2*p), fmt.Sprintf("%slga%d", cfg.UserPrefix, 2*p+1))
	}
	s.busy = make([]atomic.Bool, len(pairs))
	s.share = float64(len(pairs)) / float64(cfg.APILoad.Users/2)
	if cfg.ClosedLoop {
		s.cred = newCredits(1, cfg.InFlight)
	}
	return s, nil
}

func (s *apiLoad) Prepare(ctx context.Context) error {
	var err error
	if s.tokens, err = s.api.signInAll(ctx, s.users, s.cfg.Password, s.cfg.APIConcurrency); err != nil {
		return err
	}
	if s.cfg.APILoad.Seed > 0 {
		return s.seed(ctx)
	}
	return nil
}

func (s *apiLoad) record(name string, d time.Duration) {
	s.hmu.Lock()
	h, ok := s.hists[name]
	if !ok {
		h = hist.NewRecorder()
		s.hists[name] = h
	}
	s.hmu.Unlock()
	h.Record(d)
}

func (s *apiLoad) count(key string) {
	s.cmu.Lock()
	s.outcome[key]++
	s.cmu.Unlock()
}

// step runs one request of operation op, named name in the histograms,
// measured from since.
func (s *apiLoad) step(name string, since time.Time, inWindow bool, call func() error) bool {
	err := call()
	if inWindow {
		s.record(name, time.Since(since))
	}
	if err != nil {
		s.count(name + "." + statusKey(err))
		s.errs.add(statusKey(err))
		return false
	}
	s.count(name + ".ok")
	return true
}

// do runs operation k, due at intended.
func (s *apiLoad) do(ctx context.Context, k int, intended time.Time) bool {
	t := intended.UnixNano()
	win := s.in(t)
	np := len(s.busy)
	p := k % np
	a, b := s.users[2*p], s.users[2*p+1]
	ta, tb := s.tokens[2*p], s.tokens[2*p+1]
	switch op := s.mix[k%len(s.mix)]; op {
	case "register":
		name := fmt.Sprintf("%slr%sw%dx%d", s.cfg.UserPrefix, s.cfg.RunID, s.sh.id, k)
		return s.step(op, intended, win, func() error { return s.api.register(ctx, name, s.cfg.Password) })
	case "login":
		return s.step(op, intended, win, func() error { _, err := s.api.login(ctx, a, s.cfg.Password); return err })
	case "history":
		return s.step(op, intended, win, func() error {
			return s.api.do(ctx, http.MethodGet, "/v1/conversations/"+b+"/messages?limit=50", ta, nil, nil)
		})
	case "sync":
		return s.step(op, intended, win, func() error { return s.api.do(ctx, http.MethodGet, "/v1/sync?after=0&limit=50", tb, nil, nil) })
	case "me":
		return s.step(op, intended, win, func() error { return s.api.do(ctx, http.MethodGet, "/v1/me", ta, nil, nil) })
	case "friend":
		for i := range np { // a pair no other friend operation holds
			if q := (p + i) % np; s.busy[q].CompareAndSwap(false, true) {
				p = q
				break
			}
			if i == np-1 {
				s.skipped.Add(1)
				return false
			}
		}
		defer s.busy[p].Store(false)
		a, b, ta, tb = s.users[2*p], s.users[2*p+1], s.tokens[2*p], s.tokens[2*p+1]
		ok := s.step("friend_request", intended, win, func() error {
			return s.api.do(ctx, http.MethodPost, "/v1/friends/requests", ta, map[string]string{"to": b}, nil)
		})
		now := time.Now()
		ok = ok && s.step("friend_accept", now, win, func() error {
			return s.api.do(ctx, http.MethodPost, "/v1/friends/requests/"+a+"/accept", tb, nil, nil)
		})
		// Remove in any case, so that a half-done pair is clean next time.
		now = time.Now()
		return s.step("friend_remove", now, win, func() error {
			return s.api.do(ctx, http.MethodDelete, "/v1/friends/"+b, ta, nil, nil)
		}) && ok
	}
	return false
}

// start runs operation k on a goroutine; done runs after it.
func (s *apiLoad) start(ctx context.Context, k int, intended time.Time, lag time.Duration, done func()) {
	s.ser.add(evSent, time.Now().UnixNano())
	s.sent(intended.UnixNano(), lag)
	s.ops.Add(1)
	go func() {
		defer s.ops.Done()
		defer done()
		ok := s.do(ctx, k, intended)
		now := time.Now().UnixNano()
		if !ok {
			s.ser.add(2, now)
			return
		}
		s.ser.add(evAcked, now)
		if s.in(intended.UnixNano()) {
			s.ackedWin.Add(1)
		}
	}()
}

func (s *apiLoad) Run(ctx context.Context, start time.Time, stop <-chan struct{}) error {
	defer s.final.Store(true)
	s.ser.begin(start)
	warm, dur := s.cfg.Warmup, s.cfg.Duration
	s.set(start, warm, dur)
	var err error
	if s.cfg.ClosedLoop {
		var next atomic.Int64
		err = closedLoop(ctx, start.Add(warm+dur), stop, s.cred, func(i int, now time.Time) {
			s.start(ctx, int(next.Add(1)-1), now, 0, func() { s.cred.release(i) })
		})
	} else {
		sch := newSchedule(s.cfg.rampPoints(s.cfg.Rate), warm+dur, s.share)
		err = openLoop(ctx, start, sch, stop, func(k int, intended time.Time, _ time.Duration) {
			select {
			case s.sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			s.start(ctx, k, intended, time.Since(intended), func() { <-s.sem })
		})
	}
	waited := make(chan struct{})
	go func() { s.ops.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(s.cfg.Drain + 30*time.Second):
	}
	return err
}

func (s *apiLoad) Close() {
	s.ops.Wait()
	s.api.close()
}

func (s *apiLoad) Snapshot() *Result {
	r := newResult()
	s.cmu.Lock()
	for k, v := range s.outcome {
		r.Counts[k] = v
	}
	s.cmu.Unlock()
	r.Counts["seeded"] = s.seeded.Load()
	r.Counts["skipped"] = s.skipped.Load()
	s.counts(r)
	s.errs.copyTo(r.Errors)
	s.hmu.Lock()
	for k, h := range s.hists {
		r.Hists[k] = h.Snapshot()
	}
	s.hmu.Unlock()
	r.Series = s.ser.snapshot()
	return r
}

// apiEndpoints are the histograms of the api scenario.
var apiEndpoints = []string{"register", "login", "friend_request", "friend_accept", "friend_remove", "history", "sync", "me"}

func summarizeAPI(cfg *Config, m *merged, rep *report.Report) {
	rep.Params["users"] = cfg.APILoad.Users
	rep.Params["mix"] = cfg.APILoad.Mix
	rep.Params["seed"] = cfg.APILoad.Seed
	summarizeSend(cfg, m, rep)
	delete(rep.Rates, "delivered")
	delete(rep.Counts, "delivered_window")
	delete(rep.Counts, "dropped")
	rep.Rates["rate"] = rep.Rates["acked"] // operations that succeeded, per second
	mix, _ := parseMix(cfg.APILoad.Mix)
	for _, op := range apiEndpoints {
		used := false
		for _, o := range mix {
			used = used || o == op || (o == "friend" && strings.HasPrefix(op, "friend_"))
		}
		if !used {
			continue
		}
		rep.Latency[op] = hist.Summarize(m.hist(op))
		rep.Counts[op+".ok"] = m.Counts[op+".ok"]
		rep.Rates[op] = perSec(m.Counts[op+".ok"], cfg.Duration+cfg.Warmup)
	}
	for k, v := range m.Counts {
		if strings.Contains(k, ".http_") {
			rep.Counts[k] = v
		}
	}
	rep.Counts["seeded"] = m.Counts["seeded"]
	rep.Counts["skipped"] = m.Counts["skipped"]
}

func progressAPI(m, prev *merged, dt time.Duration) string {
	rate := func(k string) float64 { return perSec(sumSeries(m.Series[k])-sumSeries(prev.Series[k]), dt) }
	var errs int64
	for _, n := range m.Errors {
		errs += n
	}
	return fmt.Sprintf("ops %.0f/s  ok %.0f/s  failed %.0f/s  errors %d  p99(login) %s  p99(history) %s",
		rate("sent"), rate("acked"), rate("failed"), errs, p99(m.hist("login")), p99(m.hist("history")))
}

// seed sends Seed direct messages from the first user of each pair to
// the second, over the WebSocket, and waits for their acks.
func (s *apiLoad) seed(ctx context.Context) error {
	d, err := newDialer(s.cfg)
	if err != nil {
		return err
	}
	n := s.cfg.APILoad.Seed
	return forEach(ctx, len(s.busy), s.cfg.APIConcurrency, func(p int) error {
		c, err := d.dialToken(ctx, s.tokens[2*p], p)
		if err != nil {
			return fmt.Errorf("seed: connect %s: %w", s.users[2*p], err)
		}
		acks := make(chan struct{}, n)
		go func() {
			_ = c.ReadLoop(func(b []byte) {
				var f frame
				if json.Unmarshal(b, &f) == nil && (f.Type == "ack" || f.Type == "error") {
					acks <- struct{}{}
				}
			})
		}()
		defer c.Close(time.Second)
		for i := range n {
			msg := fmt.Sprintf(`{"type":"send","id":"seed-%s-%d","to":%q,"body":"seed message %d"}`, s.cfg.RunID, i, s.users[2*p+1], i)
			if err := c.WriteText([]byte(msg)); err != nil {
				return fmt.Errorf("seed: %w", err)
			}
			if i%50 == 49 { // stay under the server's send rate
				time.Sleep(500 * time.Millisecond)
			}
		}
		for range n {
			select {
			case <-acks:
				s.seeded.Add(1)
			case <-time.After(10 * time.Second):
				return fmt.Errorf("seed: %s got no answer to a send", s.users[2*p])
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
}
