package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/surgechat/surge/internal/node"
)

func up(args []string) error {
	fs := flag.NewFlagSet("surge up", flag.ExitOnError)
	var cfg node.Config
	var kafkaList, dsns, logLevel string
	fs.StringVar(&cfg.DataDir, "data-dir", "surge-data", "directory that keeps all state (keys, embedded Kafka log, embedded store)")
	fs.StringVar(&cfg.WSAddr, "ws", "127.0.0.1:7000", "WebSocket listen address (path /ws)")
	fs.StringVar(&cfg.HTTPAddr, "http", "127.0.0.1:9100", "address of /metrics, /healthz and /readyz")
	fs.StringVar(&kafkaList, "kafka", "", "comma-separated Kafka brokers; empty runs the embedded broker")
	fs.IntVar(&cfg.KafkaPort, "kafka-port", 19092, "embedded broker's loopback port (-1: any free port)")
	fs.IntVar(&cfg.Partitions, "partitions", 16, "partitions of the owner topic (fixed once the topic exists)")
	fs.StringVar(&cfg.StoreDriver, "store", "sqlite", `store driver: "sqlite" (embedded, in --data-dir) or "mysql"`)
	fs.StringVar(&dsns, "store-dsn", "", "comma-separated store DSNs; partition p uses DSN p mod count")
	fs.StringVar(&cfg.Keys, "keys", "", "JWT keyring file (default <data-dir>/keys.json, created if missing)")
	fs.IntVar(&cfg.Edge.MaxConns, "max-conns", 0, "connection cap of the edge (0: derived from the file limit)")
	fs.BoolVar(&cfg.Edge.ReusePort, "reuse-port", false, "set SO_REUSEPORT so several processes share the WebSocket port")
	fs.Float64Var(&cfg.Edge.SendRate, "send-rate", 100, "sends per second allowed per connection")
	fs.DurationVar(&cfg.Edge.Heartbeat, "heartbeat", 30*time.Second, "ping a connection quiet for this long")
	fs.IntVar(&cfg.Edge.Loops, "loops", 0, "edge event loops (0: one per CPU)")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	_ = fs.Parse(args)
	if kafkaList != "" {
		cfg.Kafka = strings.Split(kafkaList, ",")
	}
	if cfg.KafkaPort == 0 {
		cfg.KafkaPort = -1
	}
	if dsns != "" {
		cfg.StoreDSNs = strings.Split(dsns, ",")
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
