// Package grpcx is the gRPC plumbing that every Surge service and client
// shares. NewServer returns a *grpc.Server wrapper with the standard health
// service and server reflection registered and interceptors chained for RED
// metrics, panic recovery (codes.Internal), default and expired deadlines,
// and bearer-token auth (JWTs from internal/auth, or a shared service token)
// that puts the caller's Principal in the handler's context, except on
// methods marked public. Dial returns a *grpc.ClientConn that balances
// round-robin over a "dns:///" or "static:///a:1,b:2" target, gives calls a
// default deadline, attaches a bearer token, retries idempotent methods on
// Unavailable with jittered exponential backoff, and wraps each method in a
// circuit breaker (github.com/sony/gobreaker/v2). Servers and connections
// are safe for concurrent use; the interceptors never block beyond the
// call itself and the retry backoff, which honours the call's context.
package grpcx
