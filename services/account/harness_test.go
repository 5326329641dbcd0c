package account

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/surgechat/surge/internal/auth"
	"github.com/surgechat/surge/internal/grpcx"
	"github.com/surgechat/surge/internal/sqldb"
	"github.com/surgechat/surge/internal/sqldb/sqldbtest"
	"github.com/surgechat/surge/services/account/accountpb"
)

// testArgon2 keeps hashing cheap in tests; TestDefaultArgon2 checks the
// real defaults.
var testArgon2 = Argon2Params{Memory: 64, Time: 1, Threads: 1}

// clock is a settable clock for Config.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// env is one account service behind a real gRPC server (grpcx, JWT auth)
// on 127.0.0.1:0, and a client connection to it (grpcx.Dial).
type env struct {
	t      *testing.T
	svc    *Service
	keys   *auth.Keyring
	clock  *clock
	client accountpb.AccountClient
}

func testLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testKeys(t *testing.T) *auth.Keyring {
	t.Helper()
	k, err := auth.NewKeyring("k1", map[string][]byte{"k1": []byte(strings.Repeat("s", auth.MinSecretLen))})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newEnv starts a service on a fresh database of driver. mutate, if not
// nil, adjusts the Config before New.
func newEnv(t *testing.T, driver string, mutate func(*Config)) *env {
	t.Helper()
	e := &env{t: t, keys: testKeys(t), clock: &clock{now: time.Now()}}
	cfg := Config{
		DB:              sqldb.Config{Driver: driver, DSN: sqldbtest.NewDSN(t, driver)},
		Keys:            e.keys,
		Argon2:          testArgon2,
		Now:             e.clock.Now,
		CleanupInterval: -1,
		Logger:          testLogger(),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	svc, err := New(ctx, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.svc = svc

	svcAuth, err := grpcx.ServiceTokenAuth(serviceToken)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := grpcx.NewServer(grpcx.ServerConfig{
		Logger: testLogger(),
		Auth:   grpcx.AnyAuth(svcAuth, grpcx.JWTAuth(e.keys)),
		Public: PublicMethods,
	})
	if err != nil {
		t.Fatal(err)
	}
	Register(srv, svc)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(lis)
	}()
	conn, err := grpcx.Dial(ctx, lis.Addr().String(), grpcx.ClientConfig{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-served
		if err := svc.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	e.client = accountpb.NewAccountClient(conn)
	return e
}

// forEachDriver runs f on SQLite, and on MySQL when SURGE_TEST_MYSQL_DSN
// is set, each with a fresh service.
func forEachDriver(t *testing.T, mutate func(*Config), f func(t *testing.T, e *env)) {
	sqldbtest.ForEachDriver(t, func(t *testing.T, driver string) {
		f(t, newEnv(t, driver, mutate))
	})
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// as returns the call option that sends token as the bearer token.
func as(token string) grpc.CallOption { return grpcx.WithToken(func() string { return token }) }

// from returns ctx with the x-forwarded-for metadata the gateway sets.
func from(ctx context.Context, addr string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "x-forwarded-for", addr)
}

const testPassword = "correct horse battery"

// serviceToken is the token of Surge's own services on the test server.
const serviceToken = "test-service-token-0123456789"

func (e *env) register(name string) *accountpb.User {
	e.t.Helper()
	u, err := e.client.Register(ctxT(e.t), &accountpb.RegisterRequest{Username: name, Password: testPassword})
	if err != nil {
		e.t.Fatalf("Register %s: %v", name, err)
	}
	return u
}

func (e *env) login(name string) *accountpb.Tokens {
	e.t.Helper()
	tok, err := e.client.Login(ctxT(e.t), &accountpb.LoginRequest{Username: name, Password: testPassword})
	if err != nil {
		e.t.Fatalf("Login %s: %v", name, err)
	}
	return tok
}

func (e *env) refresh(token string) (*accountpb.Tokens, error) {
	return e.client.Refresh(ctxT(e.t), &accountpb.RefreshRequest{RefreshToken: token})
}

// wantCode fails t unless err is a status with code and a message that
// contains msg.
func wantCode(t *testing.T, err error, code codes.Code, msg string) {
	t.Helper()
	st, ok := status.FromError(err)
	if err == nil || !ok || st.Code() != code || !strings.Contains(st.Message(), msg) {
		t.Fatalf("got error %v, want %v containing %q", err, code, msg)
	}
}
