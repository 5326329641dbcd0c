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
	// Scenario is idle, direct, group, topic, reconnect, api or baseline;
	// required.
	Scenario string
	// Target is the edge's WebSocket URL; "" means ws://127.0.0.1:7000/ws.
	// Only loopback targets (127.0.0.0/8, ::1, localhost) are accepted.
	Target string
	// API is the base URL of the HTTP API (the gateway) that group, topic
	// and api register users, log in and create groups through; ""
	// means http://127.0.0.1:8080. Loopback only.
	API string
	// Keys is the server's keyring file (its data dir's keys.json), used
	// by idle, direct and reconnect to mint tokens locally; required by
	// them, and must exist.
	Keys string
	// UserPrefix is put before every user id ("idle-3", "s-3", "lgg0m1").
	UserPrefix string
	// Password is the password of the users loadgen registers; "" means
	// "loadgen-password-1".
	Password string
	// OperatorUser and OperatorPassword log in the operator that topic
	// publishes as (and group creates groups as, with Group.Creator
	// "operator"); the user is registered first if it does not exist, so
	// the server must name it in `surge up --operators`. "" means
	// "loadgen-op" and Password.
	OperatorUser, OperatorPassword string
	// APIConcurrency bounds the HTTP requests of the setup (register,
	// login, groups) in flight per worker; 0 means 8.
	APIConcurrency int
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
	// how long the others send after the warm-up. 0 means 10s.
	Duration time.Duration
	// Deadline is the hard stop of the whole run; 0 means the expected
	// length (setup, connecting, warm-up, duration, drain) plus 60s.
	Deadline time.Duration
	// MetricsURL is the server's /metrics, scraped before the run and while
	// the connections are held; "" skips it. Loopback only.
	MetricsURL string
	// MetricsListen is where loadgen serves its own /metrics during the
	// run, such as 127.0.0.1:9200; "" serves none.
	MetricsListen string
	// MetricsListener, if set, is used instead of listening on
	// MetricsListen (tests pass one bound to port 0).
	MetricsListener net.Listener `json:"-"`
	// SLOs are objectives such as "p99(delivery)<10ms"; see package slo.
	SLOs []string
	// SLOFile is a file of more objectives, one a line, '#' comments.
	SLOFile string
	// AbortOnBreach stops the run at the first breach of an objective
	// that can be judged while the run goes (see slo.Live).
	AbortOnBreach bool
	// NoVerifySLOs drops the implicit lost==0, duplicated==0, ... of
	// scenarios that verify delivery.
	NoVerifySLOs bool

	// Rate is events per second over all workers (messages, publishes or
	// API operations); 0 means the scenario's default. Ramp, if set,
	// replaces it.
	Rate float64
	// Ramp is a rate that changes over the run; see RatePoint.
	Ramp []RatePoint
	// ClosedLoop sends the next message on a connection only once an
	// earlier one is answered, with InFlight outstanding (0 means 1),
	// instead of on a schedule.
	ClosedLoop bool
	InFlight   int
	// Warmup is sending before the window, excluded from histograms and
	// rates; 0 means none.
	Warmup time.Duration
	// Drain is the wait after the last send for answers and deliveries;
	// 0 means 5s.
	Drain time.Duration
	// BodySize pads bodies to this many bytes; 0 means no padding.
	BodySize int
	// Baseline, if positive, runs the baseline scenario for this long after
	// a group or topic run, on the same machine, and reports it beside
	// the fan-out.
	Baseline time.Duration

	Idle      IdleConfig
	Direct    DirectConfig
	Group     GroupConfig
	Topic     TopicConfig
	Reconnect ReconnectConfig
	APILoad   APIConfig
	Base      BaselineConfig

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
	Pairs int // sender/receiver pairs "s-<i>" → "r-<i>"; 0 means 10
}

// defaultRates are each scenario's Rate when none is given.
var defaultRates = map[string]float64{"direct": 100, "group": 100, "topic": 10, "reconnect": 200, "api": 20}

func (c *Config) setDefaults() {
	if c.Target == "" {
		c.Target = "ws://127.0.0.1:7000/ws"
	}
	if c.API == "" {
		c.API = "http://127.0.0.1:8080"
	}
	if c.Password == "" {
		c.Password = "loadgen-password-1"
	}
	if c.OperatorUser == "" {
		c.OperatorUser = "loadgen-op"
	}
	if c.OperatorPassword == "" {
		c.OperatorPassword = c.Password
	}
	if c.APIConcurrency <= 0 {
		c.APIConcurrency = 8
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
	if c.Rate <= 0 {
		c.Rate = defaultRates[c.Scenario]
	}
	c.InFlight = max(c.InFlight, 1)
	if c.Drain <= 0 {
		c.Drain = 5 * time.Second
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
	c.Group.setDefaults()
	c.Topic.setDefaults()
	c.Reconnect.setDefaults(c)
	c.APILoad.setDefaults()
	c.Base.setDefaults()
	if c.SrcAddrs <= 0 {
		c.SrcAddrs = max(1, (c.totalConns()+9999)/10000)
		if c.usesAPI() {
			// The account service throttles logins in flight per client
			// address: look like many clients, as real ones would.
			c.SrcAddrs = max(c.SrcAddrs, 16)
		}
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
	switch c.Scenario {
	case "direct":
		return 2 * c.Direct.Pairs
	case "group":
		return c.Group.Groups * c.Group.Size
	case "topic":
		return c.Topic.Subscribers + maxHTTPConns
	case "reconnect":
		return c.Reconnect.Users + c.Reconnect.Senders
	case "api":
		return maxHTTPConns + c.APILoad.Users/2
	case "baseline":
		return 2 * c.Base.Conns
	}
	return c.Idle.Conns
}

// users is how many accounts the setup registers or logs in.
func (c *Config) users() int {
	switch c.Scenario {
	case "group":
		return c.Group.Groups * c.Group.Size
	case "topic":
		return c.Topic.Subscribers + 1
	case "api":
		return c.APILoad.Users
	}
	return 0
}

// expected is how long the run should take.
func (c *Config) expected() time.Duration {
	d := time.Duration(float64(c.totalConns())/c.ConnectRate*float64(time.Second)) + c.Duration
	// Registering and logging in hash a password twice (argon2id): allow
	// 20 users a second.
	d += time.Duration(c.users()) * 50 * time.Millisecond
	switch c.Scenario {
	case "idle", "baseline":
	default:
		d += c.Warmup + c.Drain
	}
	if c.Scenario == "group" || c.Scenario == "topic" {
		d += c.Baseline
	}
	return d
}

// ErrUsage marks configuration errors: loadgen exits 2 on them.
var ErrUsage = errors.New("usage")

func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUsage, fmt.Sprintf(format, args...))
}

// usesKeys tells whether the scenario mints tokens from the keyring.
func (c *Config) usesKeys() bool {
	return c.Scenario == "idle" || c.Scenario == "direct" || c.Scenario == "reconnect"
}

// usesAPI tells whether the scenario talks to the HTTP API.
func (c *Config) usesAPI() bool {
	return c.Scenario == "group" || c.Scenario == "topic" || c.Scenario == "api"
}

func (c *Config) validate() error {
	if _, ok := scenarios[c.Scenario]; !ok {
		return usageErr("unknown scenario %q (have: %s)", c.Scenario, scenarioNames())
	}
	if c.usesKeys() {
		if c.Keys == "" {
			return usageErr("--keys is required: the keys.json of the server's data dir")
		}
		if _, err := os.Stat(c.Keys); err != nil {
			return usageErr("keyring: %v (pass the keys.json of the data dir surge up uses)", err)
		}
	}
	if c.Scenario != "baseline" {
		u, err := url.Parse(c.Target)
		if err != nil || (u.Scheme != "ws") || u.Host == "" {
			return usageErr("target %q: want ws://host:port/path", c.Target)
		}
		if err := checkLoopback(u.Hostname()); err != nil {
			return usageErr("target %q: %v", c.Target, err)
		}
	}
	if c.usesAPI() {
		if err := checkHTTP("api", c.API); err != nil {
			return err
		}
		if !validUsername(c.UserPrefix + "lgx0") {
			return usageErr("--user-prefix %q: usernames are 3 to 32 characters of a-z 0-9 _ . - starting with a letter", c.UserPrefix)
		}
		if len(c.Password) < 10 {
			return usageErr("--password: at least 10 characters")
		}
	}
	if c.MetricsURL != "" {
		if err := checkHTTP("metrics url", c.MetricsURL); err != nil {
			return err
		}
	}
	if len(c.Ramp) > 0 {
		if err := checkRamp(c.Ramp); err != nil {
			return usageErr("ramp: %v", err)
		}
	}
	if c.ClosedLoop && !scenarios[c.Scenario].closedLoop {
		return usageErr("--closed-loop: the %s scenario has no closed-loop mode", c.Scenario)
	}
	if c.AbortOnBreach && c.Workers < 1 {
		return usageErr("--abort-on-breach needs a worker")
	}
	if c.SrcAddrs > 250 {
		return usageErr("--src-addrs %d: at most 250 (127.0.0.2 to 127.0.0.251)", c.SrcAddrs)
	}
	if c.Baseline < 0 {
		return usageErr("--baseline %v: negative", c.Baseline)
	}
	if err := c.validateShares(); err != nil {
		return err
	}
	if _, err := slo.ParseAll(c.SLOs); err != nil {
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	return nil
}

// validateShares checks that every worker gets a share.
func (c *Config) validateShares() error {
	units := map[string]struct {
		n    int
		what string
	}{
		"idle": {c.Idle.Conns, "connections"}, "direct": {c.Direct.Pairs, "pairs"}, "group": {c.Group.Groups, "groups"},
		"topic": {c.Topic.Topics, "topics"}, "reconnect": {c.Reconnect.Senders, "senders"}, "api": {c.APILoad.Users / 2, "user pairs"},
	}
	if u, ok := units[c.Scenario]; ok && u.n < c.Workers {
		return usageErr("%d %s cannot be shared by %d workers", u.n, u.what, c.Workers)
	}
	if c.Scenario == "baseline" && c.Workers > 1 {
		return usageErr("baseline runs in one process: drop --workers")
	}
	switch c.Scenario {
	case "group":
		return c.Group.validate()
	case "topic":
		return c.Topic.validate()
	case "reconnect":
		return c.Reconnect.validate(c)
	case "api":
		return c.APILoad.validate()
	}
	return nil
}

func checkHTTP(what, raw string) error {
	m, err := url.Parse(raw)
	if err != nil || m.Scheme != "http" || m.Host == "" {
		return usageErr("%s %q: want http://host:port", what, raw)
	}
	if err := checkLoopback(m.Hostname()); err != nil {
		return usageErr("%s %q: %v", what, raw, err)
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
