package loadgen

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"time"

	"github.com/surgechat/surge/loadgen/internal/slo"
)

// Config is one run. The zero value of each field means what its comment
// says; setDefaults fills them in and validate checks the rest.
type Config struct {
	Scenario string // "idle" or "direct"; required
	// Target is the edge's WebSocket URL; "" means ws://127.0.0.1:7000/ws.
	// Only loopback targets (127.0.0.0/8, ::1, localhost) are accepted.
	Target string
	// Keys is the server's keyring file (its data dir's keys.json), used to
	// mint tokens locally; required, and must exist.
	Keys string
	// UserPrefix is put before every user id ("idle-3", "s-3", "r-3").
	UserPrefix string
	// Workers is the number of worker processes; 0 or 1 runs the one
	// worker in this process.
	Workers int
	// Exe is the loadgen binary re-executed for each worker; "" means
	// os.Executable(). It must understand --worker-id (see cmd/loadgen).
	Exe string
	// SrcAddrs is how many source addresses 127.0.0.2, 127.0.0.3, ... the
	// connections spread over; 0 means one per 10,000 connections.
	SrcAddrs int
	// ConnectRate is new connections per second over all workers; 0 means
	// 1000.
	ConnectRate float64
	// ConnectTimeout bounds one connection's dial and upgrade; 0 means 10s.
	ConnectTimeout time.Duration
	// Duration is the measured window: how long idle holds its connections,
	// how long direct sends after the warm-up. 0 means 10s.
	Duration time.Duration
	// Deadline is the hard stop of the whole run; 0 means the expected
	// length (connecting, warm-up, duration, drain) plus 60s.
	Deadline time.Duration
	// MetricsURL is the server's /metrics, scraped before the run and while
	// the connections are held; "" skips it. Loopback only.
	MetricsURL string
	// SLOs are objectives such as "p99(delivery)<10ms"; see package slo.
	SLOs []string
	// NoVerifySLOs drops the implicit lost==0, duplicated==0, reordered==0,
	// gaps==0 and unknown==0 of scenarios that verify delivery.
	NoVerifySLOs bool

	Idle   IdleConfig
	Direct DirectConfig

	// Stderr receives the preflight, live progress and worker logs; nil
	// means os.Stderr.
	Stderr io.Writer `json:"-"`
	// RunID tells this run's message ids apart from earlier runs'; ""
	// means one derived from the clock.
	RunID string
}

// IdleConfig is the idle scenario.
type IdleConfig struct {
	Conns int // connections over all workers; 0 means 1000
	// Heartbeat is the interval of application pings per connection,
	// jittered ±20%; 0 means 30s, negative turns them off.
	Heartbeat time.Duration
}

// DirectConfig is the direct scenario.
type DirectConfig struct {
	Pairs    int           // sender/receiver pairs "s-<i>" → "r-<i>"; 0 means 10
	Rate     float64       // messages per second over all pairs; 0 means 100
	Warmup   time.Duration // sends before the window, excluded from histograms; 0 means none
	Drain    time.Duration // wait after the last send for acks and deliveries; 0 means 5s
	BodySize int           // pad bodies to this many bytes; 0 means no padding
}

func (c *Config) setDefaults() {
	if c.Target == "" {
		c.Target = "ws://127.0.0.1:7000/ws"
	}
	c.Workers = max(c.Workers, 1)
	if c.ConnectRate <= 0 {
		c.ConnectRate = 1000
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Idle.Conns <= 0 {
		c.Idle.Conns = 1000
	}
	if c.Idle.Heartbeat == 0 {
		c.Idle.Heartbeat = 30 * time.Second
	}
	if c.Direct.Pairs <= 0 {
		c.Direct.Pairs = 10
	}
	if c.Direct.Rate <= 0 {
		c.Direct.Rate = 100
	}
	if c.Direct.Drain <= 0 {
		c.Direct.Drain = 5 * time.Second
	}
	if c.SrcAddrs <= 0 {
		c.SrcAddrs = max(1, (c.totalConns()+9999)/10000)
	}
	if c.Deadline <= 0 {
		c.Deadline = c.expected() + 60*time.Second
	}
	if c.RunID == "" {
		c.RunID = fmt.Sprintf("%x", time.Now().UnixNano()/1e6)
	}
	if c.Stderr == nil {
		c.Stderr = os.Stderr
	}
}

// totalConns is how many sockets the run opens over all workers.
func (c *Config) totalConns() int {
	if c.Scenario == "direct" {
		return 2 * c.Direct.Pairs
	}
	return c.Idle.Conns
}

// expected is how long the run should take.
func (c *Config) expected() time.Duration {
	d := time.Duration(float64(c.totalConns())/c.ConnectRate*float64(time.Second)) + c.Duration
	if c.Scenario == "direct" {
		d += c.Direct.Warmup + c.Direct.Drain
	}
	return d
}

// ErrUsage marks configuration errors: loadgen exits 2 on them.
var ErrUsage = errors.New("usage")

func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUsage, fmt.Sprintf(format, args...))
}

func (c *Config) validate() error {
	if _, ok := scenarios[c.Scenario]; !ok {
		return usageErr("unknown scenario %q (have: idle, direct)", c.Scenario)
	}
	if c.Keys == "" {
		return usageErr("--keys is required: the keys.json of the server's data dir")
	}
	if _, err := os.Stat(c.Keys); err != nil {
		return usageErr("keyring: %v (pass the keys.json of the data dir surge up uses)", err)
	}
	u, err := url.Parse(c.Target)
	if err != nil || (u.Scheme != "ws") || u.Host == "" {
		return usageErr("target %q: want ws://host:port/path", c.Target)
	}
	if err := checkLoopback(u.Hostname()); err != nil {
		return usageErr("target %q: %v", c.Target, err)
	}
	if c.MetricsURL != "" {
		m, err := url.Parse(c.MetricsURL)
		if err != nil || m.Scheme != "http" {
			return usageErr("metrics url %q: want http://host:port/metrics", c.MetricsURL)
		}
		if err := checkLoopback(m.Hostname()); err != nil {
			return usageErr("metrics url %q: %v", c.MetricsURL, err)
		}
	}
	if c.Direct.Pairs < c.Workers && c.Scenario == "direct" {
		return usageErr("%d pairs cannot be shared by %d workers", c.Direct.Pairs, c.Workers)
	}
	if c.Idle.Conns < c.Workers && c.Scenario == "idle" {
		return usageErr("%d connections cannot be shared by %d workers", c.Idle.Conns, c.Workers)
	}
	if c.SrcAddrs > 250 {
		return usageErr("--src-addrs %d: at most 250 (127.0.0.2 to 127.0.0.251)", c.SrcAddrs)
	}
	if _, err := slo.ParseAll(c.SLOs); err != nil {
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	return nil
}

// checkLoopback refuses any host that is not, or does not resolve only
// to, a loopback address.
func checkLoopback(host string) error {
	ips := []net.IP{net.ParseIP(host)}
	if ips[0] == nil {
		addrs, err := net.LookupIP(host)
		if err != nil {
			return err
		}
		ips = addrs
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("%s is not a loopback address: loadgen only drives a server on this machine (127.0.0.0/8 or ::1)", ip)
		}
	}
	return nil
}

// share is one worker's part of the run.
type share struct {
	id, of int
}

// indices returns the global indices (of n) that worker s owns.
func (s share) indices(n int) []int {
	var out []int
	for i := s.id; i < n; i += s.of {
		out = append(out, i)
	}
	return out
}

// srcIP is the source address of connection i.
func (c *Config) srcIP(i int, target net.IP) net.IP {
	if target.To4() == nil {
		return nil // ::1: there is only one
	}
	return net.IPv4(127, 0, 0, byte(2+i%c.SrcAddrs))
}
