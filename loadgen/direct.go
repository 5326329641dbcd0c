package loadgen

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/surgechat/surge/loadgen/internal/hist"
	"github.com/surgechat/surge/loadgen/internal/report"
	"github.com/surgechat/surge/loadgen/internal/verify"
	"github.com/surgechat/surge/loadgen/internal/wsconn"
)

// lateAfter is how far behind its intended time a send may start before
// it counts as late.
const lateAfter = time.Millisecond

// direct sends from "s-<i>" to "r-<i>" on an open-loop schedule: send k of
// the worker is due at start + k/rate (or as the ramp says), whatever
// happened to send k-1, and every latency is measured from that due time.
// Bodies carry the pair, the sender's sequence number and the due time:
// "i:seq:unixnanos". In closed loop each sender keeps InFlight sends
// outstanding instead, and latencies run from the actual send.
type direct struct {
	cfg   *Config
	d     *dialer
	pairs []*pair
	share float64 // this worker's part of the rate
	wg    sync.WaitGroup
	cred  credits // closed loop only

	ack, delivery *hist.Recorder
	sendState
	foreign atomic.Int64 // deliveries of earlier runs' messages
}

type pair struct {
	i, li    int    // global and worker-local index
	to       string // receiver's user id
	s        verify.Stream
	snd, rcv *wsconn.Conn
	mu       sync.Mutex // buf, in closed loop
	buf      []byte
}

// window is the measured window and its counters, shared by the sending
// scenarios.
type window struct {
	from, to     atomic.Int64 // unix nanos
	sentWin      atomic.Int64
	ackedWin     atomic.Int64
	deliveredWin atomic.Int64
	late         atomic.Int64
	writeErrs    atomic.Int64
}

func (w *window) set(start time.Time, warm, dur time.Duration) {
	w.from.Store(start.Add(warm).UnixNano())
	w.to.Store(start.Add(warm + dur).UnixNano())
}

func (w *window) in(t int64) bool { return t >= w.from.Load() && t < w.to.Load() }

// sent counts a send meant for t that started lag late.
func (w *window) sent(t int64, lag time.Duration) {
	if w.in(t) {
		w.sentWin.Add(1)
		if lag > lateAfter {
			w.late.Add(1)
		}
	}
}

func (w *window) counts(r *Result) {
	r.Counts["sent_window"] = w.sentWin.Load()
	r.Counts["acked_window"] = w.ackedWin.Load()
	r.Counts["delivered_window"] = w.deliveredWin.Load()
	r.Counts["late"] = w.late.Load()
	r.Counts["write_errors"] = w.writeErrs.Load()
}

// errorCounts counts error frames by code.
type errorCounts struct {
	mu sync.Mutex
	m  map[string]int64
}

func (e *errorCounts) add(code string) {
	e.mu.Lock()
	if e.m == nil {
		e.m = map[string]int64{}
	}
	e.m[code]++
	e.mu.Unlock()
}

func (e *errorCounts) copyTo(dst map[string]int64) {
	e.mu.Lock()
	for k, v := range e.m {
		dst[k] += v
	}
	e.mu.Unlock()
}

func newDirect(cfg *Config, sh share) (Scenario, error) {
	d, err := newDialer(cfg)
	if err != nil {
		return nil, err
	}
	s := &direct{cfg: cfg, d: d, ack: hist.NewRecorder(), delivery: hist.NewRecorder(),
		sendState: sendState{ser: newSeries(cfg.seriesSeconds(), "sent", "acked", "delivered")}}
	for li, i := range sh.indices(cfg.Direct.Pairs) {
		s.pairs = append(s.pairs, &pair{i: i, li: li, to: cfg.UserPrefix + "r-" + strconv.Itoa(i)})
	}
	s.share = float64(len(s.pairs)) / float64(cfg.Direct.Pairs)
	if cfg.ClosedLoop {
		s.cred = newCredits(len(s.pairs), cfg.InFlight)
	}
	return s, nil
}

// Prepare connects every receiver, then every sender.
func (s *direct) Prepare(ctx context.Context) error {
	n := len(s.pairs)
	var mu sync.Mutex
	failed := map[string]int{}
	err := dialPaced(ctx, 2*n, s.cfg.ConnectRate*s.share, func(ctx context.Context, k int, _ time.Time) func() {
		p, sender := s.pairs[k%n], k >= n
		user, idx := "r-"+strconv.Itoa(p.i), 2*p.i
		if sender {
			user, idx = "s-"+strconv.Itoa(p.i), 2*p.i+1
		}
		c, err := s.d.dial(ctx, user, idx)
		if err != nil {
			mu.Lock()
			failed[wsconn.Reason(err)]++
			mu.Unlock()
			return nil
		}
		onText := func(b []byte) { s.onDelivery(p, b) }
		if sender {
			p.snd, onText = c, func(b []byte) { s.onSenderFrame(p, b) }
		} else {
			p.rcv = c
		}
		s.open.Add(1)
		s.wg.Add(1)
		return func() {
			defer s.wg.Done()
			_ = c.ReadLoop(onText)
			s.open.Add(-1)
			if !c.ClosedByUs() {
				s.dropped.Add(1)
			}
		}
	})
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d connections failed: %v", sumInts(failed), 2*n, failed)
	}
	return nil
}

func sumInts(m map[string]int) (n int) {
	for _, v := range m {
		n += v
	}
	return n
}

func (s *direct) onSenderFrame(p *pair, b []byte) {
	var f frame
	if !decodeFrame(b, &f) {
		return
	}
	switch f.Type {
	case "ack":
		seq, ok := seqOf(s.cfg.RunID, f.ID)
		if ok && p.s.Acked(seq) {
			now := time.Now().UnixNano()
			s.ser.add(evAcked, now)
			s.cred.release(p.li)
			if t := p.s.Intended(seq); s.in(t) {
				s.ack.Record(time.Duration(now - t))
				s.ackedWin.Add(1)
			}
		}
	case "error":
		if seq, ok := seqOf(s.cfg.RunID, f.ID); ok && p.s.Failed(seq) {
			s.cred.answered(p.li, f.Code)
		}
		s.errs.add(f.Code)
	}
}

func (s *direct) onDelivery(p *pair, b []byte) {
	now := time.Now().UnixNano()
	var f frame
	if !decodeFrame(b, &f) || f.Type != "msg" {
		return
	}
	s.bytes.Add(int64(len(b)))
	if _, ok := seqOf(s.cfg.RunID, f.ID); !ok {
		// The receivers' names are the same every run: an earlier run's
		// messages may still arrive. Not this run's business.
		p.s.Other(f.Seq)
		s.foreign.Add(1)
		return
	}
	ids, seq, t, ok := parseBody(f.Body, 1)
	if !ok || ids[0] != p.i {
		p.s.Delivered(0, f.Seq) // not one of this pair's messages
		return
	}
	if p.s.Delivered(seq, f.Seq) {
		s.ser.add(evDelivered, now)
		if s.in(t) {
			s.delivery.Record(time.Duration(now - t))
			s.deliveredWin.Add(1)
		}
	}
}

// send writes the next message of p, meant for intended.
func (s *direct) send(p *pair, intended time.Time, lag time.Duration) {
	t := intended.UnixNano()
	p.mu.Lock()
	seq := p.s.Sent(t)
	p.buf = appendSend(p.buf[:0], s.cfg.RunID, seq, "to", p.to, []int{p.i}, t, s.cfg.BodySize)
	err := p.snd.WriteText(p.buf)
	p.mu.Unlock()
	if err != nil {
		s.writeErrs.Add(1)
	}
	s.ser.add(evSent, time.Now().UnixNano())
	s.sent(t, lag)
}

// Run sends on schedule from start through the warm-up and the window,
// then drains: it waits until every send is answered and every acked
// message delivered, or the drain time is up.
func (s *direct) Run(ctx context.Context, start time.Time, stop <-chan struct{}) error {
	defer s.final.Store(true)
	s.ser.begin(start)
	warm, dur := s.cfg.Warmup, s.cfg.Duration
	s.set(start, warm, dur)
	var err error
	if s.cfg.ClosedLoop {
		err = closedLoop(ctx, start.Add(warm+dur), stop, s.cred, func(i int, now time.Time) { s.send(s.pairs[i], now, 0) })
	} else {
		sch := newSchedule(s.cfg.rampPoints(s.cfg.Rate), warm+dur, s.share)
		err = openLoop(ctx, start, sch, stop, func(k int, intended time.Time, lag time.Duration) {
			s.send(s.pairs[k%len(s.pairs)], intended, lag)
		})
	}
	if err != nil {
		return err
	}
	return drain(ctx, s.cfg.Drain, func() int {
		pending := 0
		for _, p := range s.pairs {
			a, d := p.s.Pending()
			pending += a + d
		}
		return pending
	})
}

// drain waits until pending reports nothing outstanding, or for d.
func drain(ctx context.Context, d time.Duration, pending func() int) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && pending() > 0 {
		if err := sleepUntil(ctx, time.Now().Add(20*time.Millisecond)); err != nil {
			return err
		}
	}
	return nil
}

func (s *direct) Close() {
	s.closeOnce.Do(func() {
		for _, p := range s.pairs {
			for _, c := range []*wsconn.Conn{p.snd, p.rcv} {
				if c != nil {
					c.Close(3 * time.Second)
				}
			}
		}
		s.wg.Wait()
	})
}

func (s *direct) Snapshot() *Result {
	vs := make([]liveCounter, len(s.pairs))
	for i, p := range s.pairs {
		vs[i] = &p.s
	}
	r := s.snapshot(s.cfg.Drain, vs)
	r.Counts["foreign"] = s.foreign.Load()
	r.Hists["ack"] = s.ack.Snapshot()
	r.Hists["delivery"] = s.delivery.Snapshot()
	return r
}

// sendState is what the sending scenarios (direct, group, topic) keep
// alike: the measurement window, connection and byte counters, errors,
// the per-second series, and whether the run's verification is final.
type sendState struct {
	ser *series
	window
	open, dropped atomic.Int64
	bytes         atomic.Int64
	final         atomic.Bool // Run returned: verification counts are final
	errs          errorCounts
	closeOnce     sync.Once
}

// liveCounter is a verifier of one stream (verify.Stream, verify.Fanout).
type liveCounter interface {
	Counts() verify.Counts
	LiveAt(cutoff int64) verify.Counts
}

// snapshot returns a Result with the shared counters and the verification
// of vs merged: final counts once Run returned, otherwise only what was
// due a drain period ago, so that messages still in flight are not lost.
func (s *sendState) snapshot(drain time.Duration, vs []liveCounter) *Result {
	r := newResult()
	var v verify.Counts
	final := s.final.Load()
	cutoff := time.Now().Add(-drain).UnixNano()
	for _, c := range vs {
		if final {
			v.Merge(c.Counts())
		} else {
			v.Merge(c.LiveAt(cutoff))
		}
	}
	r.Verify = &v
	r.Counts["open"] = s.open.Load()
	r.Counts["dropped"] = s.dropped.Load()
	r.Counts["delivered_bytes"] = s.bytes.Load()
	s.counts(r)
	s.errs.copyTo(r.Errors)
	r.Series = s.ser.snapshot()
	return r
}

// summarizeSend fills what every sending scenario reports: parameters of
// the schedule, window counts, rates, late sends, warnings.
func summarizeSend(cfg *Config, m *merged, rep *report.Report) {
	rep.Params["duration"] = cfg.Duration.String()
	rep.Params["warmup"] = cfg.Warmup.String()
	rep.Params["drain"] = cfg.Drain.String()
	rep.Params["body_size"] = cfg.BodySize
	rep.Params["run_id"] = cfg.RunID
	switch {
	case cfg.ClosedLoop:
		rep.Params["arrival"] = fmt.Sprintf("closed loop, %d in flight per sender", cfg.InFlight)
	case len(cfg.Ramp) > 0:
		pts := make([]string, len(cfg.Ramp))
		for i, p := range cfg.Ramp {
			pts[i] = fmt.Sprintf("%v:%g/s", p.At, p.Rate)
		}
		rep.Params["arrival"] = "open loop, ramp " + strings.Join(pts, ",")
	default:
		rep.Params["arrival"] = "open loop, constant"
		rep.Params["rate"] = cfg.Rate
	}
	for _, k := range []string{"sent_window", "acked_window", "delivered_window", "late", "write_errors", "dropped"} {
		rep.Counts[k] = m.Counts[k]
	}
	if cfg.Scenario == "direct" || cfg.Scenario == "group" || cfg.Scenario == "topic" {
		rep.Counts["delivered_bytes"] = m.Counts["delivered_bytes"]
	}
	win := cfg.Duration
	rep.Rates["sent"] = perSec(m.Counts["sent_window"], win)
	rep.Rates["acked"] = perSec(m.Counts["acked_window"], win)
	rep.Rates["delivered"] = perSec(m.Counts["delivered_window"], win)
	rep.Rates["rate"] = rep.Rates["delivered"]
	late := 0.0
	if n := m.Counts["sent_window"]; n > 0 {
		late = float64(m.Counts["late"]) / float64(n) * 100
	}
	rep.Percents["late_pct"] = math.Round(late*100) / 100
	if late > 1 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%.2f%% of sends started more than %v after their intended time: the generator could not keep the schedule (its delay is included in the latencies)", late, lateAfter))
	}
	if len(m.Errors) > 0 {
		codes := make([]string, 0, len(m.Errors))
		for k, v := range m.Errors {
			codes = append(codes, fmt.Sprintf("%s=%d", k, v))
		}
		sort.Strings(codes)
		rep.Warnings = append(rep.Warnings, "the server answered with errors: "+strings.Join(codes, " "))
	}
	if m.Verify != nil && m.Verify.Unanswered > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d sends got neither ack nor error within the drain", m.Verify.Unanswered))
	}
	if n := m.Counts["dropped"] + m.Counts["write_errors"]; n > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d connections dropped, %d writes failed", m.Counts["dropped"], m.Counts["write_errors"]))
	}
}

func summarizeDirect(cfg *Config, m *merged, rep *report.Report) {
	rep.Params["pairs"] = cfg.Direct.Pairs
	summarizeSend(cfg, m, rep)
	rep.Counts["foreign"] = m.Counts["foreign"]
	if n := m.Counts["foreign"]; n > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d deliveries of an earlier run's messages arrived (a backlog the server was still working off): ignored", n))
	}
	for _, name := range []string{"ack", "delivery"} {
		rep.Latency[name] = hist.Summarize(m.hist(name))
	}
}

// progressSend is the live line of the sending scenarios.
func progressSend(m, prev *merged, dt time.Duration) string {
	rate := func(k string) float64 { return perSec(sumSeries(m.Series[k])-sumSeries(prev.Series[k]), dt) }
	var errs int64
	for _, n := range m.Errors {
		errs += n
	}
	lost := int64(0)
	if m.Verify != nil {
		lost = m.Verify.Lost
	}
	return fmt.Sprintf("conns %d  sent %.0f/s  acked %.0f/s  delivered %.0f/s  errors %d  lost-so-far %d  p99(delivery) %s",
		m.Counts["open"], rate("sent"), rate("acked"), rate("delivered"), errs, lost, p99(m.hist("delivery")))
}
