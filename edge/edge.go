package edge

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/panjf2000/gnet/v2"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/surgechat/surge/internal/auth"
	"github.com/surgechat/surge/internal/kafka"
	"github.com/surgechat/surge/internal/socialcache"
	"github.com/surgechat/surge/internal/store"
	"github.com/surgechat/surge/router"
)

// Inbox is the part of the store that sync reads.
type Inbox interface {
	Inbox(ctx context.Context, part int32, owner string, after uint64, limit int) ([]store.Message, error)
}

// Config configures an Edge.
type Config struct {
	Addr     string        // listen host:port; "" means 127.0.0.1:7000
	Path     string        // WebSocket path; "" means /ws
	ID       string        // edge id in presence records; "" means a random one per start
	Keyring  *auth.Keyring // verifies client tokens; required
	Producer *kgo.Client   // produces sends and presence (kafka.ProducerOptions); required
	Topic    string        // "" means kafka.DefaultTopic
	Ring     *router.Ring  // owner → partition; required
	Inbox    Inbox         // serves sync; required
	Plane    *router.Plane // the edge registers itself here; required
	Logger   *slog.Logger  // nil means slog.Default()
	// Social lets the edge refuse sends that its shard would refuse, from
	// what the cache already knows (it never waits for the social
	// service); nil means no early checks.
	Social *socialcache.Cache
	// Presence answers presence queries; nil means they get "unavailable"
	// (an edge-only process has no presence table).
	Presence interface{ Online(user string) bool }
	Metrics  *vm.Set // nil means a private set

	// MaxConns caps connections; 0 derives it from RLIMIT_NOFILE
	// (DefaultMaxConns). Connections beyond it get HTTP 503.
	MaxConns int
	// MaxMessage is the largest client message, in bytes, after assembling
	// fragments; larger ones close the connection with 1009. 0 means 16 KiB.
	MaxMessage int
	// MaxBody is the largest message body a send may carry; 0 means 4 KiB.
	MaxBody int
	// SendRate is the sustained sends per second one connection may make;
	// 0 means 100. SendBurst is the burst above it; 0 means 2*SendRate.
	SendRate  float64
	SendBurst int
	// WriteQueue is how many bytes may wait to be written to one
	// connection before it is closed as a slow consumer; 0 means 1 MiB.
	WriteQueue int
	// Heartbeat is how long a connection may stay quiet before the edge
	// pings it; 0 means 30s. IdleTimeout closes a connection quiet for that
	// long; 0 means 3*Heartbeat.
	Heartbeat   time.Duration
	IdleTimeout time.Duration
	// HandshakeTimeout closes connections that have not upgraded; 0 means 10s.
	HandshakeTimeout time.Duration
	// LeaseInterval is how often the edge renews its presence leases; the
	// lease lasts three intervals. 0 means 20s.
	LeaseInterval time.Duration
	// SyncWait bounds how long a sync waits for the shard to register a
	// new session; 0 means 5s.
	SyncWait time.Duration
	// Loops is the number of event loops; 0 means GOMAXPROCS.
	Loops int
	// ReusePort lets several edge processes listen on the same port.
	ReusePort bool
}

func (c *Config) setDefaults() error {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:7000"
	}
	if c.Path == "" {
		c.Path = "/ws"
	}
	if c.ID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		c.ID = "edge-" + hex.EncodeToString(b[:])
	}
	if c.Topic == "" {
		c.Topic = kafka.DefaultTopic
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Metrics == nil {
		c.Metrics = vm.NewSet()
	}
	if c.MaxConns <= 0 {
		n, err := DefaultMaxConns()
		if err != nil {
			return err
		}
		c.MaxConns = n
	}
	if c.MaxMessage <= 0 {
		c.MaxMessage = 16 << 10
	}
	if c.MaxBody <= 0 {
		c.MaxBody = 4 << 10
	}
	if c.SendRate <= 0 {
		c.SendRate = 100
	}
	if c.SendBurst <= 0 {
		c.SendBurst = int(2 * c.SendRate)
	}
	if c.WriteQueue <= 0 {
		c.WriteQueue = 1 << 20
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = 30 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 3 * c.Heartbeat
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.LeaseInterval <= 0 {
		c.LeaseInterval = 20 * time.Second
	}
	if c.SyncWait <= 0 {
		c.SyncWait = 5 * time.Second
	}
	if c.Loops <= 0 {
		c.Loops = runtime.GOMAXPROCS(0)
	}
	return nil
}

func (c *Config) validate() error {
	switch {
	case c.Keyring == nil:
		return errors.New("edge: no keyring")
	case c.Producer == nil:
		return errors.New("edge: no producer")
	case c.Ring == nil:
		return errors.New("edge: no ring")
	case c.Inbox == nil:
		return errors.New("edge: no inbox store")
	case c.Plane == nil:
		return errors.New("edge: no delivery plane")
	case c.MaxBody > c.MaxMessage:
		return fmt.Errorf("edge: MaxBody %d exceeds MaxMessage %d", c.MaxBody, c.MaxMessage)
	}
	return nil
}

// Edge is one edge node. Start it with Run.
type Edge struct {
	gnet.BuiltinEventEngine

	cfg Config
	log *slog.Logger
	m   *edgeMetrics

	engine   gnet.Engine
	booted   chan struct{}
	active   atomic.Int64 // accepted connections, upgraded or not
	draining atomic.Bool
	nextSess atomic.Uint64

	users   *sessions // by user
	topics  *sessions // by subscribed topic
	pending sync.Map  // *conn → struct{}: connections still handshaking

	partMu   sync.Mutex
	partConn map[int32]int // sessions per partition, for leases

	syncs chan struct{} // bounds concurrent sync queries
	warms chan struct{} // bounds concurrent social cache warm-ups
}

// New creates an edge.
func New(cfg Config) (*Edge, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	e := &Edge{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "edge", "edge", cfg.ID),
		booted:   make(chan struct{}),
		users:    newSessions(),
		topics:   newSessions(),
		partConn: make(map[int32]int),
		syncs:    make(chan struct{}, 256),
		warms:    make(chan struct{}, 64),
	}
	var seed [8]byte
	_, _ = rand.Read(seed[:])
	e.nextSess.Store(binary.LittleEndian.Uint64(seed[:]) >> 16) // unique across restarts, with room to count
	e.m = newEdgeMetrics(cfg.Metrics, e)
	return e, nil
}

// ID returns the edge's id.
func (e *Edge) ID() string { return e.cfg.ID }

// MaxConns returns the connection cap in force.
func (e *Edge) MaxConns() int { return e.cfg.MaxConns }

// Conns returns the number of open connections.
func (e *Edge) Conns() int { return int(e.active.Load()) }

// Run serves until ctx ends, then closes every connection with 1001
// (going away) and returns.
func (e *Edge) Run(ctx context.Context) error {
	e.cfg.Plane.Register(e.cfg.ID, e)
	defer e.cfg.Plane.Unregister(e.cfg.ID)

	errc := make(chan error, 1)
	go func() {
		errc <- gnet.Run(e, "tcp://"+e.cfg.Addr,
			gnet.WithMulticore(e.cfg.Loops > 1),
			gnet.WithNumEventLoop(e.cfg.Loops),
			gnet.WithReusePort(e.cfg.ReusePort),
			gnet.WithReuseAddr(true),
			gnet.WithTCPNoDelay(gnet.TCPNoDelay),
			gnet.WithLogger(gnetLogger{e.log}),
		)
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("edge: listen %s: %w", e.cfg.Addr, err)
	case <-e.booted:
	}
	e.log.Info("edge listening", "addr", e.cfg.Addr, "path", e.cfg.Path, "max_conns", e.cfg.MaxConns)

	go e.housekeeping(ctx)
	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("edge engine stopped: %w", err)
	}
	e.drain()
	stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.engine.Stop(stopCtx); err != nil {
		e.log.Warn("stop engine", "err", err)
	}
	<-errc
	return nil
}

// drain tells every client to go elsewhere and gives the loops a moment to
// write the close frames.
func (e *Edge) drain() {
	e.draining.Store(true)
	e.users.all(func(c *conn) { c.closeWith(1001, "server going away; reconnect") })
	deadline := time.Now().Add(2 * time.Second)
	for e.active.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

// OnBoot implements gnet.EventHandler.
func (e *Edge) OnBoot(eng gnet.Engine) gnet.Action {
	e.engine = eng
	close(e.booted)
	return gnet.None
}

// Deliver implements router.Sink.
func (e *Edge) Deliver(user string, payload []byte) {
	e.users.each(user, func(c *conn) {
		if c.enqueue(payload, e.cfg.WriteQueue) {
			e.m.deliveries.Inc()
		} else {
			e.m.deliveryDropped.Inc()
		}
	})
}

// Publish implements router.Sink.
func (e *Edge) Publish(topic string, payload []byte) {
	e.topics.each(topic, func(c *conn) {
		if c.enqueue(payload, e.cfg.WriteQueue) {
			e.m.topicPushes.Inc()
		} else {
			e.m.deliveryDropped.Inc()
		}
	})
}

// Ready implements router.Sink.
func (e *Edge) Ready(user string, session uint64) {
	e.users.each(user, func(c *conn) {
		if c.session == session {
			c.ready.Store(true)
		}
	})
}

// Announce implements router.Sink; part may be router.AllPartitions.
func (e *Edge) Announce(part int32) {
	e.users.all(func(c *conn) {
		if part == router.AllPartitions || c.part == part {
			e.announce(c, true)
		}
	})
}

type gnetLogger struct{ l *slog.Logger }

func (g gnetLogger) Debugf(string, ...any) {}
func (g gnetLogger) Infof(string, ...any)  {}
func (g gnetLogger) Warnf(f string, a ...any) {
	g.l.Warn(fmt.Sprintf(f, a...))
}
func (g gnetLogger) Errorf(f string, a ...any) {
	g.l.Error(fmt.Sprintf(f, a...))
}
func (g gnetLogger) Fatalf(f string, a ...any) {
	g.l.Error(fmt.Sprintf(f, a...))
}
