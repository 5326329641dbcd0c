// Command loadgen drives a running Surge over loopback, measures latency
// without coordinated omission, verifies delivery and checks SLOs. See
// loadgen/README.md.
//
// Exit status: 0 when every SLO held, 1 when one was missed, 2 on bad
// usage or a run that could not be carried out.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/surgechat/surge/loadgen"
)

const usage = `usage: loadgen <scenario> [flags]

scenarios:
  idle     open --conns connections and hold them with heartbeats
  direct   --pairs senders send to receivers at --rate msgs/s; verify delivery

Run "loadgen <scenario> -h" for the flags. Exit status: 0 all SLOs held,
1 an SLO was missed, 2 usage or runtime error.
`

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

type sloFlag []string

func (s *sloFlag) String() string     { return strings.Join(*s, ",") }
func (s *sloFlag) Set(v string) error { *s = append(*s, v); return nil }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return 0
		}
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Hidden: a worker process started by the coordinator (loadgen <scenario>
	// --worker-id N) reads everything else from stdin.
	if len(args) == 3 && args[1] == "--worker-id" {
		id, err := strconv.Atoi(args[2])
		if err != nil {
			fmt.Fprintln(stderr, "loadgen: bad --worker-id:", args[2])
			return 2
		}
		if err := loadgen.RunWorker(ctx, id, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintf(stderr, "loadgen worker %d: %v\n", id, err)
			return 2
		}
		return 0
	}

	cfg := loadgen.Config{Scenario: args[0]}
	fs := flag.NewFlagSet("loadgen "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	var slos sloFlag
	var jsonPath string
	fs.StringVar(&cfg.Target, "target", "ws://127.0.0.1:7000/ws", "the edge's WebSocket URL (loopback only)")
	fs.StringVar(&cfg.Keys, "keys", "surge-data/keys.json", "the server's keyring (keys.json in its data dir), to mint tokens")
	fs.StringVar(&cfg.UserPrefix, "user-prefix", "", "prefix of every user id")
	fs.IntVar(&cfg.Workers, "workers", 1, "worker processes; each holds its share of the connections")
	fs.IntVar(&cfg.SrcAddrs, "src-addrs", 0, "source addresses 127.0.0.2.. to spread connections over (0: one per 10,000)")
	fs.Float64Var(&cfg.ConnectRate, "connect-rate", 1000, "new connections per second, over all workers")
	fs.DurationVar(&cfg.ConnectTimeout, "connect-timeout", 10*time.Second, "bound on one connection's dial and upgrade")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured window: hold time (idle) or send time after warm-up (direct)")
	fs.DurationVar(&cfg.Deadline, "deadline", 0, "hard stop of the whole run (0: expected length + 60s)")
	fs.StringVar(&cfg.MetricsURL, "metrics-url", "", "server /metrics to scrape before and while holding, e.g. http://127.0.0.1:9100/metrics")
	fs.Var(&slos, "slo", "objective such as 'p99(delivery)<10ms', 'lost==0', 'rate>=5000/s' (repeatable)")
	fs.BoolVar(&cfg.NoVerifySLOs, "no-verify-slos", false, "drop the implicit lost/duplicated/reordered/gaps/unknown==0 SLOs")
	fs.StringVar(&jsonPath, "json", "", "write the versioned JSON report to this file")
	switch cfg.Scenario {
	case "idle":
		fs.IntVar(&cfg.Idle.Conns, "conns", 1000, "connections over all workers, users idle-<i>")
		fs.DurationVar(&cfg.Idle.Heartbeat, "heartbeat", 30*time.Second, "application ping interval per connection, jittered ±20% (negative: none)")
	case "direct":
		fs.IntVar(&cfg.Direct.Pairs, "pairs", 10, "sender/receiver pairs s-<i> → r-<i>")
		fs.Float64Var(&cfg.Direct.Rate, "rate", 100, "messages per second over all pairs (open loop)")
		fs.DurationVar(&cfg.Direct.Warmup, "warmup", 2*time.Second, "sending before the measured window, excluded from histograms")
		fs.DurationVar(&cfg.Direct.Drain, "drain", 5*time.Second, "wait after the last send for acks and deliveries")
		fs.IntVar(&cfg.Direct.BodySize, "size", 0, "pad message bodies to this many bytes")
	default:
		fmt.Fprintf(stderr, "loadgen: unknown scenario %q\n\n%s", cfg.Scenario, usage)
		return 2
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "loadgen: unexpected arguments %q\n", fs.Args())
		return 2
	}
	cfg.SLOs = slos
	cfg.Stderr = stderr

	rep, err := loadgen.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "loadgen:", err)
		return loadgen.ExitCode(nil, err)
	}
	rep.WriteText(stdout)
	if jsonPath != "" {
		if err := rep.WriteJSON(jsonPath); err != nil {
			fmt.Fprintln(stderr, "loadgen: write report:", err)
			return 2
		}
	}
	return loadgen.ExitCode(rep, nil)
}
