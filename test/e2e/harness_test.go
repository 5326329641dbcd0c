// Package e2e runs the real surge binary and talks to it with real
// WebSocket clients on loopback ports.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/surgechat/surge/client"
	"github.com/surgechat/surge/internal/testutil"
)

var surgeBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "surge-e2e-")
	if err != nil {
		panic(err)
	}
	surgeBin = filepath.Join(dir, "surge")
	build := exec.Command("go", "build", "-o", surgeBin, "github.com/surgechat/surge/cmd/surge")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build surge:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is one running `surge up`.
type server struct {
	t        *testing.T
	dataDir  string
	ws       string    // host:port
	http     string    // host:port
	plane    string    // host:port of the shard's delivery plane
	gateway  string    // host:port of the HTTP API
	grpc     [3]string // host:port of the account, social and message services
	args     []string
	wrap     []string // command and arguments to run surge under, such as prlimit
	edgeOnly bool     // run `surge edge` instead of `surge up`
	cmd      *exec.Cmd
	log      *testutil.SyncBuffer
	exited   chan struct{}

	shardOnly bool // run `surge shard` instead of `surge up`
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServer starts surge up on a fresh data dir and waits until ready.
// freePort cannot hold a port until surge binds it, and surge's own
// outgoing connections (to its embedded broker, say) may take one first:
// a start that fails on a port in use is retried on fresh ports.
func startServer(t *testing.T, extra ...string) *server {
	t.Helper()
	for attempt := 1; ; attempt++ {
		s := &server{t: t, dataDir: t.TempDir(), ws: freePort(t), http: freePort(t), plane: freePort(t),
			gateway: freePort(t), grpc: [3]string{freePort(t), freePort(t), freePort(t)}, args: extra}
		err := s.launch()
		if err == nil {
			t.Cleanup(s.stop)
			return s
		}
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatal(err)
		}
		t.Logf("start %d: a port was taken; retrying on others", attempt)
	}
}

func (s *server) start() {
	s.t.Helper()
	if err := s.launch(); err != nil {
		s.t.Fatal(err)
	}
}

// launch starts the process and waits until it is ready, or returns why
// not (the process is gone then).
func (s *server) launch() error {
	args := []string{"up", "--data-dir", s.dataDir, "--ws", s.ws, "--http", s.http,
		"--kafka-port", "-1", "--plane", s.plane, "--log-level", "warn", "--gateway", s.gateway,
		"--grpc-account", s.grpc[0], "--grpc-social", s.grpc[1], "--grpc-message", s.grpc[2]}
	if s.edgeOnly {
		args = []string{"edge", "--data-dir", s.dataDir, "--ws", s.ws, "--http", s.http, "--log-level", "warn"}
	}
	if s.shardOnly {
		args = []string{"shard", "--data-dir", s.dataDir, "--http", s.http, "--plane", s.plane, "--log-level", "warn"}
	}
	args = append(args, s.args...)
	argv := append(append(append([]string(nil), s.wrap...), surgeBin), args...)
	s.cmd = exec.Command(argv[0], argv[1:]...)
	s.log = &testutil.SyncBuffer{}
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.exited = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-s.exited:
			return fmt.Errorf("surge exited early:\n%s", s.log.String())
		default:
		}
		if resp, err := http.Get("http://" + s.http + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			s.kill()
			return fmt.Errorf("timed out after 30s waiting for surge ready:\n%s", s.log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kill stops the process with SIGKILL.
func (s *server) kill() {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
}

func (s *server) stop() {
	if s.cmd == nil || s.cmd.ProcessState != nil {
		return
	}
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		s.t.Errorf("surge did not stop on SIGTERM; killing\n%s", s.log.String())
		s.kill()
	}
	if s.t.Failed() {
		s.t.Logf("surge log:\n%s", s.log.String())
	}
}

func (s *server) url() string { return "ws://" + s.ws + "/ws" }

// token runs `surge token` for user.
func (s *server) token(user string) string {
	s.t.Helper()
	out, err := exec.Command(surgeBin, "token", "--data-dir", s.dataDir, "--user", user).Output()
	if err != nil {
		s.t.Fatalf("surge token: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// inbox collects what a client hands out.
type inbox struct {
	mu   sync.Mutex
	msgs []client.Msg
}

func (in *inbox) add(m client.Msg) {
	in.mu.Lock()
	in.msgs = append(in.msgs, m)
	in.mu.Unlock()
}

func (in *inbox) list() []client.Msg {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]client.Msg(nil), in.msgs...)
}

func (in *inbox) len() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.msgs)
}

// dial connects user and collects its inbox from after.
func (s *server) dial(user string, after uint64) (*client.Client, *inbox) {
	s.t.Helper()
	in := &inbox{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, s.url(), s.token(user), client.Options{After: after, OnMessage: in.add})
	if err != nil {
		s.t.Fatalf("dial %s: %v", user, err)
	}
	s.t.Cleanup(func() { c.Close() })
	return c, in
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// apiResult is one answer of the HTTP API.
type apiResult struct {
	Status int
	Header http.Header
	Body   []byte
}

// decode unmarshals the body into v.
func (r apiResult) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// errCode is the "code" of an error body, or "".
func (r apiResult) errCode() string {
	var b struct {
		Error struct{ Code, Message string }
	}
	_ = json.Unmarshal(r.Body, &b)
	return b.Error.Code
}

// api calls the HTTP API at the gateway with token (if not empty) and
// body (if not nil) as JSON.
func (s *server) api(method, path, token string, body any) apiResult {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctxT(s.t), method, "http://"+s.gateway+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	return apiResult{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// mustAPI calls the API and fails the test unless the status is want; it
// decodes the body into out when out is not nil.
func (s *server) mustAPI(want int, method, path, token string, body, out any) {
	s.t.Helper()
	r := s.api(method, path, token, body)
	if r.Status != want {
		s.t.Fatalf("%s %s: HTTP %d %s, want %d", method, path, r.Status, r.Body, want)
	}
	if out != nil {
		r.decode(s.t, out)
	}
}

// tokens is what login and refresh answer.
type tokens struct {
	Access  string `json:"access_token"`
	Refresh string `json:"refresh_token"`
}

func password(user string) string { return "pw-" + user + "-0123456789" }

// register creates the account user with password(user).
func (s *server) register(user string) {
	s.t.Helper()
	s.mustAPI(201, "POST", "/v1/accounts", "", map[string]string{"username": user, "password": password(user)}, nil)
}

// login logs user in with password(user).
func (s *server) login(user string) tokens {
	s.t.Helper()
	var tk tokens
	s.mustAPI(200, "POST", "/v1/auth/login", "", map[string]string{"username": user, "password": password(user)}, &tk)
	if tk.Access == "" || tk.Refresh == "" {
		s.t.Fatalf("login %s: no tokens", user)
	}
	return tk
}

// users registers and logs in each of names and returns their access
// tokens.
func (s *server) users(names ...string) map[string]string {
	s.t.Helper()
	out := make(map[string]string, len(names))
	for _, u := range names {
		s.register(u)
		out[u] = s.login(u).Access
	}
	return out
}

// dialToken connects with an explicit token and collects the inbox.
func (s *server) dialToken(token string, opts client.Options) (*client.Client, *inbox) {
	s.t.Helper()
	in := &inbox{}
	if opts.OnMessage == nil {
		opts.OnMessage = in.add
	}
	c, err := client.Dial(ctxT(s.t), s.url(), token, opts)
	if err != nil {
		s.t.Fatalf("dial: %v", err)
	}
	s.t.Cleanup(func() { c.Close() })
	return c, in
}
