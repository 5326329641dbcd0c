package social_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/surgechat/surge/internal/auth"
	"github.com/surgechat/surge/internal/grpcx"
	"github.com/surgechat/surge/internal/sqldb"
	"github.com/surgechat/surge/internal/sqldb/sqldbtest"
	"github.com/surgechat/surge/services/social"
	"github.com/surgechat/surge/services/social/socialpb"
)

// Every test runs on both database drivers (MySQL when
// SURGE_TEST_MYSQL_DSN is set) against a real gRPC server on 127.0.0.1:0,
// through real client connections (grpcx.Dial) carrying real tokens: a
// JWT per user from one keyring, or the service token.

const serviceToken = "social-test-service-token-0123456789"

// env is one running service and what its tests need to reach it.
type env struct {
	t       *testing.T
	svc     *social.Service
	addr    string
	keys    *auth.Keyring
	metrics *vm.Set
	changes *changeLog

	mu    sync.Mutex
	conns map[string]socialpb.SocialClient
}

// changeLog records the OnGroupChange calls.
type changeLog struct {
	mu    sync.Mutex
	calls map[string][]int64
	fail  error // returned by every call if set
}

func (c *changeLog) record(_ context.Context, group string, version int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[group] = append(c.calls[group], version)
	return c.fail
}

// failWith makes every later call return err.
func (c *changeLog) failWith(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fail = err
}

// of returns the versions OnGroupChange was told for group, in call order.
func (c *changeLog) of(group string) []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.calls[group])
}

// forEachDriver runs f on a fresh service per driver; mod, if not nil,
// adjusts the Config first.
func forEachDriver(t *testing.T, mod func(*social.Config), f func(t *testing.T, e *env)) {
	t.Helper()
	sqldbtest.ForEachDriver(t, func(t *testing.T, driver string) {
		f(t, newEnv(t, driver, mod))
	})
}

func newEnv(t *testing.T, driver string, mod func(*social.Config)) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	keys, err := auth.NewKeyring("k1", map[string][]byte{"k1": bytes.Repeat([]byte("s"), auth.MinSecretLen)})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{
		t:       t,
		keys:    keys,
		metrics: vm.NewSet(),
		changes: &changeLog{calls: map[string][]int64{}},
		conns:   map[string]socialpb.SocialClient{},
	}
	cfg := social.Config{
		DB:            dbConfig(t, driver),
		OnGroupChange: e.changes.record,
		Metrics:       e.metrics,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if mod != nil {
		mod(&cfg)
	}
	e.svc, err = social.New(ctx, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { e.svc.Close() })

	svcAuth, err := grpcx.ServiceTokenAuth(serviceToken)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := grpcx.NewServer(grpcx.ServerConfig{Auth: grpcx.AnyAuth(svcAuth, grpcx.JWTAuth(keys))})
	if err != nil {
		t.Fatal(err)
	}
	e.svc.Register(srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = lis.Addr().String()
	go srv.Serve(lis)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return e
}

// dial returns a client whose calls carry token ("" for none).
func (e *env) dial(token string) socialpb.SocialClient {
	e.t.Helper()
	conn, err := grpcx.Dial(context.Background(), e.addr, grpcx.ClientConfig{
		Token:   func() string { return token },
		Timeout: 30 * time.Second,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	return socialpb.NewSocialClient(conn)
}

// as returns a client acting as user with roles, through its own
// connection and a JWT issued for it.
func (e *env) as(user string, roles ...string) socialpb.SocialClient {
	e.t.Helper()
	key := user + "/" + strings.Join(roles, ",")
	e.mu.Lock()
	defer e.mu.Unlock()
	if c, ok := e.conns[key]; ok {
		return c
	}
	tok, err := e.keys.Issue(user, append([]string{"user"}, roles...), time.Hour, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	c := e.dial(tok)
	e.conns[key] = c
	return c
}

// service returns a client that presents the service token.
func (e *env) service() socialpb.SocialClient {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if c, ok := e.conns["\x00service"]; ok {
		return c
	}
	c := e.dial(serviceToken)
	e.conns["\x00service"] = c
	return c
}

// metric returns the value of a counter in the service's metric set.
func (e *env) metric(name string) string {
	var b bytes.Buffer
	e.metrics.WritePrometheus(&b)
	for line := range strings.Lines(b.String()) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			return v
		}
	}
	return ""
}

// wantCode fails t unless err has code and, if msg is not empty, a message
// containing msg.
func wantCode(t *testing.T, err error, code codes.Code, msg string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code || !strings.Contains(st.Message(), msg) {
		t.Fatalf("got %v (%q), want %v containing %q", st.Code(), st.Message(), code, msg)
	}
}

// must(v, err)(t) fails t if err is not nil, and returns v.
func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return v
	}
}

var bg = context.Background()

// befriend makes a and b friends.
func (e *env) befriend(t *testing.T, a, b string) {
	t.Helper()
	must(e.as(a).SendFriendRequest(bg, &socialpb.FriendRequestRequest{To: b}))(t)
	must(e.as(b).AcceptFriendRequest(bg, &socialpb.UserRef{User: a}))(t)
}

// friends returns user's friends, all pages of size 2.
func (e *env) friends(t *testing.T, user string) []string {
	t.Helper()
	var out []string
	token := ""
	for {
		r := must(e.as(user).ListFriends(bg, &socialpb.PageRequest{PageSize: 2, PageToken: token}))(t)
		for _, f := range r.Friends {
			out = append(out, f.User)
		}
		if token = r.NextPageToken; token == "" {
			return out
		}
	}
}

// TestConfigValidation: New refuses a Config it cannot honour.
func TestConfigValidation(t *testing.T) {
	f := func(mod func(*social.Config), want string) {
		t.Helper()
		cfg := social.Config{DB: dbConfig(t, sqldb.DriverSQLite)}
		mod(&cfg)
		_, err := social.New(bg, cfg)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New: %v, want an error containing %q", err, want)
		}
	}
	f(func(c *social.Config) { c.MaxGroupSize = -1 }, "MaxGroupSize")
	f(func(c *social.Config) { c.DirectPolicy = "nobody" }, "DirectPolicy")
	f(func(c *social.Config) { c.DB.Driver = "" }, "Driver")
}

// TestAuthRequired: calls without a token are refused by the server; a
// service principal cannot act as a user.
func TestAuthRequired(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		_, err := e.dial("").ListFriends(bg, &socialpb.PageRequest{})
		wantCode(t, err, codes.Unauthenticated, "")
		_, err = e.dial("not-a-token").ListFriends(bg, &socialpb.PageRequest{})
		wantCode(t, err, codes.Unauthenticated, "")
		_, err = e.service().SendFriendRequest(bg, &socialpb.FriendRequestRequest{To: "bob"})
		wantCode(t, err, codes.PermissionDenied, "user token")
		_, err = e.service().CreateGroup(bg, &socialpb.CreateGroupRequest{Name: "g"})
		wantCode(t, err, codes.PermissionDenied, "user token")
	})
}

// dbConfig returns the Config of a fresh database of driver.
func dbConfig(t *testing.T, driver string) sqldb.Config {
	return sqldb.Config{Driver: driver, DSN: sqldbtest.NewDSN(t, driver)}
}

// TestInternalErrorHidden: a database failure reaches the client as
// Internal "internal error", without the driver's text, and is counted.
func TestInternalErrorHidden(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		e.svc.Close() // the database is gone; the server still serves
		_, err := e.as("alice").ListBlocked(bg, &socialpb.Empty{})
		wantCode(t, err, codes.Internal, "internal error")
		if st, _ := status.FromError(err); st.Message() != "internal error" {
			t.Errorf("message %q leaks detail", st.Message())
		}
		_, err = e.as("alice").Block(bg, &socialpb.UserRef{User: "bob"})
		wantCode(t, err, codes.Internal, "internal error")
		if got := e.metric("surge_social_internal_errors_total"); got != "2" {
			t.Errorf("internal errors counted: %q, want 2", got)
		}
	})
}
