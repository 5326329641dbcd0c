package loadgen

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/surgechat/surge/loadgen/internal/hist"
	"github.com/surgechat/surge/loadgen/internal/report"
	"github.com/surgechat/surge/loadgen/internal/verify"
	"github.com/surgechat/surge/loadgen/internal/wsconn"
)

// send writes the next message to r, meant for intended.
func (s *reconnect) send(r *rcv, intended time.Time, lag time.Duration) {
	t := intended.UnixNano()
	r.mu.Lock()
	seq := r.s.Sent(t)
	r.ackAt = append(r.ackAt, 0)
	r.got = append(r.got, false)
	r.mu.Unlock()
	snd := r.snd
	snd.mu.Lock()
	snd.buf = appendSend(snd.buf[:0], s.cfg.RunID+"-"+strconv.Itoa(r.i), seq, "to", r.user, []int{r.i}, t, s.cfg.BodySize)
	err := snd.c.WriteText(snd.buf)
	snd.mu.Unlock()
	if err != nil {
		s.writeErrs.Add(1)
	}
	s.ser.add(evSent, time.Now().UnixNano())
	s.sent(t, lag)
}

// waitUntil sleeps until t; false if stop closed or ctx ended first.
func waitUntil(ctx context.Context, t time.Time, stop <-chan struct{}) bool {
	tm := time.NewTimer(time.Until(t))
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-stop:
	case <-ctx.Done():
	}
	return false
}

// dropAll aborts every receiver's connection at once.
func (s *reconnect) dropAll() {
	s.storm.Store(time.Now().UnixNano())
	for _, r := range s.rcvs {
		r.mu.Lock()
		c := r.c
		r.c, r.gen, r.syncing = nil, r.gen+1, false
		r.mu.Unlock()
		if c != nil {
			c.Abort()
		}
	}
}

// reconnectAll reconnects every receiver on an open-loop schedule,
// retrying refused dials with backoff as a client would.
func (s *reconnect) reconnectAll(ctx context.Context, end time.Time) error {
	return dialPaced(ctx, len(s.rcvs), s.cfg.Reconnect.Rate*s.share, func(ctx context.Context, k int, intended time.Time) func() {
		r := s.rcvs[k]
		r.mu.Lock()
		r.recovering, r.synced, r.recStart, r.need, r.cur = true, false, intended.UnixNano(), len(r.ackAt), 0
		r.mu.Unlock()
		backoff := 100 * time.Millisecond
		for {
			c, err := s.d.dial(ctx, r.user, r.i)
			if err == nil {
				s.reconn.Record(time.Since(intended))
				s.reconnected.Add(1)
				s.ser.add(3, time.Now().UnixNano())
				return s.attach(r, c)
			}
			s.failed.add(wsconn.Reason(err))
			if time.Now().Add(backoff).After(end) || sleepUntil(ctx, time.Now().Add(backoff)) != nil {
				return nil
			}
			s.retries.Add(1)
			backoff = min(2*backoff, 2*time.Second)
		}
	})
}

// Run sends from start through the warm-up and the window; at StormAt
// every receiver drops, and from StormAt+Offline they reconnect. It then
// drains until every acked message is handed out and every receiver
// recovered, or the drain time is up.
func (s *reconnect) Run(ctx context.Context, start time.Time, stop <-chan struct{}) error {
	defer s.final.Store(true)
	s.ser.begin(start)
	warm, dur := s.cfg.Warmup, s.cfg.Duration
	s.set(start, warm, dur)
	rc := s.cfg.Reconnect
	stormDone := make(chan error, 1)
	go func() {
		if !waitUntil(ctx, start.Add(rc.StormAt), stop) {
			stormDone <- nil
			return
		}
		s.dropAll()
		if !waitUntil(ctx, start.Add(rc.StormAt+rc.Offline), nil) {
			stormDone <- ctx.Err()
			return
		}
		stormDone <- s.reconnectAll(ctx, start.Add(warm+dur+s.cfg.Drain+time.Duration(float64(len(s.rcvs))/rc.Rate*float64(time.Second))))
	}()
	sch := newSchedule(s.cfg.rampPoints(s.cfg.Rate), warm+dur, s.share)
	n := len(s.rcvs)
	err := openLoop(ctx, start, sch, stop, func(k int, intended time.Time, lag time.Duration) {
		s.send(s.rcvs[k%n], intended, lag)
	})
	if serr := <-stormDone; err == nil {
		err = serr
	}
	if err != nil {
		return err
	}
	return drain(ctx, s.cfg.Drain, func() int {
		pending := 0
		for _, r := range s.rcvs {
			a, d := r.s.Pending()
			r.mu.Lock()
			if r.recovering {
				pending++
			}
			r.mu.Unlock()
			pending += a + d
		}
		return pending
	})
}

func (s *reconnect) Close() {
	s.closeOnce.Do(func() {
		for _, r := range s.rcvs {
			r.mu.Lock()
			c := r.c
			r.mu.Unlock()
			if c != nil {
				c.Close(3 * time.Second)
			}
		}
		for _, snd := range s.senders {
			if snd.c != nil {
				snd.c.Close(3 * time.Second)
			}
		}
		s.wg.Wait()
	})
}

func (s *reconnect) Snapshot() *Result {
	r := newResult()
	var v verify.Counts
	final := s.final.Load()
	cutoff := time.Now().Add(-s.cfg.Drain).UnixNano()
	var unrecovered int64
	for _, rc := range s.rcvs {
		rc.mu.Lock()
		if rc.recovering {
			unrecovered++
		}
		holes := len(rc.held) > 0
		rc.mu.Unlock()
		if final {
			c := rc.s.Counts()
			if holes {
				c.Gaps++ // entries after a hole no sync filled
			}
			v.Merge(c)
		} else {
			v.Merge(rc.s.LiveAt(cutoff))
		}
	}
	if st := s.storm.Load(); st != 0 && unrecovered > 0 && !final {
		// Receivers still away or catching up: only what was due before
		// the storm can be lost so far.
		v = verify.Counts{}
		for _, rc := range s.rcvs {
			v.Merge(rc.s.LiveAt(min(cutoff, st-int64(s.cfg.Drain))))
		}
	}
	r.Verify = &v
	r.Counts["open"] = s.open.Load()
	r.Counts["dropped"] = s.dropped.Load()
	r.Counts["reconnected"] = s.reconnected.Load()
	r.Counts["recovered"] = s.recovered.Load()
	r.Counts["reconnect_retries"] = s.retries.Load()
	r.Counts["redelivered"] = s.redelivered.Load()
	r.Counts["syncs"] = s.syncs.Load()
	if s.storm.Load() != 0 {
		r.Counts["unrecovered"] = unrecovered
	} else if final {
		r.Counts["unrecovered"] = int64(len(s.rcvs)) // the storm never came
	}
	fails := map[string]int64{}
	s.failed.copyTo(fails)
	for k, n := range fails {
		r.Counts["reconnect_failed."+k] = n
		r.Counts["reconnect_failed"] += n
	}
	s.counts(r)
	s.errs.copyTo(r.Errors)
	r.Hists["ack"] = s.ack.Snapshot()
	r.Hists["delivery"] = s.delivery.Snapshot()
	r.Hists["reconnect"] = s.reconn.Snapshot()
	r.Hists["recover"] = s.recover.Snapshot()
	r.Series = s.ser.snapshot()
	return r
}

func summarizeReconnect(cfg *Config, m *merged, rep *report.Report) {
	rc := cfg.Reconnect
	rep.Params["users"] = rc.Users
	rep.Params["senders"] = rc.Senders
	rep.Params["storm_at"] = rc.StormAt.String()
	rep.Params["offline"] = rc.Offline.String()
	rep.Params["reconnect_rate"] = rc.Rate
	summarizeSend(cfg, m, rep)
	for _, k := range []string{"reconnected", "recovered", "unrecovered", "reconnect_retries", "reconnect_failed", "redelivered", "syncs"} {
		rep.Counts[k] = m.Counts[k]
	}
	for k, v := range m.Counts {
		if len(k) > 17 && k[:17] == "reconnect_failed." {
			rep.Counts[k] = v
		}
	}
	for _, name := range []string{"ack", "delivery", "reconnect", "recover"} {
		rep.Latency[name] = hist.Summarize(m.hist(name))
	}
	if n := m.Counts["unrecovered"]; n > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d receivers had not recovered everything acked before their reconnect when the drain ended", n))
	}
}

func progressReconnect(m, prev *merged, dt time.Duration) string {
	return fmt.Sprintf("%s  reconnected %d  recovered %d  p99(recover) %s", progressSend(m, prev, dt),
		m.Counts["reconnected"], m.Counts["recovered"], p99(m.hist("recover")))
}
