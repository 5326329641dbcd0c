package loadgen

import (
	"time"

	"github.com/surgechat/surge/loadgen/internal/report"
	"github.com/surgechat/surge/loadgen/internal/slo"
)

// liveBreach is an objective broken while the run went.
type liveBreach struct {
	slo    slo.SLO
	actual string        // the live figure, for people
	at     time.Duration // since the start
}

// minLiveWindow is how much of the measured window must have passed
// before rates and percentages are judged: one slow first second is not
// a breach.
const minLiveWindow = 2 * time.Second

// checkLive judges the objectives that can be judged while the run goes
// (slo.Live) against the figures so far, elapsed after the start, and
// returns the first one broken for good, or nil.
//
// Counts, verification counts (lost so far: acked messages still not
// delivered one drain time after they were due) and max latencies come
// from the workers' latest snapshots. Rates are the series' events per
// second over the whole seconds of the measured window so far, and
// percentages are those of the window so far; both wait for minLiveWindow.
func checkLive(cfg *Config, def scenarioDef, m *merged, slos []slo.SLO, elapsed time.Duration) *liveBreach {
	rep := report.New(cfg.Scenario)
	def.summarize(cfg, m, rep)
	if def.verify != nil && m.Verify != nil {
		rep.Verify = m.Verify
	}
	for k, v := range m.Errors {
		rep.Errors[k] = v
	}
	inWindow := elapsed - cfg.Warmup
	from := int(cfg.Warmup / time.Second)
	to := min(int(elapsed/time.Second), int((cfg.Warmup+cfg.Duration)/time.Second))
	ready := inWindow >= minLiveWindow && to-from >= 2
	for key, series := range def.rates {
		s := m.Series[series]
		var n int64
		for i := from; i < to && i < len(s); i++ {
			n += s[i]
		}
		if ready {
			rep.Rates[key] = float64(n) / float64(to-from)
		}
	}
	for _, s := range slos {
		v, k, ok := rep.Lookup(s.Metric, s.Arg)
		if !ok || !slo.Live(s, k) {
			continue
		}
		if (k == slo.Rate || k == slo.Percent) && !ready {
			continue
		}
		if _, ok := def.rates[s.Metric]; k == slo.Rate && !ok {
			continue // a rate the series do not carry: judged at the end
		}
		if slo.Breached(s, k, v) {
			return &liveBreach{slo: s, actual: slo.Format(v, k), at: elapsed}
		}
	}
	return nil
}
