package loadgen

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/surgechat/surge/loadgen/internal/hist"
	"github.com/surgechat/surge/loadgen/internal/report"
	"github.com/surgechat/surge/loadgen/internal/slo"
	"github.com/surgechat/surge/loadgen/internal/verify"
)

// Run carries out one run and returns its report. A non-nil error means the
// run could not be carried out or was misconfigured (errors.Is(err,
// ErrUsage) for the latter): exit 2. Otherwise the report's Pass tells
// whether every SLO held: exit 0 or 1 (see ExitCode).
func Run(ctx context.Context, cfg Config) (*report.Report, error) {
	cfg.setDefaults()
	if cfg.SLOFile != "" {
		more, err := slo.ReadFile(cfg.SLOFile)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUsage, err)
		}
		cfg.SLOs = append(append([]string(nil), cfg.SLOs...), more...)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	def := scenarios[cfg.Scenario]
	texts := cfg.SLOs
	if !cfg.NoVerifySLOs {
		texts = append(append([]string(nil), def.verify...), texts...)
	}
	slos, err := slo.ParseAll(texts)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	var skelSrv *report.Server
	if cfg.MetricsURL != "" {
		skelSrv = serverReport(cfg.MetricsURL, nil, nil)
	}
	if _, err := buildReport(&cfg, emptyMerged(), skelSrv, slos, &outcome{}, time.Now(), 0); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if _, err := preflight(&cfg); err != nil {
		return nil, err
	}
	mon, err := startMonitor(&cfg)
	if err != nil {
		return nil, err
	}
	defer mon.stop()

	ctx, cancel := context.WithTimeout(ctx, cfg.Deadline)
	defer cancel()
	var before map[string]float64
	if cfg.MetricsURL != "" {
		if before, err = scrape(ctx, cfg.MetricsURL); err != nil {
			return nil, err
		}
	}
	started := time.Now()
	out, err := coordinate(ctx, &cfg, def, slos, mon)
	if err != nil {
		switch {
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			return nil, fmt.Errorf("hard deadline of %v passed: %w", cfg.Deadline, err)
		case ctx.Err() != nil:
			return nil, fmt.Errorf("interrupted: %w", err)
		}
		return nil, err
	}
	m, err := merge(out.final)
	if err != nil {
		return nil, err
	}
	mon.update(m)
	if cfg.Baseline > 0 && (cfg.Scenario == "group" || cfg.Scenario == "topic") && out.breach == nil {
		if out.baseline, err = baselineAfter(ctx, &cfg, m); err != nil {
			return nil, fmt.Errorf("baseline: %w", err)
		}
	}
	var srv *report.Server
	if cfg.MetricsURL != "" {
		srv = serverReport(cfg.MetricsURL, before, out.held)
	}
	return buildReport(&cfg, m, srv, slos, out, started, time.Since(started))
}

// ExitCode maps Run's outcome to loadgen's exit status: 2 for an error, 1
// for a missed SLO, 0 when every SLO held.
func ExitCode(rep *report.Report, err error) int {
	if err != nil || rep == nil {
		return slo.ExitError
	}
	return slo.ExitCode(rep.SLOs, nil)
}

// outcome is what coordinate learnt besides the workers' results.
type outcome struct {
	final    []*Result
	held     map[string]float64 // the server's metrics while the connections were held
	start    time.Time          // when every worker's Run started
	breach   *liveBreach        // the objective that aborted the run, if any
	baseline map[string]*Result // the baselines run after a fan-out run, if any
}

func buildReport(cfg *Config, m *merged, srv *report.Server, slos []slo.SLO, out *outcome, started time.Time, elapsed time.Duration) (*report.Report, error) {
	def := scenarios[cfg.Scenario]
	rcfg := *cfg
	if b := out.breach; b != nil {
		// Rates are over the part of the window that ran.
		rcfg.Duration = min(max(b.at-cfg.Warmup, time.Second), cfg.Duration)
	}
	rep := report.New(cfg.Scenario)
	rep.Target, rep.Workers, rep.StartedAt = cfg.Target, cfg.Workers, started.UTC()
	switch cfg.Scenario {
	case "baseline":
		rep.Target = "loopback TCP (in-process)"
	case "api":
		rep.Target = cfg.API
	}
	rep.Elapsed, rep.Window = elapsed.Seconds(), rcfg.Duration.Seconds()
	rep.Throughput = &report.Throughput{BucketSeconds: 1, WindowFrom: cfg.Warmup.Seconds(),
		WindowTo: (cfg.Warmup + rcfg.Duration).Seconds(), Series: m.Series}
	def.summarize(&rcfg, m, rep)
	if _, ok := rep.Params["duration"]; ok {
		rep.Params["duration"] = cfg.Duration.String() // as asked, even if aborted
	}
	rep.Counts["worker_peak_rss_bytes"] = m.Gauges["worker_peak_rss_bytes"] // the largest worker's
	if def.verify != nil {
		rep.Verify = &verify.Counts{}
		if m.Verify != nil {
			rep.Verify = m.Verify
		}
	}
	for k, v := range m.Errors {
		rep.Errors[k] = v
	}
	for name := range rep.Latency {
		if c := hist.Curve(m.hist(name)); c != nil {
			rep.Curves[name] = c
		}
	}
	if key, ok := def.rates["rate"]; ok {
		// The headline by the clock: what happened inside the window. Below
		// rate when the server (or the generator) fell behind, since rate
		// counts what was due in the window and delivered by the drain.
		s := m.Series[key]
		from, to := int(cfg.Warmup/time.Second), int((cfg.Warmup+rcfg.Duration)/time.Second)
		var n int64
		for i := from; i < to && i < len(s); i++ {
			n += s[i]
		}
		rep.Rates["achieved"] = float64(n) / float64(max(to-from, 1))
	}
	if cfg.Scenario == "group" || cfg.Scenario == "topic" {
		addBaseline(cfg, out.baseline, rep)
	}
	rep.Server = srv
	res, err := slo.Evaluate(slos, rep)
	if err != nil {
		return nil, err
	}
	rep.SLOs = res
	if b := out.breach; b != nil {
		rep.Aborted = fmt.Sprintf("SLO %s breached %.1fs after the start (live figure %s); the run stopped sending, drained and ended early",
			b.slo.Text, b.at.Seconds(), b.actual)
		for i := range rep.SLOs {
			if r := &rep.SLOs[i]; r.SLO == b.slo.Text && r.Pass {
				r.Pass = false
				r.Actual = fmt.Sprintf("%s live at %.1fs (%s at the end)", b.actual, b.at.Seconds(), r.Actual)
			}
		}
	}
	rep.Pass = slo.ExitCode(rep.SLOs, nil) == slo.ExitPass
	return rep, nil
}

// helloWait bounds how long a worker may take to answer at all.
const helloWait = 15 * time.Second

// coordinate runs the workers through the protocol of worker.go and
// returns their final results, the server's metrics while the connections
// were held, and whether an objective aborted the run.
func coordinate(ctx context.Context, cfg *Config, def scenarioDef, slos []slo.SLO, mon *monitor) (*outcome, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n := cfg.Workers
	events := make(chan event, 4*n)
	links := make([]link, n)
	for i := range links {
		var err error
		if n == 1 {
			links[i] = startInProcess(ctx, cfg, events)
		} else if links[i], err = startProcess(ctx, cfg, i, events); err != nil {
			return nil, err
		}
	}
	ok := false
	defer func() {
		if !ok {
			cancel() // kill the workers at once
		}
		// After a clean run they exit by themselves; give them a moment.
		t := time.AfterFunc(5*time.Second, cancel)
		defer t.Stop()
		for _, l := range links {
			if l != nil {
				l.wait()
			}
		}
	}()
	broadcast := func(c command) {
		for _, l := range links {
			l.send(c)
		}
	}

	out := &outcome{final: make([]*Result, n)}
	latest := make([]*Result, n)
	hellos, ready, done, results := 0, 0, 0, 0
	helloTimeout := time.After(helloWait)
	begin := time.Now()
	prev, prevAt := emptyMerged(), begin
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for results < n {
		select {
		case e := <-events:
			if e.Result != nil {
				latest[e.Worker] = e.Result
			}
			switch e.Type {
			case "hello":
				hellos++
			case "ready":
				if ready++; ready == n {
					out.start = time.Now().Add(100 * time.Millisecond)
					broadcast(command{Cmd: "start", At: out.start.UnixNano()})
				}
			case "done":
				if done++; done == n {
					if cfg.MetricsURL != "" {
						var err error
						if out.held, err = scrape(ctx, cfg.MetricsURL); err != nil {
							return nil, err
						}
					}
					broadcast(command{Cmd: "finish"})
				}
			case "result":
				out.final[e.Worker] = e.Result
				results++
			case "error":
				return nil, fmt.Errorf("worker %d: %s", e.Worker, e.Error)
			case "exit":
				if out.final[e.Worker] == nil {
					return nil, fmt.Errorf("worker %d exited before reporting its result: %s", e.Worker, e.Error)
				}
			}
		case <-helloTimeout:
			if hellos < n {
				return nil, fmt.Errorf("%d of %d workers did not answer within %v: is %q a loadgen binary?", n-hellos, n, helloWait, cfg.Exe)
			}
		case now := <-tick.C:
			m, err := merge(latest)
			if err != nil {
				return nil, err
			}
			mon.update(m)
			fmt.Fprintf(cfg.Stderr, "[%6.1fs] %s\n", now.Sub(begin).Seconds(), def.progress(m, prev, now.Sub(prevAt)))
			prev, prevAt = m, now
			if cfg.AbortOnBreach && out.breach == nil && !out.start.IsZero() && now.After(out.start) && done < n {
				if b := checkLive(cfg, def, m, slos, now.Sub(out.start)); b != nil {
					out.breach = b
					fmt.Fprintf(cfg.Stderr, "loadgen: SLO %s breached (live figure %s): aborting the run\n", b.slo.Text, b.actual)
					broadcast(command{Cmd: "abort"})
				}
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	ok = true
	return out, nil
}
