// Command loadgen drives a running Surge over loopback, measures latency
// without coordinated omission, verifies delivery and checks SLOs. See
// loadgen/README.md.
//
// Exit status: 0 when every SLO held, 1 when one was missed (or the run
// was aborted on a breach), 2 on bad usage or a run that could not be
// carried out.
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

func usage() string {
	return `usage: loadgen <scenario> [flags]

scenarios:
` + loadgen.Usage() + `
Run "loadgen <scenario> -h" for the flags. Exit status: 0 all SLOs held,
1 an SLO was missed, 2 usage or runtime error.
`
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

type listFlag []string

func (s *listFlag) String() string     { return strings.Join(*s, ",") }
func (s *listFlag) Set(v string) error { *s = append(*s, v); return nil }

// sending are the scenarios with a send schedule.
var sending = map[string]bool{"direct": true, "group": true, "topic": true, "reconnect": true, "api": true}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") || args[0] == "help" {
		fmt.Fprint(stderr, usage())
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

	sc := args[0]
	cfg := loadgen.Config{Scenario: sc}
	fs := flag.NewFlagSet("loadgen "+sc, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var slos listFlag
	var jsonPath, htmlPath, ramp string
	var rateStart, rateEnd float64
	switch sc {
	case "idle", "direct", "group", "topic", "reconnect", "api", "baseline":
	default:
		fmt.Fprintf(stderr, "loadgen: unknown scenario %q\n\n%s", sc, usage())
		return 2
	}
	if sc != "baseline" {
		fs.StringVar(&cfg.Target, "target", "ws://127.0.0.1:7000/ws", "the edge's WebSocket URL (loopback only)")
		fs.StringVar(&cfg.UserPrefix, "user-prefix", "", "prefix of every user id")
		fs.IntVar(&cfg.Workers, "workers", 1, "worker processes; each holds its share of the connections")
		fs.IntVar(&cfg.SrcAddrs, "src-addrs", 0, "source addresses 127.0.0.2.. to spread connections over (0: one per 10,000; 16 at least for API scenarios)")
		fs.Float64Var(&cfg.ConnectRate, "connect-rate", 1000, "new connections per second, over all workers")
		fs.DurationVar(&cfg.ConnectTimeout, "connect-timeout", 10*time.Second, "bound on one connection's dial and upgrade")
		fs.StringVar(&cfg.MetricsURL, "metrics-url", "", "server /metrics to scrape before and while holding, e.g. http://127.0.0.1:9100/metrics")
	}
	switch sc {
	case "idle", "direct", "reconnect":
		fs.StringVar(&cfg.Keys, "keys", "surge-data/keys.json", "the server's keyring (keys.json in its data dir), to mint tokens")
	case "group", "topic", "api":
		fs.StringVar(&cfg.API, "api", "http://127.0.0.1:8080", "the HTTP API (surge up --gateway) to register, log in and create groups through")
		fs.StringVar(&cfg.Password, "password", "loadgen-password-1", "password of the users loadgen registers")
		fs.IntVar(&cfg.APIConcurrency, "api-concurrency", 8, "setup requests (register, login, create group) in flight per worker")
	}
	if sc == "group" || sc == "topic" {
		fs.StringVar(&cfg.OperatorUser, "operator-user", "loadgen-op", "operator to publish as (topic) or create groups as (--group-creator operator); registered if new, so start surge up with --operators <name>")
		fs.StringVar(&cfg.OperatorPassword, "operator-password", "", "the operator's password (default: --password)")
		fs.DurationVar(&cfg.Baseline, "baseline", 0, "after the run, measure plain loopback socket writes for this long (half one payload a write, half 16) and report them beside the fan-out")
	}
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured window: hold time (idle), send time after warm-up (the others)")
	fs.DurationVar(&cfg.Deadline, "deadline", 0, "hard stop of the whole run (0: expected length + 60s)")
	fs.StringVar(&cfg.MetricsListen, "metrics-listen", "", "serve loadgen's own /metrics here during the run, e.g. 127.0.0.1:9200")
	fs.Var(&slos, "slo", "objective such as 'p99(delivery)<10ms', 'lost==0', 'rate>=5000/s' (repeatable)")
	fs.StringVar(&cfg.SLOFile, "slo-file", "", "file of objectives, one a line, '#' comments")
	fs.BoolVar(&cfg.AbortOnBreach, "abort-on-breach", false, "stop at the first breach of an objective judged live (rates, late_pct, counts such as lost so far, max): exit 1")
	fs.BoolVar(&cfg.NoVerifySLOs, "no-verify-slos", false, "drop the implicit lost/duplicated/reordered/gaps/unknown==0 SLOs")
	fs.StringVar(&jsonPath, "json", "", "write the versioned JSON report to this file")
	fs.StringVar(&htmlPath, "html", "", "write the single-file HTML report (charts inline) to this file")
	if sending[sc] {
		fs.Float64Var(&cfg.Rate, "rate", 0, "events per second over all workers: messages, publishes, API operations (0: the scenario's default)")
		fs.StringVar(&ramp, "ramp", "", "ramped rate, time:rate points from 0, e.g. 0:1000/s,30s:5000/s (linear between, held after)")
		fs.Float64Var(&rateStart, "rate-start", 0, "linear ramp from this rate at the start ...")
		fs.Float64Var(&rateEnd, "rate-end", 0, "... to this one at the end of warm-up + duration")
		if sc != "reconnect" {
			fs.BoolVar(&cfg.ClosedLoop, "closed-loop", false, "send the next only after an answer, with --in-flight outstanding per sender, instead of on a schedule")
			fs.IntVar(&cfg.InFlight, "in-flight", 1, "closed loop: sends outstanding per sender connection (topic: per topic; api: in all)")
		}
		fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "sending before the measured window, excluded from histograms and rates")
		fs.DurationVar(&cfg.Drain, "drain", 5*time.Second, "wait after the last send for answers and deliveries")
		fs.IntVar(&cfg.BodySize, "size", 0, "pad message bodies to this many bytes")
	}
	switch sc {
	case "idle":
		fs.IntVar(&cfg.Idle.Conns, "conns", 1000, "connections over all workers, users idle-<i>")
		fs.DurationVar(&cfg.Idle.Heartbeat, "heartbeat", 30*time.Second, "application ping interval per connection, jittered ±20% (negative: none)")
	case "direct":
		fs.IntVar(&cfg.Direct.Pairs, "pairs", 10, "sender/receiver pairs s-<i> → r-<i>")
	case "group":
		fs.IntVar(&cfg.Group.Groups, "groups", 10, "groups over all workers")
		fs.IntVar(&cfg.Group.Size, "group-size", 10, "members per group, users lgg<g>m<i>, all connected")
		fs.StringVar(&cfg.Group.Creator, "group-creator", "owner", "who creates the groups: owner (the first member) or operator")
	case "topic":
		fs.IntVar(&cfg.Topic.Topics, "topics", 1, "topics over all workers")
		fs.IntVar(&cfg.Topic.Subscribers, "subscribers", 100, "subscribed connections over all topics, users lgt<i>")
	case "reconnect":
		fs.IntVar(&cfg.Reconnect.Users, "users", 1000, "receivers that drop at once and reconnect")
		fs.IntVar(&cfg.Reconnect.Senders, "senders", 0, "sender connections (0: one per 50 msgs/s)")
		fs.DurationVar(&cfg.Reconnect.StormAt, "storm-at", 0, "when every receiver drops, from the start (0: warm-up + duration/3)")
		fs.DurationVar(&cfg.Reconnect.Offline, "offline", time.Second, "how long receivers stay away before reconnecting")
		fs.Float64Var(&cfg.Reconnect.Rate, "reconnect-rate", 0, "reconnects per second (0: --connect-rate)")
	case "api":
		fs.IntVar(&cfg.APILoad.Users, "users", 100, "pool of registered users (pairs lga<2p>, lga<2p+1>)")
		fs.StringVar(&cfg.APILoad.Mix, "mix", "register=1,login=2,friend=2,history=4,sync=1", "operation weights; ops: register, login, friend, history, sync, me")
		fs.IntVar(&cfg.APILoad.Seed, "seed", 20, "direct messages sent within each pair before the run, for history and sync to read")
	case "baseline":
		fs.IntVar(&cfg.Base.Conns, "conns", 100, "receiving connections")
		fs.IntVar(&cfg.Base.Size, "size", 256, "bytes per write")
		fs.IntVar(&cfg.Base.Writers, "writers", 0, "writing goroutines (0: GOMAXPROCS)")
		fs.IntVar(&cfg.Base.Batch, "batch", 1, "payloads per write call, as a server that coalesces queued frames")
		fs.DurationVar(&cfg.Warmup, "warmup", 0, "writing before the measured window")
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
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case ramp != "" && (set["rate-start"] || set["rate-end"]):
		fmt.Fprintln(stderr, "loadgen: give --ramp or --rate-start/--rate-end, not both")
		return 2
	case ramp != "":
		pts, err := loadgen.ParseRamp(ramp)
		if err != nil {
			fmt.Fprintln(stderr, "loadgen: --ramp:", err)
			return 2
		}
		cfg.Ramp = pts
	case set["rate-start"] || set["rate-end"]:
		cfg.Ramp = []loadgen.RatePoint{{At: 0, Rate: rateStart}, {At: cfg.Warmup + cfg.Duration, Rate: rateEnd}}
	}
	cfg.SLOs = slos
	cfg.Stderr = stderr

	rep, err := loadgen.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "loadgen:", err)
		return loadgen.ExitCode(nil, err)
	}
	// Files first: a summary piped into head must not cost the report.
	if jsonPath != "" {
		if err := rep.WriteJSON(jsonPath); err != nil {
			fmt.Fprintln(stderr, "loadgen: write report:", err)
			return 2
		}
	}
	if htmlPath != "" {
		if err := rep.WriteHTML(htmlPath); err != nil {
			fmt.Fprintln(stderr, "loadgen: write HTML report:", err)
			return 2
		}
	}
	rep.WriteText(stdout)
	return loadgen.ExitCode(rep, nil)
}
