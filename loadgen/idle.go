package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/surgechat/surge/loadgen/internal/hist"
	"github.com/surgechat/surge/loadgen/internal/report"
	"github.com/surgechat/surge/loadgen/internal/wsconn"
)

// idle opens connections for users "idle-<i>" and holds them with
// application pings. A held connection costs no goroutine: after the
// upgrade it moves onto a wsconn.Loop (a few event loops for all), and one
// heartbeat goroutine pings them all.
type idle struct {
	cfg  *Config
	d    *dialer
	idx  []int // global connection indices of this worker
	hb   time.Duration
	loop *wsconn.Loop
	mu   sync.Mutex
	live map[*idleConn]struct{}

	connect, pong *hist.Recorder
	mmu           sync.Mutex
	failed        map[string]int64 // by wsconn.Reason
	dropped       map[string]int64 // by close code or "eof"
	established   atomic.Int64
	open          atomic.Int64
	held          atomic.Int64
	pings         atomic.Int64
	connectNanos  atomic.Int64
	ser           *series // connections per second, from the first dial
	closeOnce     sync.Once
	stopHB        chan struct{}
}

type idleConn struct {
	h      *wsconn.Handle // set before the conn joins live
	gone   bool           // closed; under idle.mu
	next   time.Time      // next ping; heartbeat goroutine only
	pingAt atomic.Int64   // unix nanos of the outstanding ping, 0 if none
}

func newIdle(cfg *Config, sh share) (Scenario, error) {
	d, err := newDialer(cfg)
	if err != nil {
		return nil, err
	}
	s := &idle{
		cfg: cfg, d: d, idx: sh.indices(cfg.Idle.Conns), hb: cfg.Idle.Heartbeat,
		live: map[*idleConn]struct{}{}, connect: hist.NewRecorder(), pong: hist.NewRecorder(),
		failed: map[string]int64{}, dropped: map[string]int64{}, stopHB: make(chan struct{}),
		ser: newSeries(cfg.seriesSeconds(), "connected", "failed", "dropped"),
	}
	if s.loop, err = wsconn.NewLoop(s.onText, s.onClose); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *idle) Prepare(ctx context.Context) error {
	if s.hb > 0 {
		go s.heartbeat()
	}
	rate := s.cfg.ConnectRate * float64(len(s.idx)) / float64(s.cfg.Idle.Conns)
	begin := time.Now()
	s.ser.begin(begin)
	err := dialPaced(ctx, len(s.idx), rate, func(ctx context.Context, k int, intended time.Time) func() {
		i := s.idx[k]
		c, err := s.d.dial(ctx, "idle-"+strconv.Itoa(i), i)
		if err != nil {
			s.count(s.failed, wsconn.Reason(err))
			s.ser.add(1, time.Now().UnixNano())
			return nil
		}
		ic := &idleConn{next: time.Now().Add(time.Duration(rand.Int64N(int64(max(s.hb, 1)))))}
		s.open.Add(1) // before Adopt: onClose may run before it returns
		h, err := s.loop.Adopt(c, ic)
		if err != nil {
			s.open.Add(-1)
			s.count(s.failed, "handshake")
			s.ser.add(1, time.Now().UnixNano())
			return nil
		}
		s.connect.Record(time.Since(intended))
		s.ser.add(0, time.Now().UnixNano())
		s.established.Add(1)
		s.mu.Lock()
		ic.h = h
		if !ic.gone {
			s.live[ic] = struct{}{}
		}
		s.mu.Unlock()
		return nil
	})
	s.connectNanos.Store(int64(time.Since(begin)))
	return err
}

// onText runs on the event loop: it times the answer to our ping.
func (s *idle) onText(id any, b []byte) {
	ic := id.(*idleConn)
	if at := ic.pingAt.Swap(0); at != 0 && len(b) > 14 && string(b[:15]) == `{"type":"pong",` {
		s.pong.Record(time.Duration(time.Now().UnixNano() - at))
	}
}

// onClose runs on the event loop once per adopted connection; err is nil
// when we closed it.
func (s *idle) onClose(id any, err error) {
	ic := id.(*idleConn)
	s.open.Add(-1)
	s.mu.Lock()
	ic.gone = true
	delete(s.live, ic)
	s.mu.Unlock()
	if err != nil {
		reason := "eof"
		var ce *wsconn.CloseError
		if errors.As(err, &ce) {
			reason = "close_" + strconv.Itoa(ce.Code)
		}
		s.count(s.dropped, reason)
		s.ser.add(2, time.Now().UnixNano())
	}
}

func (s *idle) count(m map[string]int64, key string) {
	s.mmu.Lock()
	m[key]++
	s.mmu.Unlock()
}

// heartbeat pings each connection every hb ±20%.
func (s *idle) heartbeat() {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	ping := []byte(`{"type":"ping","id":"hb"}`)
	var due []*idleConn
	for {
		select {
		case <-s.stopHB:
			return
		case now := <-t.C:
			due = due[:0]
			s.mu.Lock()
			for ic := range s.live {
				if now.After(ic.next) {
					ic.next = now.Add(s.hb*4/5 + time.Duration(rand.Int64N(int64(s.hb*2/5)+1)))
					due = append(due, ic)
				}
			}
			s.mu.Unlock()
			for _, ic := range due {
				ic.pingAt.Store(time.Now().UnixNano())
				if ic.h.WriteText(ping) == nil {
					s.pings.Add(1)
				}
			}
		}
	}
}

func (s *idle) Run(ctx context.Context, start time.Time, stop <-chan struct{}) error {
	t := time.NewTimer(time.Until(start.Add(s.cfg.Duration)))
	defer t.Stop()
	var err error
	select {
	case <-t.C:
	case <-stop:
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.held.Store(s.open.Load())
	return err
}

func (s *idle) Close() {
	s.closeOnce.Do(func() {
		close(s.stopHB)
		s.mu.Lock()
		conns := make([]*idleConn, 0, len(s.live))
		for ic := range s.live {
			conns = append(conns, ic)
		}
		s.mu.Unlock()
		for _, ic := range conns {
			ic.h.Close(3 * time.Second)
		}
		// The server answers each close; Stop closes whatever is left.
		deadline := time.Now().Add(5 * time.Second)
		for s.open.Load() > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		s.loop.Stop()
	})
}

func (s *idle) Snapshot() *Result {
	r := newResult()
	r.Counts["attempted"] = int64(len(s.idx))
	r.Counts["established"] = s.established.Load()
	r.Counts["open"] = s.open.Load()
	r.Counts["held"] = s.held.Load()
	r.Counts["pings"] = s.pings.Load()
	r.Gauges["connect_ms"] = s.connectNanos.Load() / 1e6
	s.mmu.Lock()
	for k, v := range s.failed {
		r.Counts["failed."+k] = v
		r.Counts["failed"] += v
	}
	for k, v := range s.dropped {
		r.Counts["dropped."+k] = v
		r.Counts["dropped"] += v
	}
	s.mmu.Unlock()
	r.Hists["connect"] = s.connect.Snapshot()
	r.Hists["heartbeat"] = s.pong.Snapshot()
	r.Series = s.ser.snapshot()
	return r
}

func summarizeIdle(cfg *Config, m *merged, rep *report.Report) {
	rep.Params["conns"] = cfg.Idle.Conns
	rep.Params["connect_rate"] = cfg.ConnectRate
	rep.Params["heartbeat"] = cfg.Idle.Heartbeat.String()
	rep.Params["duration"] = cfg.Duration.String()
	rep.Params["src_addrs"] = cfg.SrcAddrs
	for _, k := range []string{"attempted", "established", "held", "failed", "dropped", "pings"} {
		rep.Counts[k] = m.Counts[k]
	}
	for _, r := range []string{"http_503", "http_401", "dial", "handshake"} {
		rep.Counts["failed."+r] = 0 // always there, for SLOs such as failed.http_503==0
	}
	for k, v := range m.Counts {
		if strings.HasPrefix(k, "failed.") || strings.HasPrefix(k, "dropped.") {
			rep.Counts[k] = v
		}
	}
	connecting := time.Duration(m.Gauges["connect_ms"]) * time.Millisecond
	rep.Rates["rate"] = perSec(m.Counts["established"], connecting)
	if t := rep.Throughput; t != nil {
		// The series runs from the first dial: the hold follows the dials.
		t.WindowFrom = connecting.Seconds()
		t.WindowTo = t.WindowFrom + cfg.Duration.Seconds()
	}
	for _, name := range []string{"connect", "heartbeat"} {
		rep.Latency[name] = hist.Summarize(m.hist(name))
	}
	if m.Counts["failed"] > 0 || m.Counts["dropped"] > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d connections failed and %d dropped: see counts", m.Counts["failed"], m.Counts["dropped"]))
	}
}

func progressIdle(m, prev *merged, dt time.Duration) string {
	return fmt.Sprintf("open %d  established %d (+%.0f/s)  failed %d  dropped %d  p99(connect) %s",
		m.Counts["open"], m.Counts["established"], perSec(m.Counts["established"]-prev.Counts["established"], dt),
		m.Counts["failed"], m.Counts["dropped"], p99(m.hist("connect")))
}
