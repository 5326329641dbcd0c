package loadgen

import (
	"context"
	"encoding/json"
	"errors"
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

	"github.com/surgechat/surge/internal/auth"
	"github.com/surgechat/surge/internal/testutil"
	"github.com/surgechat/surge/loadgen/internal/report"
)

// bins builds surge and loadgen once for the tests that run them.
var bins struct {
	once           sync.Once
	dir            string
	surge, loadgen string
	err            error
}

func binaries(t *testing.T) (surge, loadgen string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs real binaries")
	}
	bins.once.Do(func() {
		if bins.dir, bins.err = os.MkdirTemp("", "loadgen-test-"); bins.err != nil {
			return
		}
		bins.surge, bins.loadgen = filepath.Join(bins.dir, "surge"), filepath.Join(bins.dir, "loadgen")
		for bin, pkg := range map[string]string{bins.surge: "./cmd/surge", bins.loadgen: "./cmd/loadgen"} {
			cmd := exec.Command("go", "build", "-o", bin, pkg)
			cmd.Dir = ".."
			if out, err := cmd.CombinedOutput(); err != nil {
				bins.err = errors.New("go build " + pkg + ": " + err.Error() + "\n" + string(out))
				return
			}
		}
	})
	if bins.err != nil {
		t.Fatal(bins.err)
	}
	return bins.surge, bins.loadgen
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bins.dir != "" {
		os.RemoveAll(bins.dir)
	}
	os.Exit(code)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// server is a running `surge up`.
type server struct {
	ws, http, gateway, keys string
}

// testOperator is the operator every test server knows.
const testOperator = "lg-test-op"

func startSurge(t *testing.T) *server {
	t.Helper()
	surge, _ := binaries(t)
	dir := t.TempDir()
	s := &server{ws: freeAddr(t), http: freeAddr(t), gateway: freeAddr(t), keys: filepath.Join(dir, "keys.json")}
	var log testutil.SyncBuffer
	// Every listener on a free port, so that parallel test packages that
	// start servers too never collide.
	cmd := exec.Command(surge, "up", "--data-dir", dir, "--ws", s.ws, "--http", s.http,
		"--kafka-port", "-1", "--plane", freeAddr(t), "--gateway", s.gateway,
		"--grpc-account", freeAddr(t), "--grpc-social", freeAddr(t), "--grpc-message", freeAddr(t),
		"--operators", testOperator, "--send-rate", "1000", "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("surge log:\n%s", log.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("surge exited early:\n%s", log.String())
		default:
		}
		if resp, err := http.Get("http://" + s.http + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("surge not ready:\n%s", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *server) config(scenario string) Config {
	return Config{
		Scenario: scenario, Target: "ws://" + s.ws + "/ws", Keys: s.keys, API: "http://" + s.gateway,
		OperatorUser: testOperator, Stderr: testWriter{}, Deadline: time.Minute,
	}
}

type testWriter struct{}

func (testWriter) Write(p []byte) (int, error) { return len(p), nil }

// TestDirectAgainstSurge runs the direct scenario in this process against
// the real server and checks verification and the report's arithmetic. Its
// one impossible SLO makes the run fail with exit status 1.
func TestDirectAgainstSurge(t *testing.T) {
	s := startSurge(t)
	cfg := s.config("direct")
	cfg.Direct = DirectConfig{Pairs: 10}
	cfg.Rate, cfg.Warmup, cfg.Drain = 200, 500*time.Millisecond, 10*time.Second
	cfg.Duration = 2 * time.Second
	cfg.SLOs = []string{"p99(delivery)<60s", "rate>=100/s", "p50(ack)<1us"}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	v := rep.Verify
	if v == nil || !v.OK() || v.Lost != 0 || v.Duplicated != 0 || v.Reordered != 0 || v.Gaps != 0 {
		t.Fatalf("verification failed: %+v", v)
	}
	total := int64(2.5 * 200) // warm-up and window at 200/s
	if v.Sent != total || v.Acked != total || v.Delivered != total || v.Failed+v.Unanswered != 0 {
		t.Fatalf("want %d sent, acked and delivered: %+v (errors %v)", total, v, rep.Errors)
	}
	win := rep.Counts["sent_window"]
	if win != 400 || rep.Counts["acked_window"] != win || rep.Counts["delivered_window"] != win {
		t.Fatalf("window counts %v, want 400 each", rep.Counts)
	}
	if rep.Latency["ack"].Count != win || rep.Latency["delivery"].Count != win {
		t.Fatalf("histogram counts %d/%d, want %d", rep.Latency["ack"].Count, rep.Latency["delivery"].Count, win)
	}
	if d := rep.Latency["delivery"]; d.P50 > d.P99 || d.P99 > d.Max || d.Min > d.P50 {
		t.Fatalf("percentiles out of order: %+v", d)
	}
	if rep.Rates["rate"] != 200 {
		t.Fatalf("rate %v, want 200/s", rep.Rates["rate"])
	}
	want := map[string]bool{"lost==0": true, "duplicated==0": true, "reordered==0": true, "gaps==0": true,
		"unknown==0": true, "p99(delivery)<60s": true, "rate>=100/s": true, "p50(ack)<1us": false}
	if len(rep.SLOs) != len(want) {
		t.Fatalf("SLOs %+v", rep.SLOs)
	}
	for _, r := range rep.SLOs {
		if r.Pass != want[r.SLO] {
			t.Errorf("SLO %s pass=%v", r.SLO, r.Pass)
		}
	}
	if rep.Pass || ExitCode(rep, nil) != 1 {
		t.Fatalf("pass=%v exit=%d, want a failed run with exit 1", rep.Pass, ExitCode(rep, nil))
	}
	checkJSON(t, rep)
}

// TestIdleTwoWorkers holds connections from two re-executed worker
// processes and reads the server's memory per connection.
func TestIdleTwoWorkers(t *testing.T) {
	s := startSurge(t)
	_, lg := binaries(t)
	cfg := s.config("idle")
	cfg.Exe, cfg.Workers, cfg.SrcAddrs = lg, 2, 3
	cfg.Idle = IdleConfig{Conns: 200, Heartbeat: 300 * time.Millisecond}
	cfg.ConnectRate = 400
	cfg.Duration = time.Second
	cfg.MetricsURL = "http://" + s.http + "/metrics"
	cfg.SLOs = []string{"established==200", "failed==0", "dropped==0", "max(connect)<30s"}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Pass {
		t.Fatalf("run failed: %+v", rep.SLOs)
	}
	c := rep.Counts
	if c["attempted"] != 200 || c["held"] != 200 || c["pings"] == 0 {
		t.Fatalf("counts %v", c)
	}
	if rep.Latency["connect"].Count != 200 || rep.Latency["heartbeat"].Count == 0 {
		t.Fatalf("latency %+v", rep.Latency)
	}
	if rep.Server == nil || rep.Server.Conns != 200 {
		t.Fatalf("server saw %+v, want 200 more connections", rep.Server)
	}
	if _, ok := rep.Server.PerConn["rss"]; !ok {
		t.Fatalf("no rss per connection: %+v", rep.Server.PerConn)
	}
	checkJSON(t, rep)
}

func checkJSON(t *testing.T, rep *report.Report) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "r.json")
	if err := rep.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back["version"] != float64(1) || back["scenario"] != rep.Scenario || back["pass"] != rep.Pass {
		t.Fatalf("JSON report: %s", b)
	}
}

func keyring(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys.json")
	if _, err := auth.LoadOrCreateKeyring(path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRefusals(t *testing.T) {
	keys := keyring(t)
	f := func(mod func(*Config), want string) {
		t.Helper()
		cfg := Config{Scenario: "idle", Keys: keys, Target: "ws://127.0.0.1:1/ws", Stderr: testWriter{}, Exe: "/nonexistent"}
		mod(&cfg)
		_, err := Run(context.Background(), cfg)
		if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), want) || ExitCode(nil, err) != 2 {
			t.Fatalf("got %v, want a usage error containing %q", err, want)
		}
	}
	f(func(c *Config) { c.Target = "ws://10.1.2.3:7000/ws" }, "not a loopback address")
	f(func(c *Config) { c.Target = "ws://[2001:db8::1]:7000/ws" }, "not a loopback address")
	f(func(c *Config) { c.MetricsURL = "http://192.168.1.1:9100/metrics" }, "not a loopback address")
	f(func(c *Config) { c.Keys = filepath.Join(t.TempDir(), "none.json") }, "keyring")
	f(func(c *Config) { c.Scenario = "bogus" }, "unknown scenario")
	f(func(c *Config) { c.SLOs = []string{"p99(nothing)<1ms"} }, "unknown metric")
	f(func(c *Config) { c.SLOs = []string{"p99(connect)<10"} }, "is a duration")
	f(func(c *Config) { c.SLOs = []string{"lost=0"} }, "operator")
	f(func(c *Config) { c.ClosedLoop = true }, "no closed-loop mode")
	f(func(c *Config) { c.Scenario, c.Ramp = "direct", []RatePoint{{time.Second, 5}} }, "ramp")
	f(func(c *Config) { c.Scenario, c.API = "group", "http://10.0.0.1:8080" }, "not a loopback address")
	f(func(c *Config) { c.Scenario, c.UserPrefix = "group", "Bad Prefix" }, "--user-prefix")
	f(func(c *Config) { c.Scenario, c.Group.Creator = "group", "nobody" }, "--group-creator")
	f(func(c *Config) { c.Scenario, c.Reconnect.StormAt = "reconnect", time.Hour }, "--storm-at")
	f(func(c *Config) { c.Scenario, c.Workers = "baseline", 2 }, "drop --workers")
	f(func(c *Config) { c.SLOFile = filepath.Join(t.TempDir(), "none.txt") }, "slo file")
	limit, err := raiseFileLimit()
	if err != nil {
		t.Fatal(err)
	}
	if limit < 1<<20 {
		f(func(c *Config) { c.Idle.Conns = int(limit) + 10 }, "use --workers 2")
	}
	f(func(c *Config) { c.Idle.Conns, c.Workers, c.SrcAddrs = 60000, 4, 1 }, "use --src-addrs")
}
