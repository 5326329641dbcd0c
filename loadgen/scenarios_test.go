package loadgen

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestGroupAgainstSurge creates groups through the HTTP API of a real
// surge up, sends into them over WebSockets and checks the fan-out: every
// member got every message once, in one order; then the baseline runs
// beside it.
func TestGroupAgainstSurge(t *testing.T) {
	t.Parallel()
	s := startSurge(t)
	cfg := s.config("group")
	cfg.Group = GroupConfig{Groups: 3, Size: 4}
	cfg.Rate, cfg.Warmup, cfg.Drain, cfg.Duration = 60, 500*time.Millisecond, 10*time.Second, 2*time.Second
	cfg.Baseline = time.Second
	cfg.SLOs = []string{"rate>=200/s", "baseline_deliveries>0", "p99(fanout)<60s"}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	v := rep.Verify
	const msgs = 150 // 2.5s at 60/s
	if v == nil || !v.OK() || v.Sent != msgs || v.Acked != msgs || v.Delivered != 4*msgs || v.OrderMismatch != 0 {
		t.Fatalf("verification %+v, errors %v", v, rep.Errors)
	}
	if rep.Rates["delivered"] != 240 || rep.Rates["sent"] != 60 {
		t.Fatalf("rates %v, want 60 msgs/s fanned out to 240 deliveries/s", rep.Rates)
	}
	if rep.Latency["fanout"].Count != 120 || rep.Latency["delivery"].Count != 480 {
		t.Fatalf("latency %+v", rep.Latency)
	}
	if rep.Rates["baseline_deliveries"] <= 0 || rep.Counts["baseline_conns"] != 12 || rep.Percents["fanout_vs_baseline_pct"] <= 0 {
		t.Fatalf("baseline: rates %v counts %v percents %v", rep.Rates, rep.Counts, rep.Percents)
	}
	if th := rep.Throughput; th == nil || sumSeries(th.Series["delivered"]) != 4*msgs || sumSeries(th.Series["sent"]) != msgs {
		t.Fatalf("throughput %+v", rep.Throughput)
	}
	if !rep.Pass {
		t.Fatalf("SLOs %+v", rep.SLOs)
	}
	checkJSON(t, rep)
	path := filepath.Join(t.TempDir(), "r.html")
	if err := rep.WriteHTML(path); err != nil {
		t.Fatal(err)
	}
}

// TestTopicAgainstSurge subscribes registered users to topics and has the
// operator (surge up --operators) publish over HTTP on a ramp.
func TestTopicAgainstSurge(t *testing.T) {
	t.Parallel()
	s := startSurge(t)
	cfg := s.config("topic")
	cfg.Topic = TopicConfig{Topics: 2, Subscribers: 10}
	cfg.Ramp = []RatePoint{{0, 20}, {2 * time.Second, 60}} // 80 publishes over 2s
	cfg.Drain, cfg.Duration = 10*time.Second, 2*time.Second
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	v := rep.Verify
	if v == nil || !v.OK() || v.Sent != 80 || v.Acked != 80 || v.Delivered != 5*80 {
		t.Fatalf("verification %+v, errors %v", v, rep.Errors)
	}
	if rep.Latency["publish"].Count != 80 || rep.Latency["delivery"].Count != 400 || !rep.Pass {
		t.Fatalf("latency %+v SLOs %+v", rep.Latency, rep.SLOs)
	}
	if !strings.Contains(rep.Params["arrival"].(string), "ramp") {
		t.Fatalf("params %v", rep.Params)
	}

	// A user without the operator role cannot publish: a usage error that
	// says how to fix it.
	cfg.OperatorUser = "lg-not-an-op"
	_, err = Run(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "--operators lg-not-an-op") {
		t.Fatalf("publishing as a plain user: %v", err)
	}
}

// TestReconnectAgainstSurge drops every receiver at once, reconnects them
// and checks that each recovered everything by sync.
func TestReconnectAgainstSurge(t *testing.T) {
	t.Parallel()
	s := startSurge(t)
	cfg := s.config("reconnect")
	cfg.Reconnect = ReconnectConfig{Users: 40, StormAt: 1500 * time.Millisecond, Offline: 500 * time.Millisecond, Rate: 200}
	cfg.Rate, cfg.Warmup, cfg.Drain, cfg.Duration = 100, 500*time.Millisecond, 10*time.Second, 3*time.Second
	cfg.SLOs = []string{"recovered==40", "unrecovered==0", "count(recover)==40"}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	v := rep.Verify
	if v == nil || !v.OK() || v.Sent != 350 || v.Acked != 350 || v.Delivered != 350 || !rep.Pass {
		t.Fatalf("verification %+v SLOs %+v counts %v", v, rep.SLOs, rep.Counts)
	}
	if rep.Counts["reconnected"] != 40 || rep.Counts["dropped"] != 0 {
		t.Fatalf("counts %v", rep.Counts)
	}
}

// TestAPIAgainstSurge drives the HTTP API: register, login, friends,
// history and sync, with latency per endpoint.
func TestAPIAgainstSurge(t *testing.T) {
	t.Parallel()
	s := startSurge(t)
	cfg := s.config("api")
	cfg.APILoad = APIConfig{Users: 8, Seed: 3}
	cfg.Rate, cfg.Duration = 30, 2*time.Second
	cfg.SLOs = []string{"errors==0", "rate>=25/s"}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Pass || rep.Counts["sent_window"] != 60 || rep.Counts["seeded"] != 12 {
		t.Fatalf("SLOs %+v counts %v errors %v", rep.SLOs, rep.Counts, rep.Errors)
	}
	for _, ep := range []string{"register", "login", "friend_request", "friend_accept", "friend_remove", "history", "sync"} {
		if rep.Latency[ep].Count == 0 || rep.Counts[ep+".ok"] == 0 {
			t.Errorf("endpoint %s: latency %+v, %d ok", ep, rep.Latency[ep], rep.Counts[ep+".ok"])
		}
	}
}
