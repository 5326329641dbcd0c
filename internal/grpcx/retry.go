package grpcx

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// Retry defaults; see RetryConfig.
const (
	DefaultRetryAttempts  = 3
	DefaultRetryBaseDelay = 25 * time.Millisecond
	DefaultRetryMaxDelay  = time.Second
)

// RetryConfig bounds the retries of methods that ClientConfig.Idempotent
// names; other methods, and streams, are never retried. A call is retried
// only when an attempt fails with Unavailable (the server did not take it,
// or went away), or with DeadlineExceeded while the call's own deadline
// has time left (possible only with PerAttemptTimeout), and never when a
// circuit breaker refused it. Before attempt n+1 the caller waits a random
// time between 0 and min(MaxDelay, BaseDelay * 2^(n-1)) ("full jitter"),
// unless that would pass the call's deadline, in which case the last error
// is returned.
type RetryConfig struct {
	// MaxAttempts bounds the attempts of a call, the first included. Zero
	// means DefaultRetryAttempts; 1 turns retries off.
	MaxAttempts int

	// BaseDelay is the backoff cap before the first retry; it doubles per
	// retry. Zero means DefaultRetryBaseDelay.
	BaseDelay time.Duration

	// MaxDelay caps the backoff. Zero means DefaultRetryMaxDelay.
	MaxDelay time.Duration

	// PerAttemptTimeout, if positive, gives each attempt at most this long
	// within the call's deadline, so an attempt that hangs is retried.
	// Zero means attempts share the call's deadline.
	PerAttemptTimeout time.Duration
}

func (c *RetryConfig) setDefaults() {
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultRetryAttempts
	}
	if c.BaseDelay <= 0 {
		c.BaseDelay = DefaultRetryBaseDelay
	}
	if c.MaxDelay <= 0 {
		c.MaxDelay = DefaultRetryMaxDelay
	}
}

// retrier is the retry interceptor.
type retrier struct {
	cfg        RetryConfig
	idempotent func(string) bool
	target     string
	set        *metrics.Set // nil: no retry counter
	counters   sync.Map     // full method -> *metrics.Counter
}

// retried counts a retry of method.
func (r *retrier) retried(method string) {
	if r.set == nil {
		return
	}
	c, ok := r.counters.Load(method)
	if !ok {
		c, _ = r.counters.LoadOrStore(method, r.set.GetOrCreateCounter("surge_grpc_client_retries_total{"+clientLabels(r.target)(method)+"}"))
	}
	c.(*metrics.Counter).Inc()
}

func (r *retrier) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if !r.idempotent(method) {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	var err error
	for attempt := 1; ; attempt++ {
		err = r.attempt(ctx, method, req, reply, cc, invoker, opts)
		if attempt >= r.cfg.MaxAttempts || !r.retryable(ctx, err) {
			return err
		}
		if !r.backoff(ctx, attempt) {
			return err
		}
		r.retried(method)
	}
}

func (r *retrier) attempt(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts []grpc.CallOption) error {
	if r.cfg.PerAttemptTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.cfg.PerAttemptTimeout)
		defer cancel()
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

// retryable reports whether an attempt that failed with err may be
// repeated within ctx.
func (r *retrier) retryable(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil || errors.Is(err, ErrCircuitOpen) {
		return false
	}
	switch codeOf(err) {
	case codes.Unavailable:
		return true
	case codes.DeadlineExceeded:
		return r.cfg.PerAttemptTimeout > 0
	}
	return false
}

// backoff waits before the attempt after attempt. It returns false,
// without waiting, if the wait would pass ctx's deadline, or when ctx ends.
func (r *retrier) backoff(ctx context.Context, attempt int) bool {
	d := rand.N(r.ceiling(attempt) + 1)
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// ceiling returns the longest wait after attempt (from 1):
// min(MaxDelay, BaseDelay * 2^(attempt-1)).
func (r *retrier) ceiling(attempt int) time.Duration {
	c := r.cfg.BaseDelay
	for i := 1; i < attempt && c < r.cfg.MaxDelay; i++ {
		c *= 2
	}
	return min(c, r.cfg.MaxDelay)
}
