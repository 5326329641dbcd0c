package grpcx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// DefaultClientTimeout is the deadline a client gives a unary call whose
// context has none.
const DefaultClientTimeout = 5 * time.Second

// roundRobin is the default service config of every connection: spread
// calls over every address the resolver returns.
const roundRobin = `{"loadBalancingConfig":[{"round_robin":{}}]}`

// ClientConfig configures Dial.
type ClientConfig struct {
	// Timeout is the deadline given to a unary call whose context has
	// none. Zero means DefaultClientTimeout; negative means none. Streams
	// get no default deadline.
	Timeout time.Duration

	// Idempotent reports whether a unary method, by full name such as
	// "/surge.social.v1.Social/GetFriends", may be retried (see Retry).
	// Nil means no method is; see IdempotentMethods.
	Idempotent func(fullMethod string) bool

	// Retry bounds the retries of idempotent methods.
	Retry RetryConfig

	// Breaker configures the circuit breakers, one per method.
	Breaker BreakerConfig

	// Metrics receives surge_grpc_client_requests_total{target,method,code}
	// (one per call as the caller saw it, after retries),
	// surge_grpc_client_duration_seconds{target,method},
	// surge_grpc_client_retries_total{target,method} and
	// surge_grpc_client_breaker_state{target,method} (0 closed, 1
	// half-open, 2 open); method is "pkg.Service/Method". Nil means no
	// metrics. Dial one connection per target per Set: a second one's
	// breaker gauges would not register.
	Metrics *metrics.Set

	// Token, if not nil, is called for every call and its result sent as
	// "authorization: Bearer <token>" (nothing if it returns ""), unless
	// the call carries a token already: WithToken, or authorization in
	// the outgoing metadata.
	Token func() string

	// Logger receives breaker state changes at warn level. Nil means
	// slog.Default().
	Logger *slog.Logger

	// Options are added to Dial's own options, after them.
	Options []grpc.DialOption
}

// Dial returns a connection to target: "dns:///host:port" (or plain
// "host:port"), "static:///host1:port1,host2:port2" for a fixed list, or
// any scheme of a resolver given in Options. Calls are balanced round-robin
// over the resolved addresses, and pass through Surge's interceptors,
// outermost first: metrics, default deadline, token, retries (idempotent
// methods only), circuit breaker. The transport is insecure for now.
//
// Dial does not wait for a connection: it starts connecting and returns;
// calls wait for it (or fail with Unavailable if every address is down).
// ctx only bounds Dial itself. Close the connection when done.
func Dial(ctx context.Context, target string, cfg ClientConfig) (*grpc.ClientConn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultClientTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Retry.setDefaults()
	cfg.Breaker.setDefaults()

	var unary []grpc.UnaryClientInterceptor
	var stream []grpc.StreamClientInterceptor
	var m *rpcMetrics
	if cfg.Metrics != nil {
		m = &rpcMetrics{set: cfg.Metrics, prefix: "surge_grpc_client", labels: clientLabels(target)}
		unary = append(unary, m.unaryClient)
		stream = append(stream, m.streamClient)
	}
	if cfg.Timeout > 0 {
		unary = append(unary, deadlineClient(cfg.Timeout))
	}
	tk := tokenAttacher{token: cfg.Token}
	unary = append(unary, tk.unary)
	stream = append(stream, tk.stream)
	if cfg.Idempotent != nil && cfg.Retry.MaxAttempts > 1 {
		r := &retrier{cfg: cfg.Retry, idempotent: cfg.Idempotent, target: target, set: cfg.Metrics}
		unary = append(unary, r.unary)
	}
	if !cfg.Breaker.Disabled {
		b := newBreakers(target, cfg.Breaker, cfg.Metrics, cfg.Logger)
		unary = append(unary, b.unary)
		stream = append(stream, b.stream)
	}

	opts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithResolvers(staticBuilder{}),
		grpc.WithDefaultServiceConfig(roundRobin),
		grpc.WithChainUnaryInterceptor(unary...),
		grpc.WithChainStreamInterceptor(stream...),
	}, cfg.Options...)
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("grpcx: dial %s: %w", target, err)
	}
	conn.Connect()
	return conn, nil
}

// IdempotentMethods returns a ClientConfig.Idempotent that is true for
// exactly the given full method names.
func IdempotentMethods(fullMethods ...string) func(fullMethod string) bool {
	set := make(map[string]bool, len(fullMethods))
	for _, m := range fullMethods {
		set[m] = true
	}
	return func(fullMethod string) bool { return set[fullMethod] }
}

func clientLabels(target string) func(string) string {
	return func(fullMethod string) string {
		if len(fullMethod) > 0 && fullMethod[0] == '/' {
			fullMethod = fullMethod[1:]
		}
		return label("target", target) + "," + label("method", fullMethod)
	}
}

func (m *rpcMetrics) unaryClient(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	start := time.Now()
	err := invoker(ctx, method, req, reply, cc, opts...)
	m.method(method).observe(err, start)
	return err
}

// streamClient counts a stream when it ends: when creating it fails, or
// RecvMsg returns an error (io.EOF counts as OK).
func (m *rpcMetrics) streamClient(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	start := time.Now()
	mm := m.method(method)
	cs, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		mm.observe(err, start)
		return nil, err
	}
	return &observedStream{ClientStream: cs, mm: mm, start: start}, nil
}

type observedStream struct {
	grpc.ClientStream
	mm    *methodMetrics
	start time.Time
	done  bool
}

func (s *observedStream) RecvMsg(msg any) error {
	err := s.ClientStream.RecvMsg(msg)
	if err != nil && !s.done {
		s.done = true
		if errors.Is(err, io.EOF) {
			s.mm.observe(nil, s.start)
		} else {
			s.mm.observe(err, s.start)
		}
	}
	return err
}

// deadlineClient gives calls without a deadline one of d.
func deadlineClient(d time.Duration) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

// tokenOption is the CallOption of WithToken.
type tokenOption struct {
	grpc.EmptyCallOption
	token func() string
}

// WithToken makes one call (on a connection from Dial) send token() as its
// bearer token, in place of ClientConfig.Token: for example, a gateway
// forwarding the end user's JWT.
func WithToken(token func() string) grpc.CallOption {
	return tokenOption{token: token}
}

// tokenAttacher adds "authorization: Bearer <token>" to outgoing calls that
// carry none.
type tokenAttacher struct {
	token func() string // ClientConfig.Token; may be nil
}

func (t tokenAttacher) attach(ctx context.Context, opts []grpc.CallOption) context.Context {
	token := t.token
	for _, o := range opts {
		if to, ok := o.(tokenOption); ok {
			token = to.token
		}
	}
	if token == nil {
		return ctx
	}
	if md, ok := metadata.FromOutgoingContext(ctx); ok && len(md.Get("authorization")) > 0 {
		return ctx
	}
	tok := token()
	if tok == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
}

func (t tokenAttacher) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	return invoker(t.attach(ctx, opts), method, req, reply, cc, opts...)
}

func (t tokenAttacher) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return streamer(t.attach(ctx, opts), desc, cc, method, opts...)
}
