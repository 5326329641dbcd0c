package grpcx_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/surgechat/surge/internal/grpcx"
)

func unavailable() error { return status.Error(codes.Unavailable, "scripted") }

// TestBreaker: consecutive Unavailable opens the method's breaker, which
// then fails fast without calling the server; after OpenTimeout a probe
// closes it again. Answers such as InvalidArgument never open it.
func TestBreaker(t *testing.T) {
	ts := startServer(t, open(nil))
	set := metrics.NewSet()
	target := ts.addr
	conn := dial(t, target, grpcx.ClientConfig{
		Metrics: set,
		Breaker: grpcx.BreakerConfig{Failures: 3, OpenTimeout: 200 * time.Millisecond},
	})
	state := fmt.Sprintf(`surge_grpc_client_breaker_state{target=%q,method="surge.test.Fake/Check"}`, target)

	// The server answering, even with errors, keeps the breaker closed.
	for i := range 10 {
		wantCode(t, call(conn, fakeCheck, "code:3"), codes.InvalidArgument, fmt.Sprintf("InvalidArgument %d", i))
		wantCode(t, call(conn, fakeCheck, "code:5"), codes.NotFound, fmt.Sprintf("NotFound %d", i))
	}
	if n := ts.fake.calls.Load(); n != 20 {
		t.Fatalf("server saw %d calls, want 20", n)
	}
	wantMetric(t, set, state, "0")

	// Three Unavailable in a row open it.
	for i := range 3 {
		wantCode(t, call(conn, fakeCheck, "code:14"), codes.Unavailable, fmt.Sprintf("Unavailable %d", i))
	}
	wantMetric(t, set, state, "2")
	start := time.Now()
	err := call(conn, fakeCheck, "ok")
	wantCode(t, err, codes.Unavailable, "call through an open breaker")
	if !errors.Is(err, grpcx.ErrCircuitOpen) || !strings.Contains(err.Error(), "circuit open") {
		t.Errorf("open breaker's error %v does not match ErrCircuitOpen", err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("an open breaker took %v to refuse", d)
	}
	if n := ts.fake.calls.Load(); n != 23 {
		t.Errorf("server saw %d calls, want 23: the open breaker let one through", n)
	}
	// Other methods have their own breakers.
	wantCode(t, watch(conn, "ok"), codes.OK, "Watch while Check's breaker is open")

	// After OpenTimeout, a successful probe closes it.
	waitFor(t, 5*time.Second, "the breaker to let a probe through", func() bool {
		return call(conn, fakeCheck, "ok") == nil
	})
	wantMetric(t, set, state, "0")
	for i := range 5 {
		wantCode(t, call(conn, fakeCheck, "ok"), codes.OK, fmt.Sprintf("after closing %d", i))
	}
}

// TestBreakerFailedProbe: a failing probe opens the breaker again.
func TestBreakerFailedProbe(t *testing.T) {
	ts := startServer(t, open(nil))
	conn := dial(t, ts.addr, grpcx.ClientConfig{Breaker: grpcx.BreakerConfig{Failures: 1, OpenTimeout: 100 * time.Millisecond}})
	wantCode(t, call(conn, fakeCheck, "code:13"), codes.Internal, "Internal")
	if err := call(conn, fakeCheck, "ok"); !errors.Is(err, grpcx.ErrCircuitOpen) {
		t.Fatalf("after one Internal: %v, want the breaker open", err)
	}
	waitFor(t, 5*time.Second, "the probe to reach the server", func() bool {
		return status.Code(call(conn, fakeCheck, "code:14")) == codes.Unavailable &&
			ts.fake.calls.Load() == 2
	})
	if err := call(conn, fakeCheck, "ok"); !errors.Is(err, grpcx.ErrCircuitOpen) {
		t.Errorf("after a failed probe: %v, want the breaker open", err)
	}
}

// TestRetry: idempotent methods are retried on Unavailable, a bounded
// number of times; nothing else is.
func TestRetry(t *testing.T) {
	ts := startServer(t, open(nil))
	set := metrics.NewSet()
	retry := grpcx.RetryConfig{BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond}
	idem := dial(t, ts.addr, grpcx.ClientConfig{
		Idempotent: grpcx.IdempotentMethods(fakeCheck),
		Retry:      retry,
		Breaker:    grpcx.BreakerConfig{Disabled: true},
		Metrics:    set,
	})
	plain := dial(t, ts.addr, grpcx.ClientConfig{Retry: retry, Breaker: grpcx.BreakerConfig{Disabled: true}})

	// f scripts the server's answers, calls, and checks the outcome and
	// how many attempts reached the server.
	f := func(what string, conn *grpc.ClientConn, method string, script []error, want codes.Code, attempts int64) {
		t.Helper()
		ts.fake.script(script...)
		before := ts.fake.calls.Load()
		wantCode(t, call(conn, method, "ok"), want, what)
		if n := ts.fake.calls.Load() - before; n != attempts {
			t.Errorf("%s: %d attempts reached the server, want %d", what, n, attempts)
		}
	}
	u := unavailable()
	f("two Unavailable, then OK", idem, fakeCheck, []error{u, u}, codes.OK, 3)
	f("Unavailable throughout", idem, fakeCheck, []error{u, u, u, u}, codes.Unavailable, 3)
	f("InvalidArgument", idem, fakeCheck, []error{status.Error(codes.InvalidArgument, "no")}, codes.InvalidArgument, 1)
	f("Internal", idem, fakeCheck, []error{status.Error(codes.Internal, "no")}, codes.Internal, 1)
	f("not idempotent: other method", idem, fakeLogin, []error{u}, codes.Unavailable, 1)
	f("not idempotent: no Idempotent", plain, fakeCheck, []error{u}, codes.Unavailable, 1)
	wantMetric(t, set, fmt.Sprintf(`surge_grpc_client_retries_total{target=%q,method="surge.test.Fake/Check"}`, ts.addr), "4")
	wantMetric(t, set, fmt.Sprintf(`surge_grpc_client_requests_total{target=%q,method="surge.test.Fake/Check",code="OK"}`, ts.addr), "1")
	wantMetric(t, set, fmt.Sprintf(`surge_grpc_client_requests_total{target=%q,method="surge.test.Fake/Check",code="Unavailable"}`, ts.addr), "1")
	ts.fake.script()
}

// TestRetryPerAttempt: with PerAttemptTimeout, an attempt that hangs is
// abandoned and retried within the call's deadline.
func TestRetryPerAttempt(t *testing.T) {
	ts := startServer(t, open(nil))
	conn := dial(t, ts.addr, grpcx.ClientConfig{
		Idempotent: grpcx.IdempotentMethods(fakeCheck),
		Retry:      grpcx.RetryConfig{BaseDelay: time.Millisecond, PerAttemptTimeout: 100 * time.Millisecond},
	})
	ts.fake.mu.Lock()
	ts.fake.delays = []time.Duration{time.Minute}
	ts.fake.mu.Unlock()
	wantCode(t, call(conn, fakeCheck, "ok"), codes.OK, "second attempt after a hung one")
	if n := ts.fake.calls.Load(); n != 2 {
		t.Errorf("%d attempts, want 2", n)
	}

	// Without PerAttemptTimeout the call's deadline (here the client's
	// default) is spent on the first attempt.
	conn = dial(t, ts.addr, grpcx.ClientConfig{Idempotent: grpcx.IdempotentMethods(fakeCheck), Timeout: 100 * time.Millisecond})
	ts.fake.mu.Lock()
	ts.fake.delays = []time.Duration{time.Minute}
	ts.fake.mu.Unlock()
	wantCode(t, callCtx(context.Background(), conn, fakeCheck, "ok"), codes.DeadlineExceeded, "hung attempt")
	if n := ts.fake.calls.Load(); n != 3 {
		t.Errorf("%d attempts in all, want 3", n)
	}
}

// TestRoundRobin: a static target of two servers spreads calls over both.
func TestRoundRobin(t *testing.T) {
	a := startServer(t, open(nil))
	b := startServer(t, open(nil))
	conn := dial(t, "static:///"+a.addr+","+b.addr, grpcx.ClientConfig{})
	waitFor(t, 10*time.Second, "both servers to get calls", func() bool {
		if err := call(conn, fakeCheck, "ok"); err != nil {
			t.Fatal(err)
		}
		return a.fake.calls.Load() > 0 && b.fake.calls.Load() > 0
	})
	// Once both are connected, calls alternate.
	a0, b0 := a.fake.calls.Load(), b.fake.calls.Load()
	for range 20 {
		if err := call(conn, fakeCheck, "ok"); err != nil {
			t.Fatal(err)
		}
	}
	if da, db := a.fake.calls.Load()-a0, b.fake.calls.Load()-b0; da != 10 || db != 10 {
		t.Errorf("20 calls went %d and %d, want 10 and 10", da, db)
	}
}

// TestRoundRobinFailover: with one of two servers down, calls go to the
// other.
func TestRoundRobinFailover(t *testing.T) {
	a := startServer(t, open(nil))
	b := startServer(t, open(nil))
	conn := dial(t, "static:///"+a.addr+", "+b.addr, grpcx.ClientConfig{
		Idempotent: grpcx.IdempotentMethods(fakeCheck),
		Breaker:    grpcx.BreakerConfig{Disabled: true},
	})
	waitFor(t, 10*time.Second, "both servers to get calls", func() bool {
		call(conn, fakeCheck, "ok")
		return a.fake.calls.Load() > 0 && b.fake.calls.Load() > 0
	})
	a.Stop()
	waitFor(t, 10*time.Second, "calls to succeed with a down", func() bool {
		return call(conn, fakeCheck, "ok") == nil
	})
	b0 := b.fake.calls.Load()
	for range 10 {
		if err := call(conn, fakeCheck, "ok"); err != nil {
			t.Fatalf("with a down: %v", err)
		}
	}
	if n := b.fake.calls.Load() - b0; n != 10 {
		t.Errorf("b got %d of 10 calls", n)
	}
}

func TestStaticTargetEmpty(t *testing.T) {
	conn := dial(t, "static:///", grpcx.ClientConfig{Timeout: 500 * time.Millisecond})
	if err := call(conn, fakeCheck, "ok"); err == nil {
		t.Error("a call on an empty static target succeeded")
	}
}

func TestDialCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := grpcx.Dial(ctx, "127.0.0.1:1", grpcx.ClientConfig{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Dial with a canceled context: %v", err)
	}
}
