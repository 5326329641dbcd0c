package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vm "github.com/VictoriaMetrics/metrics"

	"github.com/surgechat/surge/internal/metrics"
	"github.com/surgechat/surge/services/account/accountpb"
	"github.com/surgechat/surge/services/message/messagepb"
	"github.com/surgechat/surge/services/social/socialpb"
)

// Defaults of Config's zero values.
const (
	DefaultAddr         = "127.0.0.1:8080"
	DefaultMaxBodyBytes = 64 << 10
	DefaultTimeout      = 10 * time.Second
)

// Config configures a Gateway. Every zero value means the default stated
// beside it; no field is required.
type Config struct {
	// Addr is where Run listens. "" means DefaultAddr.
	Addr string

	// The downstream services. A nil client makes its routes answer 503
	// UNAVAILABLE "<name> service not configured". Dial them without a
	// service token, or with internal/grpcx, whose per-call token option
	// the gateway uses so that a request without an Authorization header
	// never travels with the connection's own token.
	Account accountpb.AccountClient
	Social  socialpb.SocialClient
	Message messagepb.MessageClient

	// AllowedOrigins are the browser origins ("https://app.example.com")
	// allowed to call the API cross-origin; "*" allows any. Empty means no
	// CORS headers at all (same-origin and non-browser clients only).
	AllowedOrigins []string

	// MaxBodyBytes bounds a request body; a larger one gets 413. Zero
	// means DefaultMaxBodyBytes (64 KiB).
	MaxBodyBytes int64

	// Timeout is the deadline of the downstream call of one request. Zero
	// means DefaultTimeout (10 s).
	Timeout time.Duration

	// TrustForwardedFor takes the client's address from the last entry of
	// the request's X-Forwarded-For header, the one the proxy in front of
	// the gateway appended. Turn it on only behind exactly one such proxy.
	// False means the connection's peer address.
	TrustForwardedFor bool

	// Logger receives downstream failures (rate-limited) and, at debug
	// level, one line per request. Nil means slog.Default().
	Logger *slog.Logger

	// Metrics receives surge_http_requests_total{route,method,code} and
	// surge_http_request_duration_seconds{route}. Nil means a private set.
	Metrics *vm.Set
}

func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Metrics == nil {
		c.Metrics = vm.NewSet()
	}
}

func (c *Config) validate() error {
	if c.MaxBodyBytes < 0 {
		return fmt.Errorf("MaxBodyBytes %d is negative", c.MaxBodyBytes)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("timeout %v is negative", c.Timeout)
	}
	return nil
}

// Gateway is the public HTTP JSON API. It is an http.Handler, safe for
// concurrent use.
type Gateway struct {
	cfg       Config
	log       *slog.Logger
	mux       *http.ServeMux
	cors      *cors // nil: no CORS headers
	unmatched *routeMetrics
	preflight *routeMetrics
	failures  rateLimited
}

// New checks cfg and builds the routes.
func New(cfg Config) (*Gateway, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g := &Gateway{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux()}
	if len(cfg.AllowedOrigins) > 0 {
		c, err := newCORS(cfg.AllowedOrigins)
		if err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
		g.cors = c
	}
	hists := make(map[string]*vm.PrometheusHistogram)
	newMetrics := func(route string) *routeMetrics {
		h, ok := hists[route]
		if !ok {
			h = cfg.Metrics.GetOrCreatePrometheusHistogramExt(
				`surge_http_request_duration_seconds{route="`+route+`"}`, metrics.LatencyBuckets)
			hists[route] = h
		}
		return &routeMetrics{set: cfg.Metrics, route: route, duration: h}
	}
	for _, rt := range g.routes() {
		if err := rt.check(); err != nil {
			return nil, fmt.Errorf("gateway: route %s: %w", rt.pattern, err)
		}
		_, path, _ := strings.Cut(rt.pattern, " ")
		g.mux.Handle(rt.pattern, g.handler(rt, newMetrics(path)))
	}
	health := newMetrics("/healthz")
	g.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
		health.observe(r.Method, http.StatusOK, time.Since(start))
	})
	g.unmatched = newMetrics("unmatched")
	g.preflight = newMetrics("preflight")
	return g, nil
}

// Handler returns the gateway as an http.Handler, to mount on a server of
// the caller's own.
func (g *Gateway) Handler() http.Handler { return g }

// Run listens on Config.Addr and serves until ctx ends; see Serve.
func (g *Gateway) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", g.cfg.Addr)
	if err != nil {
		return fmt.Errorf("gateway: listen: %w", err)
	}
	return g.Serve(ctx, ln)
}

// Serve serves HTTP on ln until ctx ends, then stops accepting, lets
// requests in flight finish for up to 5 s, and returns nil. It closes ln.
func (g *Gateway) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           g,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      g.cfg.Timeout + 10*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("gateway: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("gateway: serve: %w", err)
	}
	return nil
}

// ServeHTTP answers CORS preflights, then routes r. Paths and methods
// without a route get a JSON 404 or 405 (with Allow).
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if g.cors != nil {
		start := time.Now()
		if g.cors.handle(w, r) {
			g.preflight.observe(r.Method, http.StatusNoContent, time.Since(start))
			return
		}
	}
	h, pattern := g.mux.Handler(r)
	if pattern != "" {
		g.mux.ServeHTTP(w, r) // again, so that r gets its path values
		return
	}
	start := time.Now()
	// Let the mux decide between 404 and 405 (and compute Allow), then
	// answer in JSON.
	c := &captureWriter{header: make(http.Header)}
	h.ServeHTTP(c, r)
	var e *apiError
	if c.code == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", c.header.Get("Allow"))
		e = &apiError{status: c.code, code: codeMethodNotAllowed,
			msg: fmt.Sprintf("method %s not allowed on %s; allowed: %s", r.Method, r.URL.Path, c.header.Get("Allow"))}
	} else {
		e = &apiError{status: http.StatusNotFound, code: "NOT_FOUND", msg: "no route for " + r.URL.Path}
	}
	code := writeError(w, e)
	g.unmatched.observe(r.Method, code, time.Since(start))
}

// captureWriter records the status a handler writes and discards its body.
type captureWriter struct {
	header http.Header
	code   int
}

func (c *captureWriter) Header() http.Header { return c.header }
func (c *captureWriter) WriteHeader(code int) {
	if c.code == 0 {
		c.code = code
	}
}
func (c *captureWriter) Write(b []byte) (int, error) {
	c.WriteHeader(http.StatusOK)
	return len(b), nil
}

// clientAddr is the address the gateway forwards as "x-forwarded-for".
func (g *Gateway) clientAddr(r *http.Request) string {
	if g.cfg.TrustForwardedFor {
		if v := r.Header.Values("X-Forwarded-For"); len(v) > 0 {
			last := v[len(v)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			if a, err := netip.ParseAddr(strings.TrimSpace(last)); err == nil {
				return a.Unmap().String()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// routeMetrics are the RED metrics of one route. The counter names are
// built once per (method, code), on first use.
type routeMetrics struct {
	set      *vm.Set
	route    string
	duration *vm.PrometheusHistogram
	counters sync.Map // counterKey -> *vm.Counter
}

type counterKey struct {
	method string
	code   int
}

func (m *routeMetrics) observe(method string, code int, d time.Duration) {
	m.duration.Update(d.Seconds())
	k := counterKey{methodLabel(method), code}
	c, ok := m.counters.Load(k)
	if !ok {
		c, _ = m.counters.LoadOrStore(k, m.set.GetOrCreateCounter(fmt.Sprintf(
			`surge_http_requests_total{route="%s",method="%s",code="%d"}`, m.route, k.method, code)))
	}
	c.(*vm.Counter).Inc()
}

// methodLabel bounds the method label's values: clients choose methods.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

// rateLimited lets through one log line a second and counts the rest.
type rateLimited struct {
	next       atomic.Int64 // unix nanoseconds
	suppressed atomic.Int64
}

// allow reports whether to log now, and how many lines were suppressed
// since the last one.
func (l *rateLimited) allow(now time.Time) (bool, int64) {
	n := l.next.Load()
	if now.UnixNano() < n || !l.next.CompareAndSwap(n, now.Add(time.Second).UnixNano()) {
		l.suppressed.Add(1)
		return false, 0
	}
	return true, l.suppressed.Swap(0)
}
