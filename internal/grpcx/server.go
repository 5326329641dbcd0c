package grpcx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
)

// DefaultServerTimeout is the deadline a server gives a unary call that
// arrives without one.
const DefaultServerTimeout = 10 * time.Second

// ServerConfig configures NewServer.
type ServerConfig struct {
	// Logger receives handler panics (with their stacks) at error level;
	// nothing is logged per call. Nil means slog.Default().
	Logger *slog.Logger

	// Metrics receives surge_grpc_server_requests_total{service,method,code},
	// surge_grpc_server_duration_seconds{service,method} (a Prometheus
	// histogram with internal/metrics.LatencyBuckets) and
	// surge_grpc_server_panics_total{service,method}. Nil means no metrics.
	Metrics *metrics.Set

	// DefaultTimeout is the deadline given to a unary call whose client
	// set none. Zero means DefaultServerTimeout; negative means none.
	// Streams get no default deadline (Watch-style streams live long), but
	// a stream or call whose deadline has already passed is rejected with
	// DeadlineExceeded before its handler runs.
	DefaultTimeout time.Duration

	// Auth authenticates the bearer token of every call to a method that
	// is not public. Nil rejects every such call with Unauthenticated, so
	// a server with no authenticator serves only its public methods.
	Auth Authenticator

	// Public lists the methods that need no token: full method names such
	// as "/surge.account.v1.Account/Login", or a service's prefix ending
	// in "/", such as "/surge.account.v1.Account/" for all of its methods.
	// The health and reflection services are always public. Their
	// handlers see no Principal.
	Public []string

	// Options are added to the grpc.NewServer options, after NewServer's
	// own interceptors (further interceptors given with
	// grpc.ChainUnaryInterceptor run inside them).
	Options []grpc.ServerOption
}

// Server is a *grpc.Server with the standard health service and server
// reflection registered, and Surge's interceptors chained, outermost first:
// metrics, panic recovery, deadlines, auth. Register services on it as on
// a *grpc.Server, then Serve.
type Server struct {
	*grpc.Server
	health *health.Server
}

// NewServer returns a Server for cfg. The health service reports the
// overall status ("") as SERVING; each service sets its own with
// SetServing once it is ready.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.DefaultTimeout == 0 {
		cfg.DefaultTimeout = DefaultServerTimeout
	}
	pub, err := newPublicSet(cfg.Public)
	if err != nil {
		return nil, err
	}
	var unary []grpc.UnaryServerInterceptor
	var stream []grpc.StreamServerInterceptor
	var panics *panicCounters
	if cfg.Metrics != nil {
		m := &rpcMetrics{set: cfg.Metrics, prefix: "surge_grpc_server", labels: serverLabels}
		unary = append(unary, m.unaryServer)
		stream = append(stream, m.streamServer)
		panics = &panicCounters{set: cfg.Metrics}
	}
	rec := &recoverer{log: cfg.Logger, panics: panics}
	dl := deadliner{timeout: cfg.DefaultTimeout}
	az := &authorizer{auth: cfg.Auth, public: pub}
	unary = append(unary, rec.unary, dl.unary, az.unary)
	stream = append(stream, rec.stream, dl.stream, az.stream)

	opts := append([]grpc.ServerOption{
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
	}, cfg.Options...)
	s := &Server{Server: grpc.NewServer(opts...), health: health.NewServer()}
	healthpb.RegisterHealthServer(s.Server, s.health)
	reflection.Register(s.Server)
	return s, nil
}

// SetServing sets what the health service reports for service (a full
// service name such as "surge.account.v1.Account", or "" for the server as
// a whole): SERVING or NOT_SERVING. Watchers are told at once.
func (s *Server) SetServing(service string, serving bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus(service, st)
}

// Shutdown marks every service NOT_SERVING (so balancers and probes stop
// sending new calls), then stops the server gracefully, waiting for calls
// in flight until ctx is done; then it closes every connection at once.
func (s *Server) Shutdown(ctx context.Context) {
	s.health.Shutdown()
	done := make(chan struct{})
	go func() {
		s.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.Stop()
		<-done
	}
}

func serverLabels(fullMethod string) string {
	service, method := splitMethod(fullMethod)
	return label("service", service) + "," + label("method", method)
}

func (m *rpcMetrics) unaryServer(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	m.method(info.FullMethod).observe(err, start)
	return resp, err
}

func (m *rpcMetrics) streamServer(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	err := handler(srv, ss)
	m.method(info.FullMethod).observe(err, start)
	return err
}

// panicCounters counts panics per method.
type panicCounters struct {
	set *metrics.Set
}

func (p *panicCounters) inc(fullMethod string) {
	if p != nil {
		// Panics are rare: building the name here costs nothing that matters.
		p.set.GetOrCreateCounter("surge_grpc_server_panics_total{" + serverLabels(fullMethod) + "}").Inc()
	}
}

// errInternal is what a client sees of a panic.
var errInternal = status.Error(codes.Internal, "internal error")

// recoverer turns a handler's panic into codes.Internal, logging it with its
// stack and counting it. The server goes on serving.
type recoverer struct {
	log    *slog.Logger
	panics *panicCounters
}

func (r *recoverer) recovered(fullMethod string, p any, err *error) {
	r.panics.inc(fullMethod)
	r.log.Error("grpc handler panicked", "method", fullMethod, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	*err = errInternal
}

func (r *recoverer) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if p := recover(); p != nil {
			resp = nil
			r.recovered(info.FullMethod, p, &err)
		}
	}()
	return handler(ctx, req)
}

func (r *recoverer) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.recovered(info.FullMethod, p, &err)
		}
	}()
	return handler(srv, ss)
}

// deadliner rejects calls whose deadline has passed and gives unary calls
// without one a default.
type deadliner struct {
	timeout time.Duration // negative: no default
}

var errExpired = status.Error(codes.DeadlineExceeded, "deadline expired before the call started")

func expired(ctx context.Context) bool {
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d) || errors.Is(ctx.Err(), context.DeadlineExceeded)
}

func (d deadliner) unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if expired(ctx) {
		return nil, errExpired
	}
	if _, ok := ctx.Deadline(); !ok && d.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.timeout)
		defer cancel()
	}
	return handler(ctx, req)
}

func (d deadliner) stream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if expired(ss.Context()) {
		return errExpired
	}
	return handler(srv, ss)
}
