package grpcx_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/surgechat/surge/internal/grpcx"
	"github.com/surgechat/surge/internal/testutil"
)

// The test service, surge.test.Fake, reuses the health messages: Check and
// Login are unary (Login is made public by the tests), Watch streams. The
// request's service field picks what the handler does:
//
//	"panic"      panic
//	"code:N"     fail with gRPC code N
//	"role:R"     return RequireRole(ctx, R)
//	anything     pop the next scripted error or delay, else answer SERVING
const (
	fakeService = "surge.test.Fake"
	fakeCheck   = "/surge.test.Fake/Check"
	fakeLogin   = "/surge.test.Fake/Login"
	fakeWatch   = "/surge.test.Fake/Watch"
)

// fake is the implementation of surge.test.Fake on one server.
type fake struct {
	calls atomic.Int64 // calls that reached the handler

	mu          sync.Mutex
	errs        []error         // returned by the next calls, in order
	delays      []time.Duration // slept by the next calls, in order
	principal   grpcx.Principal // of the last call
	authed      bool            // the last call had a principal
	hadDeadline bool            // the last call had a deadline
	remaining   time.Duration   // of that deadline when the handler ran
}

func (f *fake) script(errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = errs
}

func (f *fake) handle(ctx context.Context, req *healthpb.HealthCheckRequest) error {
	f.calls.Add(1)
	f.mu.Lock()
	f.principal, f.authed = grpcx.PrincipalFrom(ctx)
	dl, ok := ctx.Deadline()
	f.hadDeadline, f.remaining = ok, time.Until(dl)
	var err error
	if len(f.errs) > 0 {
		err, f.errs = f.errs[0], f.errs[1:]
	}
	var delay time.Duration
	if len(f.delays) > 0 {
		delay, f.delays = f.delays[0], f.delays[1:]
	}
	f.mu.Unlock()

	switch cmd, arg, _ := strings.Cut(req.GetService(), ":"); cmd {
	case "panic":
		panic("boom")
	case "code":
		n, _ := strconv.Atoi(arg)
		return status.Errorf(codes.Code(n), "asked for code %d", n)
	case "role":
		return grpcx.RequireRole(ctx, arg)
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
	return err
}

func (f *fake) last() (p grpcx.Principal, authed bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.principal, f.authed
}

func unaryHandler(fullMethod string) func(any, context.Context, func(any) error, grpc.UnaryServerInterceptor) (any, error) {
	return func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		in := new(healthpb.HealthCheckRequest)
		if err := dec(in); err != nil {
			return nil, err
		}
		h := func(ctx context.Context, req any) (any, error) {
			if err := srv.(*fake).handle(ctx, req.(*healthpb.HealthCheckRequest)); err != nil {
				return nil, err
			}
			return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
		}
		return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: fullMethod}, h)
	}
}

var fakeDesc = grpc.ServiceDesc{
	ServiceName: fakeService,
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Check", Handler: unaryHandler(fakeCheck)},
		{MethodName: "Login", Handler: unaryHandler(fakeLogin)},
	},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Watch",
		ServerStreams: true,
		Handler: func(srv any, stream grpc.ServerStream) error {
			in := new(healthpb.HealthCheckRequest)
			if err := stream.RecvMsg(in); err != nil {
				return err
			}
			if err := srv.(*fake).handle(stream.Context(), in); err != nil {
				return err
			}
			return stream.SendMsg(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING})
		},
	}},
}

// testServer is a running Server with the fake registered.
type testServer struct {
	*grpcx.Server
	fake *fake
	addr string
	log  *testutil.SyncBuffer
}

// startServer serves cfg on 127.0.0.1:0 until the test ends.
func startServer(t *testing.T, cfg grpcx.ServerConfig) *testServer {
	t.Helper()
	ts := &testServer{fake: &fake{}, log: &testutil.SyncBuffer{}}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(ts.log, nil))
	}
	s, err := grpcx.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.RegisterService(&fakeDesc, ts.fake)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.Server, ts.addr = s, lis.Addr().String()
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	return ts
}

// dial connects to target until the test ends.
func dial(t *testing.T, target string, cfg grpcx.ClientConfig) *grpc.ClientConn {
	t.Helper()
	conn, err := grpcx.Dial(context.Background(), target, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// call invokes a unary method of the fake with the given command.
func call(conn *grpc.ClientConn, method, cmd string, opts ...grpc.CallOption) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return callCtx(ctx, conn, method, cmd, opts...)
}

func callCtx(ctx context.Context, conn *grpc.ClientConn, method, cmd string, opts ...grpc.CallOption) error {
	return conn.Invoke(ctx, method, &healthpb.HealthCheckRequest{Service: cmd}, new(healthpb.HealthCheckResponse), opts...)
}

// watch opens the fake's stream with cmd and reads it to its end.
func watch(conn *grpc.ClientConn, cmd string, opts ...grpc.CallOption) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, fakeWatch, opts...)
	if err != nil {
		return err
	}
	if err := cs.SendMsg(&healthpb.HealthCheckRequest{Service: cmd}); err != nil {
		return err
	}
	if err := cs.CloseSend(); err != nil {
		return err
	}
	for {
		if err := cs.RecvMsg(new(healthpb.HealthCheckResponse)); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// wantCode fails t unless err has code want.
func wantCode(t *testing.T, err error, want codes.Code, what string) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Errorf("%s: %v (code %v), want code %v", what, err, got, want)
	}
}

// waitFor polls cond until it holds, failing t after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// metricsText returns set in Prometheus text format.
func metricsText(set *metrics.Set) string {
	var b bytes.Buffer
	set.WritePrometheus(&b)
	return b.String()
}

// wantMetric fails t unless set has the sample line "name value".
func wantMetric(t *testing.T, set *metrics.Set, name, value string) {
	t.Helper()
	text := metricsText(set)
	for line := range strings.Lines(text) {
		if strings.TrimSpace(line) == name+" "+value {
			return
		}
	}
	t.Errorf("metrics lack %q:\n%s", name+" "+value, text)
}
