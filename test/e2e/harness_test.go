// Package e2e runs the real surge binary and talks to it with real
// WebSocket clients on loopback ports.
package e2e

import (
	"bytes"
	"context"
	"fmt"
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
	log      *syncBuffer
	exited   chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
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
func startServer(t *testing.T, extra ...string) *server {
	t.Helper()
	s := &server{t: t, dataDir: t.TempDir(), ws: freePort(t), http: freePort(t), plane: freePort(t),
		gateway: freePort(t), grpc: [3]string{freePort(t), freePort(t), freePort(t)}, args: extra}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *server) start() {
	s.t.Helper()
	args := []string{"up", "--data-dir", s.dataDir, "--ws", s.ws, "--http", s.http,
		"--kafka-port", "-1", "--plane", s.plane, "--log-level", "warn", "--gateway", s.gateway,
		"--grpc-account", s.grpc[0], "--grpc-social", s.grpc[1], "--grpc-message", s.grpc[2]}
	if s.edgeOnly {
		args = []string{"edge", "--data-dir", s.dataDir, "--ws", s.ws, "--http", s.http, "--log-level", "warn"}
	}
	args = append(args, s.args...)
	argv := append(append(append([]string(nil), s.wrap...), surgeBin), args...)
	s.cmd = exec.Command(argv[0], argv[1:]...)
	s.log = &syncBuffer{}
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.exited = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	waitFor(s.t, 30*time.Second, "surge ready", func() bool {
		select {
		case <-s.exited:
			s.t.Fatalf("surge exited early:\n%s", s.log.String())
		default:
		}
		resp, err := http.Get("http://" + s.http + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
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
