package loadgen

import (
	"context"
	"errors"
	"fmt"
	"time"

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
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	def := scenarios[cfg.Scenario]
	texts := cfg.SLOs
	if def.verifies && !cfg.NoVerifySLOs {
		texts = append(append([]string(nil), verifySLOs...), texts...)
	}
	slos, err := slo.ParseAll(texts)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	var skelSrv *report.Server
	if cfg.MetricsURL != "" {
		skelSrv = serverReport(cfg.MetricsURL, nil, nil)
	}
	if _, err := buildReport(&cfg, emptyMerged(), skelSrv, slos, time.Now(), 0); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if _, err := preflight(&cfg); err != nil {
		return nil, err
	}

	ctx, cancel := context.WithTimeout(ctx, cfg.Deadline)
	defer cancel()
	var before map[string]float64
	if cfg.MetricsURL != "" {
		if before, err = scrape(ctx, cfg.MetricsURL); err != nil {
			return nil, err
		}
	}
	started := time.Now()
	final, held, err := coordinate(ctx, &cfg, def)
	if err != nil {
		switch {
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			return nil, fmt.Errorf("hard deadline of %v passed: %w", cfg.Deadline, err)
		case ctx.Err() != nil:
			return nil, fmt.Errorf("interrupted: %w", err)
		}
		return nil, err
	}
	m, err := merge(final)
	if err != nil {
		return nil, err
	}
	var srv *report.Server
	if cfg.MetricsURL != "" {
		srv = serverReport(cfg.MetricsURL, before, held)
	}
	return buildReport(&cfg, m, srv, slos, started, time.Since(started))
}

// ExitCode maps Run's outcome to loadgen's exit status: 2 for an error, 1
// for a missed SLO, 0 when every SLO held.
func ExitCode(rep *report.Report, err error) int {
	if err != nil || rep == nil {
		return slo.ExitError
	}
	return slo.ExitCode(rep.SLOs, nil)
}

func buildReport(cfg *Config, m *merged, srv *report.Server, slos []slo.SLO, started time.Time, elapsed time.Duration) (*report.Report, error) {
	def := scenarios[cfg.Scenario]
	rep := report.New(cfg.Scenario)
	rep.Target, rep.Workers, rep.StartedAt = cfg.Target, cfg.Workers, started.UTC()
	rep.Elapsed, rep.Window = elapsed.Seconds(), cfg.Duration.Seconds()
	def.summarize(cfg, m, rep)
	rep.Counts["worker_peak_rss_bytes"] = m.Gauges["worker_peak_rss_bytes"] // the largest worker's
	if def.verifies {
		rep.Verify = &verify.Counts{}
		if m.Verify != nil {
			rep.Verify = m.Verify
		}
	}
	for k, v := range m.Errors {
		rep.Errors[k] = v
	}
	rep.Server = srv
	res, err := slo.Evaluate(slos, rep)
	if err != nil {
		return nil, err
	}
	rep.SLOs = res
	rep.Pass = slo.ExitCode(res, nil) == slo.ExitPass
	return rep, nil
}

// helloWait bounds how long a worker may take to answer at all.
const helloWait = 15 * time.Second

// coordinate runs the workers through the protocol of worker.go and
// returns their final results and the server's metrics while the
// connections were held.
func coordinate(ctx context.Context, cfg *Config, def scenarioDef) ([]*Result, map[string]float64, error) {
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
			return nil, nil, err
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

	latest := make([]*Result, n)
	final := make([]*Result, n)
	var held map[string]float64
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
					broadcast(command{Cmd: "start", At: time.Now().Add(100 * time.Millisecond).UnixNano()})
				}
			case "done":
				if done++; done == n {
					if cfg.MetricsURL != "" {
						var err error
						if held, err = scrape(ctx, cfg.MetricsURL); err != nil {
							return nil, nil, err
						}
					}
					broadcast(command{Cmd: "finish"})
				}
			case "result":
				final[e.Worker] = e.Result
				results++
			case "error":
				return nil, nil, fmt.Errorf("worker %d: %s", e.Worker, e.Error)
			case "exit":
				if final[e.Worker] == nil {
					return nil, nil, fmt.Errorf("worker %d exited before reporting its result: %s", e.Worker, e.Error)
				}
			}
		case <-helloTimeout:
			if hellos < n {
				return nil, nil, fmt.Errorf("%d of %d workers did not answer within %v: is %q a loadgen binary?", n-hellos, n, helloWait, cfg.Exe)
			}
		case now := <-tick.C:
			m, err := merge(latest)
			if err != nil {
				return nil, nil, err
			}
			fmt.Fprintf(cfg.Stderr, "[%6.1fs] %s\n", now.Sub(begin).Seconds(), def.progress(m, prev, now.Sub(prevAt)))
			prev, prevAt = m, now
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
	ok = true
	return final, held, nil
}
