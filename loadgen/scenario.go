package loadgen

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/surgechat/surge/loadgen/internal/hist"
	"github.com/surgechat/surge/loadgen/internal/report"
	"github.com/surgechat/surge/loadgen/internal/verify"
)

// Scenario is one worker's share of a load pattern. The worker calls
// Prepare, then Run once every worker is prepared, then Close once every
// worker's Run returned; Snapshot may be called at any time from another
// goroutine.
type Scenario interface {
	// Prepare opens the share's connections. An error aborts the run.
	Prepare(ctx context.Context) error
	// Run drives the load from start (the same instant in every worker)
	// until the scenario ends on its own or stop closes (the run is being
	// aborted: stop sending, then drain as usual); connections stay open.
	Run(ctx context.Context, start time.Time, stop <-chan struct{}) error
	// Snapshot returns the figures so far.
	Snapshot() *Result
	// Close closes the connections.
	Close()
}

// scenarioDef registers a scenario.
type scenarioDef struct {
	// new builds a worker's share.
	new func(cfg *Config, sh share) (Scenario, error)
	// summarize fills rep from the results merged over workers; with an
	// empty m it must still set every key, so SLOs can be checked first.
	summarize func(cfg *Config, m *merged, rep *report.Report)
	// progress is the live line's scenario part; dt is the time since prev.
	progress func(m, prev *merged, dt time.Duration) string
	// verify are the SLOs implied unless --no-verify-slos.
	verify []string
	// rates maps Rates keys to the series they count, for judging rate
	// objectives while the run goes.
	rates map[string]string
	// closedLoop tells whether --closed-loop applies.
	closedLoop bool
	// usage is the one-line description for the help text.
	usage string
}

// verifySLOs are implied by scenarios that verify delivery.
var verifySLOs = []string{"lost==0", "duplicated==0", "reordered==0", "gaps==0", "unknown==0"}

// deliveryRates are the rates of the scenarios that send and deliver.
var deliveryRates = map[string]string{"sent": "sent", "acked": "acked", "delivered": "delivered", "rate": "delivered"}

var scenarios map[string]scenarioDef

func init() {
	scenarios = map[string]scenarioDef{
		"idle": {new: newIdle, summarize: summarizeIdle, progress: progressIdle,
			usage: "open --conns connections and hold them with heartbeats"},
		"direct": {new: newDirect, summarize: summarizeDirect, progress: progressSend, verify: verifySLOs, rates: deliveryRates, closedLoop: true,
			usage: "--pairs senders send to receivers at --rate msgs/s; verify delivery"},
		"group": {new: newGroup, summarize: summarizeGroup, progress: progressSend, verify: append(append([]string(nil), verifySLOs...), "order_mismatch==0"),
			rates: deliveryRates, closedLoop: true,
			usage: "--groups groups of --group-size members send into them at --rate msgs/s; verify fan-out and order"},
		"topic": {new: newTopic, summarize: summarizeTopic, progress: progressSend, verify: []string{"lost==0", "duplicated==0", "unknown==0"},
			rates: deliveryRates, closedLoop: true,
			usage: "--subscribers on --topics topics; an operator publishes at --rate/s over HTTP; verify pushes"},
		"reconnect": {new: newReconnect, summarize: summarizeReconnect, progress: progressReconnect, verify: verifySLOs, rates: deliveryRates,
			usage: "--users receivers get messages, all drop at once, reconnect and sync; measure recovery"},
		"api": {new: newAPILoad, summarize: summarizeAPI, progress: progressAPI, rates: map[string]string{"rate": "acked", "sent": "sent"}, closedLoop: true,
			usage: "HTTP API load: register, login, friends, history at --rate ops/s"},
		"baseline": {new: newBaseline, summarize: summarizeBaseline, progress: progressBaseline, rates: map[string]string{"rate": "delivered", "delivered": "delivered", "writes": "sent"},
			usage: "plain TCP writes on loopback, no protocol: the machine's socket-write limit"},
	}
}

// scenarioNames lists the scenarios for messages.
func scenarioNames() string {
	names := make([]string, 0, len(scenarios))
	for n := range scenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// Usage describes every scenario, one a line, for the command's help.
func Usage() string {
	var b strings.Builder
	for _, n := range []string{"idle", "direct", "group", "topic", "reconnect", "api", "baseline"} {
		b.WriteString("  " + n + strings.Repeat(" ", 10-len(n)) + scenarios[n].usage + "\n")
	}
	return b.String()
}

// Result is what a worker reports: figures that merge across workers.
type Result struct {
	Counts map[string]int64          `json:"counts,omitempty"` // summed over workers
	Gauges map[string]int64          `json:"gauges,omitempty"` // the largest worker's value wins
	Errors map[string]int64          `json:"errors,omitempty"` // error frames by code, summed
	Hists  map[string]*hist.Snapshot `json:"hists,omitempty"`
	Verify *verify.Counts            `json:"verify,omitempty"`
	// Series are events per second from the start, summed bucket by
	// bucket.
	Series map[string][]int64 `json:"series,omitempty"`
}

func newResult() *Result {
	return &Result{Counts: map[string]int64{}, Gauges: map[string]int64{}, Errors: map[string]int64{},
		Hists: map[string]*hist.Snapshot{}, Series: map[string][]int64{}}
}

// merged is results added up over workers, histograms imported.
type merged struct {
	*Result
	hists map[string]*hdrhistogram.Histogram
}

func (m *merged) hist(name string) *hdrhistogram.Histogram {
	if h, ok := m.hists[name]; ok {
		return h
	}
	return hist.New()
}

// merge adds up rs; nil entries are skipped.
func merge(rs []*Result) (*merged, error) {
	m := &merged{Result: newResult(), hists: map[string]*hdrhistogram.Histogram{}}
	snaps := map[string][]*hist.Snapshot{}
	for _, r := range rs {
		if r == nil {
			continue
		}
		for k, v := range r.Counts {
			m.Counts[k] += v
		}
		for k, v := range r.Gauges {
			m.Gauges[k] = max(m.Gauges[k], v)
		}
		for k, v := range r.Errors {
			m.Errors[k] += v
		}
		for k, s := range r.Hists {
			snaps[k] = append(snaps[k], s)
		}
		for k, s := range r.Series {
			m.Series[k] = addSeries(m.Series[k], s)
		}
		if r.Verify != nil {
			if m.Verify == nil {
				m.Verify = &verify.Counts{}
			}
			m.Verify.Merge(*r.Verify)
		}
	}
	for k, ss := range snaps {
		h, err := hist.Merge(ss...)
		if err != nil {
			return nil, err
		}
		m.hists[k] = h
	}
	return m, nil
}

func emptyMerged() *merged {
	m, _ := merge(nil)
	return m
}

// perSec divides a count by a duration.
func perSec(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// p99 formats the 99th percentile of h for progress lines.
func p99(h *hdrhistogram.Histogram) string {
	if h.TotalCount() == 0 {
		return "-"
	}
	return hist.Micros(h.ValueAtPercentile(99))
}
