package grpcx

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/surgechat/surge/internal/auth"
)

// RoleService is the role of a caller that presented the service token.
const RoleService = "service"

// MinServiceTokenLen is the shortest secret ServiceTokenAuth accepts.
const MinServiceTokenLen = 16

// Principal is the authenticated caller of an RPC.
type Principal struct {
	User    string   // the user id (a JWT's subject); empty for a service
	Roles   []string // the caller's roles; a service has RoleService
	Service bool     // the caller presented the service token
}

// HasRole reports whether p has role.
func (p Principal) HasRole(role string) bool { return slices.Contains(p.Roles, role) }

type principalKey struct{}

// WithPrincipal returns ctx carrying p, as the auth interceptor passes it
// to handlers. Tests of handlers use it to fake a caller.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the caller of the RPC whose context is ctx. It is
// false for public methods, which skip authentication.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// RequireRole returns nil if the caller has at least one of roles (or, with
// no roles given, if there is a caller). Otherwise it returns a status
// error: Unauthenticated without a caller, PermissionDenied without the
// role. Handlers return it as it is.
func RequireRole(ctx context.Context, roles ...string) error {
	p, ok := PrincipalFrom(ctx)
	if !ok {
		return status.Error(codes.Unauthenticated, "authentication required")
	}
	if len(roles) == 0 || slices.ContainsFunc(roles, p.HasRole) {
		return nil
	}
	return status.Errorf(codes.PermissionDenied, "permission denied: requires role %s", strings.Join(roles, " or "))
}

// Authenticator turns the bearer token of a call into its Principal.
// Errors that carry a gRPC status reach the client as they are; any other
// error becomes Unauthenticated with the error's text, so it must not
// reveal secrets.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (Principal, error)
}

// AuthenticatorFunc adapts a function to Authenticator.
type AuthenticatorFunc func(ctx context.Context, token string) (Principal, error)

// Authenticate calls f.
func (f AuthenticatorFunc) Authenticate(ctx context.Context, token string) (Principal, error) {
	return f(ctx, token)
}

// JWTAuth verifies Surge access tokens with k (see auth.Keyring.Verify) as
// of the current time, giving Principal{User: subject, Roles: roles}.
func JWTAuth(k *auth.Keyring) Authenticator {
	return AuthenticatorFunc(func(_ context.Context, token string) (Principal, error) {
		c, err := k.Verify(token, time.Now())
		switch {
		case err == nil:
			return Principal{User: c.Subject, Roles: slices.Clone(c.Roles)}, nil
		case errors.Is(err, auth.ErrTokenExpired):
			return Principal{}, status.Error(codes.Unauthenticated, "token expired: refresh it")
		case errors.Is(err, auth.ErrUnknownKey):
			return Principal{}, status.Error(codes.Unauthenticated, "invalid token: unknown signing key")
		default:
			return Principal{}, status.Error(codes.Unauthenticated, "invalid token")
		}
	})
}

// ServiceTokenAuth accepts exactly secret, a token shared by Surge's own
// services, giving Principal{Service: true, Roles: [RoleService]}. The
// comparison takes the same time whatever the token. secret must be at
// least MinServiceTokenLen bytes.
func ServiceTokenAuth(secret string) (Authenticator, error) {
	if len(secret) < MinServiceTokenLen {
		return nil, fmt.Errorf("grpcx: service token of %d bytes, want at least %d", len(secret), MinServiceTokenLen)
	}
	want := sha256.Sum256([]byte(secret))
	return AuthenticatorFunc(func(_ context.Context, token string) (Principal, error) {
		got := sha256.Sum256([]byte(token))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			return Principal{}, status.Error(codes.Unauthenticated, "invalid token")
		}
		return Principal{Service: true, Roles: []string{RoleService}}, nil
	}), nil
}

// AnyAuth tries each authenticator in turn and returns the first
// principal; if all fail, the last one's error. Nil entries are skipped.
// Put ServiceTokenAuth (cheap) before JWTAuth.
func AnyAuth(auths ...Authenticator) Authenticator {
	auths = slices.DeleteFunc(slices.Clone(auths), func(a Authenticator) bool { return a == nil })
	return AuthenticatorFunc(func(ctx context.Context, token string) (Principal, error) {
		err := error(status.Error(codes.Unauthenticated, "no authenticator"))
		for _, a := range auths {
			var p Principal
			if p, err = a.Authenticate(ctx, token); err == nil {
				return p, nil
			}
		}
		return Principal{}, err
	})
}

// publicSet matches the methods that need no token.
type publicSet struct {
	methods  map[string]bool
	prefixes []string
}

// alwaysPublic are the standard services every Server registers.
var alwaysPublic = []string{
	"/grpc.health.v1.Health/",
	"/grpc.reflection.v1.ServerReflection/",
	"/grpc.reflection.v1alpha.ServerReflection/",
}

func newPublicSet(names []string) (*publicSet, error) {
	p := &publicSet{methods: make(map[string]bool)}
	for _, n := range append(slices.Clone(alwaysPublic), names...) {
		switch {
		case !strings.HasPrefix(n, "/") || strings.Count(n, "/") != 2:
			return nil, fmt.Errorf("grpcx: public method %q: want \"/pkg.Service/Method\" or \"/pkg.Service/\"", n)
		case strings.HasSuffix(n, "/"):
			p.prefixes = append(p.prefixes, n)
		default:
			p.methods[n] = true
		}
	}
	return p, nil
}

func (p *publicSet) has(fullMethod string) bool {
	if p.methods[fullMethod] {
		return true
	}
	for _, pre := range p.prefixes {
		if strings.HasPrefix(fullMethod, pre) {
			return true
		}
	}
	return false
}

// authorizer is the auth interceptor.
type authorizer struct {
	auth   Authenticator // nil: reject every non-public call
	public *publicSet
}

// authenticate returns ctx with the caller's Principal, or a status error.
func (a *authorizer) authenticate(ctx context.Context, fullMethod string) (context.Context, error) {
	if a.public.has(fullMethod) {
		return ctx, nil
	}
	token, err := bearerToken(ctx)
	if err != nil {
		return nil, err
	}
	if a.auth == nil {
		return nil, status.Error(codes.Unauthenticated, "server accepts no tokens")
	}
	p, err := a.auth.Authenticate(ctx, token)
	if err != nil {
		if s, ok := status.FromError(err); ok {
			return nil, s.Err()
		}
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	return WithPrincipal(ctx, p), nil
}

// bearerToken returns the token of the incoming "authorization: Bearer
// <token>" metadata.
func bearerToken(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	switch len(vals) {
	case 0:
		return "", status.Error(codes.Unauthenticated, `missing token: send metadata "authorization: Bearer <token>"`)
	case 1:
	default:
		return "", status.Error(codes.Unauthenticated, "several authorization metadata values")
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(vals[0]), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", status.Error(codes.Unauthenticated, `malformed authorization metadata: want "Bearer <token>"`)
	}
	return token, nil
}

func (a *authorizer) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, err := a.authenticate(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (a *authorizer) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, err := a.authenticate(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	if ctx != ss.Context() {
		ss = &ctxStream{ServerStream: ss, ctx: ctx}
	}
	return handler(srv, ss)
}

// ctxStream is a ServerStream with another context.
type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *ctxStream) Context() context.Context { return s.ctx }
