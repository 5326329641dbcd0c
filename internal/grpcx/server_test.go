package grpcx_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	"github.com/surgechat/surge/internal/grpcx"
)

// open is a ServerConfig whose fake methods need no token.
func open(set *metrics.Set) grpcx.ServerConfig {
	return grpcx.ServerConfig{Metrics: set, Public: []string{"/" + fakeService + "/"}}
}

// TestPanic: a panicking handler gives Internal, is logged with its stack
// and counted, and the server goes on serving, unary and streaming.
func TestPanic(t *testing.T) {
	set := metrics.NewSet()
	ts := startServer(t, open(set))
	conn := dial(t, ts.addr, grpcx.ClientConfig{})

	err := call(conn, fakeCheck, "panic")
	wantCode(t, err, codes.Internal, "Check panic")
	if strings.Contains(err.Error(), "boom") {
		t.Errorf("the panic value reached the client: %v", err)
	}
	wantCode(t, call(conn, fakeCheck, "ok"), codes.OK, "Check after the panic")
	wantCode(t, watch(conn, "panic"), codes.Internal, "Watch panic")
	wantCode(t, watch(conn, "ok"), codes.OK, "Watch after the panic")

	log := ts.log.String()
	if !strings.Contains(log, "boom") || !strings.Contains(log, "fake_test.go") || !strings.Contains(log, fakeCheck) {
		t.Errorf("the log lacks the panic, its stack or its method:\n%s", log)
	}
	wantMetric(t, set, `surge_grpc_server_panics_total{service="surge.test.Fake",method="Check"}`, "1")
	wantMetric(t, set, `surge_grpc_server_panics_total{service="surge.test.Fake",method="Watch"}`, "1")
	wantMetric(t, set, `surge_grpc_server_requests_total{service="surge.test.Fake",method="Check",code="Internal"}`, "1")
}

// TestDeadlines: a call without a deadline gets the server's default; the
// client's default travels to the server; a caller's own deadline wins.
func TestDeadlines(t *testing.T) {
	ts := startServer(t, grpcx.ServerConfig{DefaultTimeout: 3 * time.Second, Public: []string{"/" + fakeService + "/"}})
	f := func(what string, cfg grpcx.ClientConfig, ctxTimeout, lo, hi time.Duration) {
		t.Helper()
		conn := dial(t, ts.addr, cfg)
		ctx := context.Background()
		if ctxTimeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, ctxTimeout)
			defer cancel()
		}
		if err := callCtx(ctx, conn, fakeCheck, "ok"); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		ts.fake.mu.Lock()
		had, rem := ts.fake.hadDeadline, ts.fake.remaining
		ts.fake.mu.Unlock()
		if !had || rem <= lo || rem > hi {
			t.Errorf("%s: handler saw deadline %v with %v left, want (%v, %v]", what, had, rem, lo, hi)
		}
	}
	f("no deadline anywhere", grpcx.ClientConfig{Timeout: -1}, 0, time.Second, 3*time.Second)
	f("client default", grpcx.ClientConfig{Timeout: 1500 * time.Millisecond}, 0, 500*time.Millisecond, 1500*time.Millisecond)
	f("caller's deadline", grpcx.ClientConfig{}, 700*time.Millisecond, 100*time.Millisecond, 700*time.Millisecond)
	f("zero Timeout means 5s", grpcx.ClientConfig{}, 0, 4*time.Second, 5*time.Second)
}

// TestServerMetrics: RED metrics per service, method and code.
func TestServerMetrics(t *testing.T) {
	set := metrics.NewSet()
	ts := startServer(t, open(set))
	cset := metrics.NewSet()
	conn := dial(t, ts.addr, grpcx.ClientConfig{Metrics: cset})
	for range 3 {
		wantCode(t, call(conn, fakeCheck, "ok"), codes.OK, "Check")
	}
	wantCode(t, call(conn, fakeCheck, "code:5"), codes.NotFound, "Check code:5")
	wantCode(t, watch(conn, "ok"), codes.OK, "Watch")

	wantMetric(t, set, `surge_grpc_server_requests_total{service="surge.test.Fake",method="Check",code="OK"}`, "3")
	wantMetric(t, set, `surge_grpc_server_requests_total{service="surge.test.Fake",method="Check",code="NotFound"}`, "1")
	wantMetric(t, set, `surge_grpc_server_requests_total{service="surge.test.Fake",method="Watch",code="OK"}`, "1")
	wantMetric(t, set, `surge_grpc_server_duration_seconds_count{service="surge.test.Fake",method="Check"}`, "4")
	if text := metricsText(set); !strings.Contains(text, `surge_grpc_server_duration_seconds_bucket{service="surge.test.Fake",method="Check",le="0.005"}`) {
		t.Errorf("no Prometheus histogram buckets:\n%s", text)
	}

	client := func(method, code string) string {
		return fmt.Sprintf(`surge_grpc_client_requests_total{target=%q,method="surge.test.Fake/%s",code=%q}`, ts.addr, method, code)
	}
	wantMetric(t, cset, client("Check", "OK"), "3")
	wantMetric(t, cset, client("Check", "NotFound"), "1")
	wantMetric(t, cset, client("Watch", "OK"), "1")
	wantMetric(t, cset, fmt.Sprintf(`surge_grpc_client_duration_seconds_count{target=%q,method="surge.test.Fake/Check"}`, ts.addr), "4")
}

// TestHealth: the standard health service is public and reports what the
// service sets; Shutdown turns everything NOT_SERVING and stops.
func TestHealth(t *testing.T) {
	ts := startServer(t, grpcx.ServerConfig{}) // no authenticator: only public methods work
	conn := dial(t, ts.addr, grpcx.ClientConfig{})
	hc := healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	status := func(service string) healthpb.HealthCheckResponse_ServingStatus {
		t.Helper()
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			t.Fatalf("health Check %q: %v", service, err)
		}
		return resp.GetStatus()
	}
	if got := status(""); got != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("overall status %v", got)
	}
	ts.SetServing(fakeService, true)
	if got := status(fakeService); got != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("after SetServing(true): %v", got)
	}
	ts.SetServing(fakeService, false)
	if got := status(fakeService); got != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("after SetServing(false): %v", got)
	}
	wantCode(t, call(conn, fakeCheck, "ok"), codes.Unauthenticated, "Check on a server without an authenticator")

	ts.SetServing(fakeService, true)
	watcher, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{Service: fakeService})
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := watcher.Recv(); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Watch: %v, %v", resp, err)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer scancel()
	ts.Shutdown(sctx) // the Watch stream is in flight, so this waits for sctx
	if resp, err := watcher.Recv(); err == nil && resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("Watch after Shutdown: %v", resp)
	}
}

// TestReflection: server reflection lists the registered services, without
// a token even on a server that requires one.
func TestReflection(t *testing.T) {
	ts := startServer(t, grpcx.ServerConfig{Auth: grpcx.AuthenticatorFunc(func(context.Context, string) (grpcx.Principal, error) {
		t.Error("reflection asked for authentication")
		return grpcx.Principal{}, nil
	})})
	conn := dial(t, ts.addr, grpcx.ClientConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req := &reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{ListServices: "*"}}
	if err := stream.Send(req); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range []string{"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", fakeService} {
		if !slices.Contains(names, want) {
			t.Errorf("reflection lists %v, without %s", names, want)
		}
	}
}

func TestNewServerInvalid(t *testing.T) {
	for _, pub := range []string{"Login", "/svc", "/svc/a/b", "svc/Login"} {
		if _, err := grpcx.NewServer(grpcx.ServerConfig{Public: []string{pub}}); err == nil {
			t.Errorf("Public %q accepted", pub)
		}
	}
}
