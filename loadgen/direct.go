package loadgen

import (
	"context"
	"encoding/json"
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
// the worker is due at start + k/rate, whatever happened to send k-1, and
// every latency is measured from that due time. Bodies carry the pair,
// the sender's sequence number and the due time: "i:seq:unixnanos".
type direct struct {
	cfg   *Config
	d     *dialer
	pairs []*pair
	rate  float64 // this worker's share
	wg    sync.WaitGroup

	ack, delivery *hist.Recorder
	from, to      atomic.Int64 // the measured window, unix nanos
	sentWin       atomic.Int64
	ackedWin      atomic.Int64
	deliveredWin  atomic.Int64
	late          atomic.Int64
	writeErrs     atomic.Int64
	open, dropped atomic.Int64
	final         atomic.Bool // Run returned: verification counts are final
	emu           sync.Mutex
	errs          map[string]int64
	closeOnce     sync.Once
}

type pair struct {
	i        int
	to       string // receiver's user id
	s        verify.Stream
	snd, rcv *wsconn.Conn
	buf      []byte // the generator's
}

func newDirect(cfg *Config, sh share) (Scenario, error) {
	d, err := newDialer(cfg)
	if err != nil {
		return nil, err
	}
	s := &direct{cfg: cfg, d: d, ack: hist.NewRecorder(), delivery: hist.NewRecorder(), errs: map[string]int64{}}
	for _, i := range sh.indices(cfg.Direct.Pairs) {
		s.pairs = append(s.pairs, &pair{i: i, to: cfg.UserPrefix + "r-" + strconv.Itoa(i)})
	}
	s.rate = cfg.Direct.Rate * float64(len(s.pairs)) / float64(cfg.Direct.Pairs)
	return s, nil
}

// Prepare connects every receiver, then every sender.
func (s *direct) Prepare(ctx context.Context) error {
	n := len(s.pairs)
	var mu sync.Mutex
	failed := map[string]int{}
	rate := s.cfg.ConnectRate * float64(2*n) / float64(2*s.cfg.Direct.Pairs)
	err := dialPaced(ctx, 2*n, rate, func(ctx context.Context, k int, _ time.Time) func() {
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

// frame is the part of a server frame direct reads.
type frame struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Seq  uint64 `json:"seq"`
	Code string `json:"code"`
	Body string `json:"body"`
}

func (s *direct) onSenderFrame(p *pair, b []byte) {
	var f frame
	if json.Unmarshal(b, &f) != nil {
		return
	}
	switch f.Type {
	case "ack":
		seq, ok := s.seqOf(f.ID)
		if ok && p.s.Acked(seq) {
			if t := p.s.Intended(seq); s.inWindow(t) {
				s.ack.Record(time.Duration(time.Now().UnixNano() - t))
				s.ackedWin.Add(1)
			}
		}
	case "error":
		if seq, ok := s.seqOf(f.ID); ok {
			p.s.Failed(seq)
		}
		s.emu.Lock()
		s.errs[f.Code]++
		s.emu.Unlock()
	}
}

func (s *direct) onDelivery(p *pair, b []byte) {
	now := time.Now().UnixNano()
	var f frame
	if json.Unmarshal(b, &f) != nil || f.Type != "msg" {
		return
	}
	parts := strings.SplitN(f.Body, ":", 4)
	var i int
	var seq uint64
	var t int64
	var err error
	if len(parts) >= 3 {
		i, err = strconv.Atoi(parts[0])
		if err == nil {
			seq, err = strconv.ParseUint(parts[1], 10, 64)
		}
		if err == nil {
			t, err = strconv.ParseInt(parts[2], 10, 64)
		}
	}
	if len(parts) < 3 || err != nil || i != p.i {
		p.s.Delivered(0, f.Seq) // not one of this pair's messages
		return
	}
	if p.s.Delivered(seq, f.Seq) && s.inWindow(t) {
		s.delivery.Record(time.Duration(now - t))
		s.deliveredWin.Add(1)
	}
}

// seqOf parses a client message id "<run id>-<seq>" of this run.
func (s *direct) seqOf(id string) (uint64, bool) {
	rest, ok := strings.CutPrefix(id, s.cfg.RunID+"-")
	if !ok {
		return 0, false
	}
	seq, err := strconv.ParseUint(rest, 10, 64)
	return seq, err == nil
}

func (s *direct) inWindow(t int64) bool { return t >= s.from.Load() && t < s.to.Load() }

// Run sends on schedule from start through the warm-up and the window,
// then drains: it waits until every send is answered and every acked
// message delivered, or the drain time is up.
func (s *direct) Run(ctx context.Context, start time.Time) error {
	defer s.final.Store(true)
	warm, dur := s.cfg.Direct.Warmup, s.cfg.Duration
	s.from.Store(start.Add(warm).UnixNano())
	s.to.Store(start.Add(warm + dur).UnixNano())
	n := int((warm + dur).Seconds() * s.rate)
	interval := float64(time.Second) / s.rate
	pad := strings.Repeat("x", max(s.cfg.Direct.BodySize, 0))
	for k := range n {
		intended := start.Add(time.Duration(float64(k) * interval))
		if err := sleepUntil(ctx, intended); err != nil {
			return err
		}
		p := s.pairs[k%len(s.pairs)]
		t := intended.UnixNano()
		seq := p.s.Sent(t)
		b := append(p.buf[:0], `{"type":"send","id":"`...)
		b = append(b, s.cfg.RunID...)
		b = append(b, '-')
		b = strconv.AppendUint(b, seq, 10)
		b = append(b, `","to":"`...)
		b = append(b, p.to...)
		b = append(b, `","body":"`...)
		body := len(b)
		b = strconv.AppendInt(b, int64(p.i), 10)
		b = append(b, ':')
		b = strconv.AppendUint(b, seq, 10)
		b = append(b, ':')
		b = strconv.AppendInt(b, t, 10)
		if short := len(pad) - (len(b) - body); short > 0 {
			b = append(b, ':')
			b = append(b, pad[:short-1]...)
		}
		b = append(b, `"}`...)
		p.buf = b
		lag := time.Since(intended)
		if err := p.snd.WriteText(b); err != nil {
			s.writeErrs.Add(1)
		}
		if s.inWindow(t) {
			s.sentWin.Add(1)
			if lag > lateAfter {
				s.late.Add(1)
			}
		}
	}
	deadline := time.Now().Add(s.cfg.Direct.Drain)
	for time.Now().Before(deadline) {
		pending := 0
		for _, p := range s.pairs {
			a, d := p.s.Pending()
			pending += a + d
		}
		if pending == 0 {
			break
		}
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
	r := newResult()
	var v verify.Counts
	final := s.final.Load()
	for _, p := range s.pairs {
		if final {
			v.Merge(p.s.Counts())
		} else {
			v.Merge(p.s.Live())
		}
	}
	r.Verify = &v
	r.Counts["open"] = s.open.Load()
	r.Counts["dropped"] = s.dropped.Load()
	r.Counts["sent_window"] = s.sentWin.Load()
	r.Counts["acked_window"] = s.ackedWin.Load()
	r.Counts["delivered_window"] = s.deliveredWin.Load()
	r.Counts["late"] = s.late.Load()
	r.Counts["write_errors"] = s.writeErrs.Load()
	s.emu.Lock()
	for k, v := range s.errs {
		r.Errors[k] = v
	}
	s.emu.Unlock()
	r.Hists["ack"] = s.ack.Snapshot()
	r.Hists["delivery"] = s.delivery.Snapshot()
	return r
}

func summarizeDirect(cfg *Config, m *merged, rep *report.Report) {
	rep.Params["pairs"] = cfg.Direct.Pairs
	rep.Params["rate"] = cfg.Direct.Rate
	rep.Params["duration"] = cfg.Duration.String()
	rep.Params["warmup"] = cfg.Direct.Warmup.String()
	rep.Params["drain"] = cfg.Direct.Drain.String()
	rep.Params["body_size"] = cfg.Direct.BodySize
	rep.Params["run_id"] = cfg.RunID
	for _, k := range []string{"sent_window", "acked_window", "delivered_window", "late", "write_errors", "dropped"} {
		rep.Counts[k] = m.Counts[k]
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
	for _, name := range []string{"ack", "delivery"} {
		rep.Latency[name] = hist.Summarize(m.hist(name))
	}
	if late > 1 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%.2f%% of sends started more than %v after their intended time: the generator could not keep the schedule (its delay is included in the latencies)", late, lateAfter))
	}
	if len(m.Errors) > 0 {
		codes := make([]string, 0, len(m.Errors))
		for k, v := range m.Errors {
			codes = append(codes, fmt.Sprintf("%s=%d", k, v))
		}
		sort.Strings(codes)
		rep.Warnings = append(rep.Warnings, "the server answered sends with errors: "+strings.Join(codes, " "))
	}
	if m.Verify != nil && m.Verify.Unanswered > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d sends got neither ack nor error within the drain", m.Verify.Unanswered))
	}
	if n := m.Counts["dropped"] + m.Counts["write_errors"]; n > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d connections dropped, %d writes failed", m.Counts["dropped"], m.Counts["write_errors"]))
	}
}

func progressDirect(m, prev *merged, dt time.Duration) string {
	var v, pv verify.Counts
	if m.Verify != nil {
		v = *m.Verify
	}
	if prev.Verify != nil {
		pv = *prev.Verify
	}
	var errs int64
	for _, n := range m.Errors {
		errs += n
	}
	return fmt.Sprintf("conns %d  sent %.0f/s  acked %.0f/s  delivered %.0f/s  errors %d  p99(ack) %s  p99(delivery) %s",
		m.Counts["open"], perSec(v.Sent-pv.Sent, dt), perSec(v.Acked-pv.Acked, dt), perSec(v.Delivered-pv.Delivered, dt),
		errs, p99(m.hist("ack")), p99(m.hist("delivery")))
}
