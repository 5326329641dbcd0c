package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/surgechat/surge/internal/node"
)

// serve runs a node with the given roles: `surge up` runs them all,
// `surge edge` and `surge shard` one each against shared Kafka and store.
func serve(command string, roles []string, args []string) error {
	fs := flag.NewFlagSet("surge "+command, flag.ExitOnError)
	cfg := node.Config{Roles: roles}
	var kafkaList, dsns, shards, logLevel, operators, origins string
	fs.StringVar(&cfg.DataDir, "data-dir", "surge-data", "directory that keeps all state (keys, embedded Kafka log, embedded store)")
	fs.StringVar(&cfg.WSAddr, "ws", "127.0.0.1:7000", "WebSocket listen address (path /ws)")
	fs.StringVar(&cfg.HTTPAddr, "http", "127.0.0.1:9100", "address of /metrics, /healthz and /readyz")
	fs.StringVar(&kafkaList, "kafka", "", "comma-separated Kafka brokers; empty runs the embedded broker (up only)")
	fs.IntVar(&cfg.KafkaPort, "kafka-port", 19092, "embedded broker's loopback port (-1: any free port)")
	fs.IntVar(&cfg.Partitions, "partitions", 16, "partitions of the owner topic (fixed once the topic exists)")
	fs.StringVar(&cfg.StoreDriver, "store", "sqlite", `store driver: "sqlite" (embedded) or "mysql"`)
	fs.StringVar(&dsns, "store-dsn", "", "comma-separated store DSNs; partition p uses DSN p mod count (sqlite default: <data-dir>/inbox.db)")
	fs.StringVar(&cfg.Keys, "keys", "", "JWT keyring file (default <data-dir>/keys.json, created if missing)")
	fs.StringVar(&cfg.PlaneAddr, "plane", "127.0.0.1:7100", `where the shard role accepts edges of other processes ("off": none)`)
	fs.StringVar(&shards, "shards", "", "comma-separated plane addresses of the other shard nodes to take deliveries from (required for surge edge)")
	fs.StringVar(&cfg.AccountAddr, "grpc-account", "127.0.0.1:60051", "gRPC address of the account service (services role)")
	fs.StringVar(&cfg.SocialAddr, "grpc-social", "127.0.0.1:60052", "gRPC address of the social service (services role)")
	fs.StringVar(&cfg.MessageAddr, "grpc-message", "127.0.0.1:60053", "gRPC address of the message service (services role)")
	fs.StringVar(&cfg.GatewayAddr, "gateway", "127.0.0.1:8080", `address of the public HTTP JSON API ("off": none)`)
	fs.StringVar(&cfg.Social, "social", "", "gRPC target of the social service, for edge and shard nodes (up runs its own)")
	fs.StringVar(&cfg.ServiceTokenFile, "service-token-file", "", "token Surge's roles present to the services (default <data-dir>/service.token, created if missing)")
	fs.StringVar(&cfg.DirectPolicy, "direct-policy", "anyone", `who may send a user direct messages: "anyone" or "friends" (blocks apply either way)`)
	fs.IntVar(&cfg.MaxGroupSize, "max-group-size", 500, "most members a group may have; larger audiences use topics")
	fs.StringVar(&operators, "operators", "", "comma-separated usernames that get the operator role when they register")
	fs.BoolVar(&cfg.TrustForwardedFor, "trust-forwarded-for", false, "take HTTP clients' addresses from X-Forwarded-For (only behind a reverse proxy that sets it)")
	fs.StringVar(&origins, "cors-origins", "", `comma-separated browser origins allowed to call the HTTP API ("*": any)`)
	fs.IntVar(&cfg.Edge.MaxConns, "max-conns", 0, "connection cap of the edge (0: derived from the file limit)")
	fs.BoolVar(&cfg.Edge.ReusePort, "reuse-port", false, "set SO_REUSEPORT so several processes share the WebSocket port")
	fs.Float64Var(&cfg.Edge.SendRate, "send-rate", 100, "sends per second allowed per connection")
	fs.DurationVar(&cfg.Edge.Heartbeat, "heartbeat", 30*time.Second, "ping a connection quiet for this long; close it after 3x")
	fs.IntVar(&cfg.Edge.Loops, "loops", 0, "edge event loops (0: one per CPU)")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	_ = fs.Parse(args)
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected arguments %q", command, fs.Args())
	}
	cfg.Kafka = split(kafkaList)
	cfg.StoreDSNs = split(dsns)
	cfg.Shards = split(shards)
	cfg.Operators = split(operators)
	cfg.CORSOrigins = split(origins)
	if cfg.KafkaPort == 0 {
		cfg.KafkaPort = -1
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return err
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	n, err := node.New(ctx, cfg)
	if err != nil {
		return err
	}
	return n.Run(ctx)
}

func split(list string) []string {
	if list == "" {
		return nil
	}
	return strings.Split(list, ",")
}
