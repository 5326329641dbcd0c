package grpcx_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	"github.com/surgechat/surge/internal/auth"
	"github.com/surgechat/surge/internal/grpcx"
)

const serviceSecret = "0123456789abcdef-service-secret"

func newKeyring(t *testing.T) *auth.Keyring {
	t.Helper()
	k, err := auth.NewKeyring("k1", map[string][]byte{"k1": bytes.Repeat([]byte("s"), auth.MinSecretLen)})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func issue(t *testing.T, k *auth.Keyring, user string, roles []string, now time.Time) string {
	t.Helper()
	tok, err := k.Issue(user, roles, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// authServer serves the fake with JWTs and the service token accepted,
// and Login public.
func authServer(t *testing.T, k *auth.Keyring) *testServer {
	t.Helper()
	svc, err := grpcx.ServiceTokenAuth(serviceSecret)
	if err != nil {
		t.Fatal(err)
	}
	return startServer(t, grpcx.ServerConfig{
		Auth:   grpcx.AnyAuth(svc, grpcx.JWTAuth(k)),
		Public: []string{fakeLogin},
	})
}

func bearer(token string) grpc.CallOption {
	return grpcx.WithToken(func() string { return token })
}

func TestAuth(t *testing.T) {
	k := newKeyring(t)
	ts := authServer(t, k)
	conn := dial(t, ts.addr, grpcx.ClientConfig{})
	alice := issue(t, k, "alice", []string{"user"}, time.Now())

	// f calls method with opts and checks the code, a fragment of the
	// message, and the principal the handler saw.
	f := func(what, method string, want codes.Code, msg string, wantP *grpcx.Principal, opts ...grpc.CallOption) {
		t.Helper()
		before := ts.fake.calls.Load()
		err := call(conn, method, "ok", opts...)
		wantCode(t, err, want, what)
		if err != nil && !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: %v, want a message with %q", what, err, msg)
		}
		reached := ts.fake.calls.Load() > before
		if reached != (want == codes.OK) {
			t.Errorf("%s: the handler ran: %v", what, reached)
		}
		if !reached {
			return
		}
		p, ok := ts.fake.last()
		if (wantP != nil) != ok || wantP != nil && (p.User != wantP.User || p.Service != wantP.Service || !slices.Equal(p.Roles, wantP.Roles)) {
			t.Errorf("%s: handler saw principal %+v (%v), want %+v", what, p, ok, wantP)
		}
	}
	f("public without a token", fakeLogin, codes.OK, "", nil)
	f("public with a bad token", fakeLogin, codes.OK, "", nil, bearer("garbage"))
	f("protected without a token", fakeCheck, codes.Unauthenticated, "missing token", nil)
	f("protected with a bad token", fakeCheck, codes.Unauthenticated, "invalid token", nil, bearer("garbage"))
	f("valid JWT", fakeCheck, codes.OK, "", &grpcx.Principal{User: "alice", Roles: []string{"user"}}, bearer(alice))
	f("expired JWT", fakeCheck, codes.Unauthenticated, "token expired", nil,
		bearer(issue(t, k, "alice", nil, time.Now().Add(-2*time.Hour))))
	f("service token", fakeCheck, codes.OK, "", &grpcx.Principal{Service: true, Roles: []string{grpcx.RoleService}}, bearer(serviceSecret))
	f("wrong service token", fakeCheck, codes.Unauthenticated, "invalid token", nil, bearer(serviceSecret+"x"))

	// The scheme must be Bearer, and there must be one value.
	md := func(vals ...string) context.Context {
		ctx := context.Background()
		for _, v := range vals {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", v)
		}
		return ctx
	}
	g := func(what string, ctx context.Context, want codes.Code, msg string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		err := callCtx(ctx, conn, fakeCheck, "ok")
		wantCode(t, err, want, what)
		if err != nil && !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: %v, want a message with %q", what, err, msg)
		}
	}
	g("Basic scheme", md("Basic "+alice), codes.Unauthenticated, "malformed")
	g("bare token", md(alice), codes.Unauthenticated, "malformed")
	g("lower-case bearer", md("bearer "+alice), codes.OK, "")
	g("two values", md("Bearer "+alice, "Bearer "+alice), codes.Unauthenticated, "several")

	// Streams are authenticated the same way.
	wantCode(t, watch(conn, "ok"), codes.Unauthenticated, "Watch without a token")
	wantCode(t, watch(conn, "ok", bearer(alice)), codes.OK, "Watch with a JWT")
	if p, ok := ts.fake.last(); !ok || p.User != "alice" {
		t.Errorf("Watch handler saw %+v, %v", p, ok)
	}
}

func TestRequireRole(t *testing.T) {
	k := newKeyring(t)
	ts := authServer(t, k)
	conn := dial(t, ts.addr, grpcx.ClientConfig{})
	admin := issue(t, k, "root", []string{"user", "operator"}, time.Now())
	user := issue(t, k, "bob", []string{"user"}, time.Now())

	wantCode(t, call(conn, fakeCheck, "role:operator", bearer(admin)), codes.OK, "operator")
	wantCode(t, call(conn, fakeCheck, "role:operator", bearer(user)), codes.PermissionDenied, "user asking for operator")
	wantCode(t, call(conn, fakeCheck, "role:service", bearer(serviceSecret)), codes.OK, "service")
	wantCode(t, call(conn, fakeLogin, "role:user"), codes.Unauthenticated, "public method, no principal")

	ctx := grpcx.WithPrincipal(context.Background(), grpcx.Principal{User: "u", Roles: []string{"member"}})
	if err := grpcx.RequireRole(ctx, "owner", "member"); err != nil {
		t.Errorf("RequireRole(owner or member): %v", err)
	}
	if err := grpcx.RequireRole(ctx); err != nil {
		t.Errorf("RequireRole(): %v", err)
	}
	err := grpcx.RequireRole(ctx, "owner", "admin")
	wantCode(t, err, codes.PermissionDenied, "RequireRole(owner or admin)")
	if err == nil || !strings.Contains(err.Error(), "owner or admin") {
		t.Errorf("RequireRole: %v", err)
	}
	wantCode(t, grpcx.RequireRole(context.Background()), codes.Unauthenticated, "RequireRole without a principal")
}

// TestClientToken: ClientConfig.Token is sent on every call; WithToken and
// explicit metadata override it; "" sends nothing.
func TestClientToken(t *testing.T) {
	k := newKeyring(t)
	ts := authServer(t, k)
	alice := issue(t, k, "alice", nil, time.Now())
	conn := dial(t, ts.addr, grpcx.ClientConfig{Token: func() string { return serviceSecret }})

	wantCode(t, call(conn, fakeCheck, "ok"), codes.OK, "service token from the config")
	if p, _ := ts.fake.last(); !p.Service {
		t.Errorf("principal %+v, want the service", p)
	}
	wantCode(t, call(conn, fakeCheck, "ok", bearer(alice)), codes.OK, "WithToken")
	if p, _ := ts.fake.last(); p.User != "alice" || p.Service {
		t.Errorf("principal %+v, want alice", p)
	}
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+alice), 10*time.Second)
	defer cancel()
	wantCode(t, callCtx(ctx, conn, fakeCheck, "ok"), codes.OK, "outgoing metadata")
	if p, _ := ts.fake.last(); p.User != "alice" {
		t.Errorf("principal %+v, want alice", p)
	}
	wantCode(t, call(conn, fakeCheck, "ok", bearer("")), codes.Unauthenticated, "empty WithToken")
	wantCode(t, watch(conn, "ok"), codes.OK, "Watch with the config's token")
}

func TestServiceTokenAuthShort(t *testing.T) {
	if _, err := grpcx.ServiceTokenAuth("short"); err == nil {
		t.Error("a 5-byte service token was accepted")
	}
}
