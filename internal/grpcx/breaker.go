package grpcx

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/sony/gobreaker/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Breaker defaults; see BreakerConfig.
const (
	DefaultBreakerFailures    = 5
	DefaultBreakerOpenTimeout = 5 * time.Second
)

// BreakerConfig configures the circuit breakers of a connection: one per
// method, so a broken method does not cut off its healthy siblings. A
// breaker counts a call as failed when it ends with Unavailable,
// DeadlineExceeded, ResourceExhausted or Internal; any other outcome
// (OK, InvalidArgument, NotFound, PermissionDenied, ...) is the server
// answering and counts as a success, and Canceled (the caller gave up) is
// not counted. After Failures consecutive failures the breaker opens: calls
// fail at once with Unavailable (matching ErrCircuitOpen) without reaching
// the network. After OpenTimeout it lets HalfOpenCalls probes through;
// if they succeed it closes, and a failure opens it again.
type BreakerConfig struct {
	// Disabled turns the breakers off.
	Disabled bool

	// Failures is the number of consecutive failures that opens a breaker.
	// Zero means DefaultBreakerFailures.
	Failures uint32

	// OpenTimeout is how long a breaker stays open before probing. Zero
	// means DefaultBreakerOpenTimeout.
	OpenTimeout time.Duration

	// HalfOpenCalls is how many probes a half-open breaker lets through at
	// once. Zero means 1.
	HalfOpenCalls uint32
}

func (c *BreakerConfig) setDefaults() {
	if c.Failures == 0 {
		c.Failures = DefaultBreakerFailures
	}
	if c.OpenTimeout <= 0 {
		c.OpenTimeout = DefaultBreakerOpenTimeout
	}
	if c.HalfOpenCalls == 0 {
		c.HalfOpenCalls = 1
	}
}

// ErrCircuitOpen matches (with errors.Is) the error of a call that an open
// circuit breaker refused. Its gRPC code is Unavailable; it is never
// retried.
var ErrCircuitOpen = errors.New("grpcx: circuit open")

// openError is the error of a refused call.
type openError struct {
	target, method string
}

func (e *openError) Error() string {
	return "rpc error: code = Unavailable desc = " + e.desc()
}

func (e *openError) desc() string {
	return "circuit open: " + e.target + " " + e.method + " is failing; not calling it"
}

// GRPCStatus gives the error code Unavailable for status.FromError.
func (e *openError) GRPCStatus() *status.Status { return status.New(codes.Unavailable, e.desc()) }

// Is makes the error match ErrCircuitOpen.
func (e *openError) Is(target error) bool { return target == ErrCircuitOpen }

// breakerFailure reports whether a call's outcome counts against the
// breaker.
func breakerFailure(err error) bool {
	switch codeOf(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Internal:
		return true
	}
	return false
}

type breaker = gobreaker.TwoStepCircuitBreaker[struct{}]

// breakers holds a connection's breakers, one per method.
type breakers struct {
	target string
	cfg    BreakerConfig
	set    *metrics.Set // nil: no gauges
	log    *slog.Logger

	mu sync.Mutex
	m  sync.Map // full method -> *breaker; written under mu
}

func newBreakers(target string, cfg BreakerConfig, set *metrics.Set, log *slog.Logger) *breakers {
	return &breakers{target: target, cfg: cfg, set: set, log: log}
}

// get returns the breaker of method, creating it (and its gauge) once.
func (b *breakers) get(method string) *breaker {
	if cb, ok := b.m.Load(method); ok {
		return cb.(*breaker)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if cb, ok := b.m.Load(method); ok {
		return cb.(*breaker)
	}
	cb := gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        b.target + " " + method,
		MaxRequests: b.cfg.HalfOpenCalls,
		Timeout:     b.cfg.OpenTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= b.cfg.Failures },
		IsSuccessful: func(err error) bool {
			return !breakerFailure(err)
		},
		IsExcluded: func(err error) bool { return codeOf(err) == codes.Canceled },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			b.log.Warn("grpc circuit breaker", "target", b.target, "method", method, "from", from.String(), "to", to.String())
		},
	})
	if b.set != nil {
		b.set.GetOrCreateGauge("surge_grpc_client_breaker_state{"+clientLabels(b.target)(method)+"}", func() float64 {
			return float64(cb.State())
		})
	}
	b.m.Store(method, cb)
	return cb
}

func (b *breakers) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	done, err := b.get(method).Allow()
	if err != nil {
		return &openError{target: b.target, method: method}
	}
	err = invoker(ctx, method, req, reply, cc, opts...)
	done(err)
	return err
}

// stream guards creating a stream; what happens on it later is not
// counted.
func (b *breakers) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	done, err := b.get(method).Allow()
	if err != nil {
		return nil, &openError{target: b.target, method: method}
	}
	cs, err := streamer(ctx, desc, cc, method, opts...)
	done(err)
	return cs, err
}
