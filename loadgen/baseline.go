package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/surgechat/surge/loadgen/internal/report"
)

// BaselineConfig is the baseline scenario: the plain socket-write limit
// of the machine, to set beside Surge's fan-out.
type BaselineConfig struct {
	Conns   int // receiving connections; 0 means 100
	Size    int // bytes per write (one delivery); 0 means 256
	Writers int // writing goroutines, each owning a share of the connections; 0 means GOMAXPROCS
	// Batch is how many payloads one write carries, as a server that
	// coalesces a connection's queued frames does; 0 means 1.
	Batch int
}

func (b *BaselineConfig) setDefaults() {
	if b.Conns <= 0 {
		b.Conns = 100
	}
	if b.Size <= 0 {
		b.Size = 256
	}
	if b.Writers <= 0 {
		b.Writers = runtime.GOMAXPROCS(0)
	}
	b.Batch = max(b.Batch, 1)
}

// baseline is a minimal TCP server and its clients on loopback in this
// process, with no protocol: the writers write a Size-byte payload to
// each of their connections in turn, as a fan-out writes one message to
// every member, and the clients read and count whole payloads. Writes/s
// and deliveries/s are what the same machine does with nothing but
// socket writes; Surge's fan-out deliveries/s are set beside them.
type baseline struct {
	cfg     *Config
	b       BaselineConfig
	ln      net.Listener
	servers []net.Conn
	clients []net.Conn
	readers sync.WaitGroup
	ser     *series
	from    atomic.Int64 // the window, unix nanos
	to      atomic.Int64
	writes  atomic.Int64 // in the window
	dlv     atomic.Int64 // in the window
	errs    atomic.Int64
	open    atomic.Int64
	close   sync.Once
}

func newBaseline(cfg *Config, _ share) (Scenario, error) {
	return &baseline{cfg: cfg, b: cfg.Base, ser: newSeries(cfg.seriesSeconds(), "sent", "delivered")}, nil
}

func (s *baseline) Prepare(ctx context.Context) error {
	var err error
	if s.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return err
	}
	accepted := make(chan net.Conn, s.b.Conns)
	go func() {
		for range s.b.Conns {
			c, err := s.ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	var d net.Dialer
	for range s.b.Conns {
		c, err := d.DialContext(ctx, "tcp", s.ln.Addr().String())
		if err != nil {
			return fmt.Errorf("baseline dial: %w", err)
		}
		s.clients = append(s.clients, c)
		select {
		case sc, ok := <-accepted:
			if !ok {
				return errors.New("baseline: accept failed")
			}
			s.servers = append(s.servers, sc)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.open.Store(int64(len(s.clients)))
	for _, c := range s.clients {
		s.readers.Add(1)
		go s.read(c)
	}
	return nil
}

// read counts whole payloads as deliveries.
func (s *baseline) read(c net.Conn) {
	defer s.readers.Done()
	buf := make([]byte, 64<<10)
	size := int64(s.b.Size)
	var partial int64
	for {
		n, err := c.Read(buf)
		if n > 0 {
			now := time.Now().UnixNano()
			partial += int64(n)
			if whole := partial / size; whole > 0 {
				partial -= whole * size
				s.ser.addN(1, now, whole)
				if now >= s.from.Load() && now < s.to.Load() {
					s.dlv.Add(whole)
				}
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.errs.Add(1)
			}
			s.open.Add(-1)
			return
		}
	}
}

func (s *baseline) Run(ctx context.Context, start time.Time, stop <-chan struct{}) error {
	s.ser.begin(start)
	end := start.Add(s.cfg.Warmup + s.cfg.Duration)
	s.from.Store(start.Add(s.cfg.Warmup).UnixNano())
	s.to.Store(end.UnixNano())
	if err := sleepUntil(ctx, start); err != nil {
		return err
	}
	payload := make([]byte, s.b.Size*s.b.Batch)
	for i := range payload {
		payload[i] = 'x'
	}
	var wg sync.WaitGroup
	for w := range s.b.Writers {
		var mine []net.Conn
		for i := w; i < len(s.servers); i += s.b.Writers {
			mine = append(mine, s.servers[i])
		}
		if len(mine) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				now := time.Now()
				if !now.Before(end) || ctx.Err() != nil {
					return
				}
				select {
				case <-stop:
					return
				default:
				}
				for _, c := range mine {
					if _, err := c.Write(payload); err != nil {
						s.errs.Add(1)
						return
					}
				}
				at := time.Now().UnixNano()
				s.ser.addN(0, at, int64(len(mine))) // writes: one a connection
				if at >= s.from.Load() && at < s.to.Load() {
					s.writes.Add(int64(len(mine)))
				}
			}
		}()
	}
	wg.Wait()
	return ctx.Err()
}

func (s *baseline) Close() {
	s.close.Do(func() {
		for _, c := range s.servers {
			c.Close()
		}
		s.readers.Wait()
		for _, c := range s.clients {
			c.Close()
		}
		if s.ln != nil {
			s.ln.Close()
		}
	})
}

func (s *baseline) Snapshot() *Result {
	r := newResult()
	r.Counts["writes_window"] = s.writes.Load()
	r.Counts["delivered_window"] = s.dlv.Load()
	r.Counts["write_errors"] = s.errs.Load()
	r.Counts["open"] = s.open.Load()
	r.Series = s.ser.snapshot()
	return r
}

func summarizeBaseline(cfg *Config, m *merged, rep *report.Report) {
	rep.Params["conns"] = cfg.Base.Conns
	rep.Params["size"] = cfg.Base.Size
	rep.Params["writers"] = cfg.Base.Writers
	rep.Params["batch"] = cfg.Base.Batch
	rep.Params["duration"] = cfg.Duration.String()
	rep.Params["gomaxprocs"] = runtime.GOMAXPROCS(0)
	for _, k := range []string{"writes_window", "delivered_window", "write_errors"} {
		rep.Counts[k] = m.Counts[k]
	}
	rep.Rates["writes"] = perSec(m.Counts["writes_window"], cfg.Duration) // write calls
	rep.Rates["delivered"] = perSec(m.Counts["delivered_window"], cfg.Duration)
	rep.Rates["rate"] = rep.Rates["delivered"]
	rep.Rates["bytes"] = rep.Rates["delivered"] * float64(cfg.Base.Size)
}

func progressBaseline(m, prev *merged, dt time.Duration) string {
	rate := func(k string) float64 { return perSec(sumSeries(m.Series[k])-sumSeries(prev.Series[k]), dt) }
	return fmt.Sprintf("conns %d  writes %.0f/s  delivered %.0f/s", m.Counts["open"], rate("sent"), rate("delivered"))
}

// coalesce is the payloads per write of the coalesced baseline.
const coalesce = 16

// baselineAfter runs the baseline after a fan-out run, with as many
// connections as the run had receivers (at most what one process holds,
// both ends being here) and the run's mean delivered frame size: half of
// cfg.Baseline with one payload per write, half with coalesce payloads per
// write. Results are keyed "plain" and "coalesced".
func baselineAfter(ctx context.Context, cfg *Config, m *merged) (map[string]*Result, error) {
	out := map[string]*Result{}
	for _, kind := range []string{"plain", "coalesced"} {
		b := *cfg
		b.Scenario, b.Duration, b.Warmup = "baseline", cfg.Baseline/2, 0
		b.Base = BaselineConfig{Conns: min(cfg.totalConns(), 4000), Size: 256, Batch: 1}
		if kind == "coalesced" {
			b.Base.Batch = coalesce
		}
		if cfg.Scenario == "topic" {
			b.Base.Conns = min(cfg.Topic.Subscribers, 4000)
		}
		if m.Verify != nil && m.Verify.Delivered > 0 && m.Counts["delivered_bytes"] > 0 {
			b.Base.Size = int(m.Counts["delivered_bytes"] / m.Verify.Delivered)
		}
		b.Base.setDefaults()
		fmt.Fprintf(cfg.Stderr, "loadgen: baseline (%s): %d connections, %d-byte payloads, %d per write, %d writers, %v\n",
			kind, b.Base.Conns, b.Base.Size, b.Base.Batch, b.Base.Writers, b.Duration)
		sc, _ := newBaseline(&b, share{0, 1})
		if err := sc.Prepare(ctx); err != nil {
			sc.Close()
			return nil, err
		}
		err := sc.Run(ctx, time.Now(), nil)
		sc.Close()
		if err != nil {
			return nil, err
		}
		r := sc.Snapshot()
		r.Counts["conns"], r.Counts["size"], r.Counts["writers"] = int64(b.Base.Conns), int64(b.Base.Size), int64(b.Base.Writers)
		out[kind] = r
	}
	return out, nil
}

// addBaseline puts the baseline beside a fan-out run's figures; with no
// baseline yet (before the run) the keys are there, zero, when one was
// asked for.
func addBaseline(cfg *Config, rs map[string]*Result, rep *report.Report) {
	if cfg.Baseline <= 0 {
		return
	}
	rep.Params["baseline"] = cfg.Baseline.String()
	for _, k := range []string{"baseline_writes", "baseline_deliveries", "baseline_coalesced_writes", "baseline_coalesced_deliveries"} {
		rep.Rates[k] = 0
	}
	rep.Percents["fanout_vs_baseline_pct"], rep.Percents["fanout_vs_coalesced_baseline_pct"] = 0, 0
	half := cfg.Baseline / 2
	for kind, r := range rs {
		prefix := "baseline_"
		if kind == "coalesced" {
			prefix = "baseline_coalesced_"
		}
		for _, k := range []string{"conns", "size", "writers"} {
			rep.Counts["baseline_"+k] = r.Counts[k]
		}
		rep.Rates[prefix+"writes"] = perSec(r.Counts["writes_window"], half)
		rep.Rates[prefix+"deliveries"] = perSec(r.Counts["delivered_window"], half)
	}
	pct := func(b float64) float64 {
		if b <= 0 {
			return 0
		}
		return float64(int(rep.Rates["delivered"]/b*10000)) / 100
	}
	rep.Percents["fanout_vs_baseline_pct"] = pct(rep.Rates["baseline_deliveries"])
	rep.Percents["fanout_vs_coalesced_baseline_pct"] = pct(rep.Rates["baseline_coalesced_deliveries"])
}
