// Package node assembles Surge's roles in one process: what `surge up`
// runs. It owns the embedded broker and store when no real ones are named,
// the edge, the shard, and the operator HTTP endpoints (/metrics, /healthz,
// /readyz).
//
// New prepares everything that can fail fast (data dir, keys, broker,
// topic, store); Run serves until its context ends and then shuts the roles
// down in reverse order.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"slices"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/surgechat/surge/edge"
	"github.com/surgechat/surge/internal/auth"
	"github.com/surgechat/surge/internal/kafka"
	"github.com/surgechat/surge/internal/metrics"
	"github.com/surgechat/surge/internal/socialcache"
	"github.com/surgechat/surge/internal/store"
	"github.com/surgechat/surge/router"
	"github.com/surgechat/surge/shard"
)

// Config configures a node. Every zero value means the embedded default.
type Config struct {
	// DataDir keeps all state: keys, the embedded broker's log, the
	// embedded store. "" means ./surge-data.
	DataDir string
	// WSAddr is where clients connect (path /ws); "" means 127.0.0.1:7000.
	WSAddr string
	// HTTPAddr serves /metrics, /healthz and /readyz; "" means 127.0.0.1:9100.
	HTTPAddr string
	// Kafka names real brokers; empty means the embedded broker.
	Kafka []string
	// KafkaPort is the embedded broker's loopback port; 0 means 19092, and
	// -1 a free port.
	KafkaPort int
	// Topic is the owner topic; "" means kafka.DefaultTopic.
	Topic string
	// Partitions is the owner topic's partition count, fixed for the
	// topic's life; 0 means 16.
	Partitions int
	// StoreDriver is "sqlite" or "mysql"; "" means sqlite in DataDir.
	StoreDriver string
	// StoreDSNs are the store's databases (see store.Config); empty with
	// sqlite means DataDir/inbox.db.
	StoreDSNs []string
	// Keys is the JWT keyring file; "" means DataDir/keys.json, created on
	// first start.
	Keys string
	// Roles lists the roles to run: "edge", "shard"; empty means both.
	Roles []string
	// PlaneAddr is where the shard role accepts edges of other processes
	// onto its delivery plane; "" means 127.0.0.1:7100, "off" none.
	PlaneAddr string
	// Shards lists the plane addresses of the shard nodes that an
	// edge-only node attaches to; required when the node runs no shard.
	Shards []string
	// AccountAddr, SocialAddr and MessageAddr are where the services role
	// serves gRPC; "" means 127.0.0.1:60051, :60052 and :60053.
	AccountAddr, SocialAddr, MessageAddr string
	// GatewayAddr serves the public HTTP API; "" means 127.0.0.1:8080,
	// "off" none.
	GatewayAddr string
	// Social is the social service's gRPC target for a node that does not
	// run the services role; "" means none: no checks of direct messages,
	// no groups, no friend presence.
	Social string
	// ServiceTokenFile holds the token Surge's roles present to the
	// services; "" means DataDir/service.token, created on first start.
	ServiceTokenFile string
	// DirectPolicy is who may send a user direct messages: "anyone" (the
	// default) or "friends". Blocks apply either way.
	DirectPolicy string
	// MaxGroupSize caps group membership; 0 means the social service's
	// default (500).
	MaxGroupSize int
	// Operators are usernames that get the operator role when they
	// register.
	Operators []string
	// CORSOrigins are the browser origins allowed to call the HTTP API.
	CORSOrigins []string
	// TrustForwardedFor makes the gateway take a client's address from the
	// X-Forwarded-For header its reverse proxy sets (for the login
	// throttle); false uses the TCP peer.
	TrustForwardedFor bool
	// Edge tunes the edge; its Addr, Keyring, Producer, Ring, Inbox,
	// Plane, Logger and Metrics are set by the node.
	Edge edge.Config
	// Logger receives the node's logs; nil means slog.Default().
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.DataDir == "" {
		c.DataDir = "surge-data"
	}
	if c.WSAddr == "" {
		c.WSAddr = "127.0.0.1:7000"
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:9100"
	}
	switch c.KafkaPort {
	case 0:
		c.KafkaPort = 19092
	case -1:
		c.KafkaPort = 0
	}
	if c.Topic == "" {
		c.Topic = kafka.DefaultTopic
	}
	if c.Partitions <= 0 {
		c.Partitions = 16
	}
	if c.StoreDriver == "" {
		c.StoreDriver = store.DriverSQLite
	}
	if c.StoreDriver == store.DriverSQLite && len(c.StoreDSNs) == 0 {
		c.StoreDSNs = []string{filepath.Join(c.DataDir, "inbox.db")}
	}
	if c.Keys == "" {
		c.Keys = filepath.Join(c.DataDir, "keys.json")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if len(c.Roles) == 0 {
		c.Roles = []string{RoleEdge, RoleShard, RoleServices}
	}
	for _, a := range []struct {
		p   *string
		def string
	}{{&c.AccountAddr, "127.0.0.1:60051"}, {&c.SocialAddr, "127.0.0.1:60052"}, {&c.MessageAddr, "127.0.0.1:60053"}, {&c.GatewayAddr, "127.0.0.1:8080"}} {
		if *a.p == "" {
			*a.p = a.def
		}
	}
	if c.ServiceTokenFile == "" {
		c.ServiceTokenFile = filepath.Join(c.DataDir, "service.token")
	}
	if c.PlaneAddr == "" {
		c.PlaneAddr = "127.0.0.1:7100"
	}
}

// Roles a node can run.
const (
	RoleEdge     = "edge"
	RoleShard    = "shard"
	RoleServices = "services" // account, social, message and the HTTP gateway
)

func (c *Config) has(role string) bool { return slices.Contains(c.Roles, role) }

func (c *Config) validate() error {
	for _, r := range c.Roles {
		if r != RoleEdge && r != RoleShard && r != RoleServices {
			return fmt.Errorf("unknown role %q (want %q, %q or %q)", r, RoleEdge, RoleShard, RoleServices)
		}
	}
	if !c.has(RoleShard) {
		if len(c.Kafka) == 0 {
			return errors.New("a node without the shard role needs --kafka: the embedded broker lives with the shards")
		}
		if c.has(RoleEdge) && len(c.Shards) == 0 {
			return errors.New("an edge-only node needs --shards: the plane addresses of the shard nodes")
		}
	}
	return nil
}

// Node is a running set of roles.
type Node struct {
	cfg      Config
	log      *slog.Logger
	embedded *kafka.Embedded
	brokers  []string
	store    store.Store
	producer *kgo.Client
	shard    *shard.Shard
	edge     *edge.Edge
	httpLn   net.Listener
	planeLn  net.Listener
	plane    *router.Plane
	sets     []*vm.Set

	services   *services
	social     *socialcache.Cache // nil without a social service
	socialConn *grpc.ClientConn
}

// New prepares a node: on error nothing is left running.
func New(ctx context.Context, cfg Config) (n *Node, err error) {
	if len(cfg.Roles) == 1 && cfg.Roles[0] == RoleEdge && (cfg.Keys == "" || len(cfg.StoreDSNs) == 0) {
		// Checked before the defaults, which would make up a keyring and a
		// store of the edge's own that no shard writes to.
		return nil, errors.New("an edge-only node needs --keys and --store-dsn: the keyring and store of the shards it serves")
	}
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	node := &Node{cfg: cfg, log: cfg.Logger}
	defer func() {
		if err != nil {
			node.close()
		}
	}()
	n = node
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	keys, err := auth.LoadOrCreateKeyring(cfg.Keys)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}

	n.brokers = cfg.Kafka
	if len(n.brokers) == 0 {
		n.embedded, err = kafka.StartEmbedded(filepath.Join(cfg.DataDir, "kafka"), cfg.KafkaPort)
		if err != nil {
			return nil, err
		}
		n.brokers = n.embedded.Addrs()
		n.log.Info("embedded kafka", "addrs", n.brokers)
	}
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := kafka.EnsureTopic(tctx, n.brokers, cfg.Topic, cfg.Partitions); err != nil {
		return nil, err
	}

	n.store, err = store.Open(tctx, store.Config{Driver: cfg.StoreDriver, DSNs: cfg.StoreDSNs})
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}

	ring := router.NewRing(cfg.Partitions)
	plane := router.NewPlane()
	edgeSet, shardSet := vm.NewSet(), vm.NewSet()
	n.sets = []*vm.Set{edgeSet, shardSet}

	n.producer, err = kgo.NewClient(append(kafka.ProducerOptions(n.brokers), kgo.WithLogger(kafka.Logger(n.log)))...)
	if err != nil {
		return nil, fmt.Errorf("kafka producer: %w", err)
	}
	if cfg.has(RoleServices) || cfg.Social != "" {
		token, err := serviceToken(cfg.ServiceTokenFile)
		if err != nil {
			return nil, fmt.Errorf("service token: %w", err)
		}
		if cfg.has(RoleServices) {
			if err := n.startServices(ctx, keys, ring, token); err != nil {
				return nil, err
			}
		} else if err := n.dialSocial(ctx, cfg.Social, token); err != nil {
			return nil, err
		}
	}
	if cfg.has(RoleShard) {
		n.shard, err = shard.New(shard.Config{
			Brokers: n.brokers, Topic: cfg.Topic, Ring: ring, Store: n.store,
			Plane: plane, Logger: n.log, Metrics: shardSet, Social: n.social,
		})
		if err != nil {
			return nil, err
		}
		if cfg.PlaneAddr != "off" {
			if n.planeLn, err = net.Listen("tcp", cfg.PlaneAddr); err != nil {
				return nil, fmt.Errorf("plane listen: %w", err)
			}
		}
	}
	if cfg.has(RoleEdge) {
		ec := cfg.Edge
		ec.Addr, ec.Keyring, ec.Producer, ec.Topic = cfg.WSAddr, keys, n.producer, cfg.Topic
		ec.Ring, ec.Inbox, ec.Plane, ec.Logger, ec.Metrics = ring, n.store, plane, n.log, edgeSet
		ec.Social = n.social
		if n.shard != nil {
			ec.Presence = n.shard.Table()
		}
		n.edge, err = edge.New(ec)
		if err != nil {
			return nil, err
		}
	}
	n.plane = plane
	n.httpLn, err = net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("http listen: %w", err)
	}
	return n, nil
}

// HTTPAddr returns the operator endpoint's address.
func (n *Node) HTTPAddr() string { return n.httpLn.Addr().String() }

// Brokers returns the Kafka brokers in use.
func (n *Node) Brokers() []string { return n.brokers }

// Edge returns the node's edge.
func (n *Node) Edge() *edge.Edge { return n.edge }

// Run serves until ctx ends.
func (n *Node) Run(ctx context.Context) error {
	defer n.close()
	g, ctx := errgroup.WithContext(ctx)
	shardCtx, stopShard := context.WithCancel(context.WithoutCancel(ctx))
	defer stopShard()
	pcfg := router.PlaneConfig{Logger: n.log, Metrics: n.sets[1]}
	if n.planeLn != nil {
		g.Go(func() error { return router.ServePlane(shardCtx, n.planeLn, n.plane, pcfg) })
	}
	if n.shard != nil {
		g.Go(func() error {
			if n.edge == nil {
				defer stopShard()
				<-ctx.Done()
			}
			return nil
		})
		g.Go(func() error { return n.shard.Run(shardCtx) })
	}
	if n.edge != nil {
		// Attach to the other shard nodes; the local shard, if any, is
		// attached in-process.
		ecfg := router.PlaneConfig{Logger: n.log, Metrics: n.sets[0]}
		for _, addr := range n.cfg.Shards {
			g.Go(func() error { return router.DialPlane(ctx, addr, n.edge.ID(), n.edge, ecfg) })
		}
		g.Go(func() error {
			// The edge drains first; the shard keeps running until then so
			// that the disconnects are processed.
			defer stopShard()
			return n.edge.Run(ctx)
		})
	}
	if n.services != nil {
		n.services.serve(ctx, g)
	}
	srv := &http.Server{Handler: n.mux(), ReadHeaderTimeout: 5 * time.Second}
	g.Go(func() error {
		if err := srv.Serve(n.httpLn); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	n.log.Info("surge running", "roles", n.cfg.Roles, "ws", "ws://"+n.cfg.WSAddr+"/ws", "http", "http://"+n.HTTPAddr(), "data_dir", n.cfg.DataDir)
	return g.Wait()
}

func (n *Node) mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler(n.sets...))
	// Profiles for diagnosis; the operator port listens on loopback by default.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := kafka.Ping(ctx, n.producer); err != nil {
			http.Error(w, "kafka: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		if err := n.store.Ping(ctx); err != nil {
			http.Error(w, "store: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		if n.services != nil {
			if err := n.services.ping(ctx); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}

func (n *Node) close() {
	if n.services != nil {
		n.services.close()
	}
	if n.socialConn != nil {
		n.socialConn.Close()
	}
	if n.planeLn != nil {
		n.planeLn.Close()
	}
	if n.httpLn != nil {
		n.httpLn.Close()
	}
	if n.producer != nil {
		n.producer.Close()
	}
	if n.store != nil {
		n.store.Close()
	}
	if n.embedded != nil {
		n.embedded.Close()
	}
}
