package grpcx

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	surgemetrics "github.com/surgechat/surge/internal/metrics"
)

// numCodes is the number of gRPC codes, OK (0) to Unauthenticated (16).
const numCodes = int(codes.Unauthenticated) + 1

// rpcMetrics holds the RED metrics of one side (server, or one client
// connection): <prefix>_requests_total{<labels>,code} and
// <prefix>_duration_seconds{<labels>}. Names are built once per method
// (and code) and the handles cached, so recording touches no strings.
type rpcMetrics struct {
	set     *metrics.Set
	prefix  string                         // "surge_grpc_server" or "surge_grpc_client"
	labels  func(fullMethod string) string // label pairs for a method, without braces
	methods sync.Map                       // full method name -> *methodMetrics
}

// methodMetrics are one method's handles.
type methodMetrics struct {
	parent   *rpcMetrics
	labels   string
	duration *metrics.PrometheusHistogram
	codes    [numCodes]atomic.Pointer[metrics.Counter]
}

// method returns the handles of fullMethod, creating them on first use.
func (r *rpcMetrics) method(fullMethod string) *methodMetrics {
	if mm, ok := r.methods.Load(fullMethod); ok {
		return mm.(*methodMetrics)
	}
	labels := r.labels(fullMethod)
	mm := &methodMetrics{
		parent:   r,
		labels:   labels,
		duration: r.set.GetOrCreatePrometheusHistogramExt(r.prefix+"_duration_seconds{"+labels+"}", surgemetrics.LatencyBuckets),
	}
	actual, _ := r.methods.LoadOrStore(fullMethod, mm)
	return actual.(*methodMetrics)
}

// observe records one call that ended with err after running since start.
func (m *methodMetrics) observe(err error, start time.Time) {
	m.duration.UpdateDuration(start)
	m.counter(codeOf(err)).Inc()
}

// counter returns the request counter of code.
func (m *methodMetrics) counter(code codes.Code) *metrics.Counter {
	i := int(code)
	if i < 0 || i >= numCodes {
		i = int(codes.Unknown)
	}
	if c := m.codes[i].Load(); c != nil {
		return c
	}
	c := m.parent.set.GetOrCreateCounter(m.parent.prefix + "_requests_total{" + m.labels + `,code="` + codes.Code(i).String() + `"}`)
	m.codes[i].Store(c)
	return c
}

// codeOf returns the gRPC code that err carries to the peer: its status's
// code, or the code of a context error, or Unknown.
func codeOf(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	if s, ok := status.FromError(err); ok {
		return s.Code()
	}
	return status.FromContextError(err).Code()
}

// splitMethod splits "/pkg.Service/Method" into "pkg.Service" and "Method".
func splitMethod(fullMethod string) (service, method string) {
	s := strings.TrimPrefix(fullMethod, "/")
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return "unknown", s
}

// label formats one Prometheus label pair, escaping the value.
func label(name, value string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return name + `="` + r.Replace(value) + `"`
}
