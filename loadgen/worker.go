package loadgen

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The worker protocol. The coordinator writes the Config as the first JSON
// line of the worker's stdin, then commands; the worker writes events as
// JSON lines on stdout:
//
//	worker → hello (config read) → ready (share prepared) → progress... → done (Run returned)
//	coordinator → start{at} once all are ready → finish once all are done
//	worker → result (after Close), then exits
//
// The coordinator starts every worker's Run at the same instant and takes
// its measurements of the server between done and finish, while the
// connections are still held. It may send abort at any time after start
// (an objective was breached): the worker stops sending, drains and goes
// on to done as usual. A worker whose stdin closes stops at once.

type command struct {
	Cmd string `json:"cmd"`          // "start", "abort" or "finish"
	At  int64  `json:"at,omitempty"` // start: unix nanoseconds
}

type event struct {
	Type   string  `json:"type"` // "hello", "ready", "progress", "done", "result" or "error"
	Worker int     `json:"worker"`
	Error  string  `json:"error,omitempty"`
	Result *Result `json:"result,omitempty"`
}

// work runs one worker's share, obeying cmds and reporting through emit.
func work(ctx context.Context, cfg *Config, sh share, cmds <-chan command, emit func(event)) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.Deadline)
	defer cancel()
	fail := func(err error) error {
		emit(event{Type: "error", Worker: sh.id, Error: err.Error()})
		return err
	}
	emit(event{Type: "hello", Worker: sh.id})
	sc, err := scenarios[cfg.Scenario].new(cfg, sh)
	if err != nil {
		return fail(err)
	}
	defer sc.Close()
	snapshot := func() *Result {
		r := sc.Snapshot()
		r.Gauges["worker_peak_rss_bytes"] = peakRSS()
		return r
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				emit(event{Type: "progress", Worker: sh.id, Result: snapshot()})
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	// Abort may come at any time: it closes stop; the rest are taken in
	// turn by next.
	stopRun := make(chan struct{})
	inbox := make(chan command, 4)
	go func() {
		defer close(inbox)
		aborted := false
		for {
			var c command
			var ok bool
			select {
			case c, ok = <-cmds:
			case <-ctx.Done():
				return
			}
			if !ok {
				return
			}
			if c.Cmd == "abort" {
				if !aborted {
					aborted = true
					close(stopRun)
				}
				continue
			}
			select {
			case inbox <- c:
			case <-ctx.Done():
				return
			}
		}
	}()
	next := func(want string) (command, error) {
		select {
		case c, ok := <-inbox:
			if !ok {
				return c, errors.New("coordinator went away")
			}
			if c.Cmd != want {
				return c, fmt.Errorf("got command %q, want %q", c.Cmd, want)
			}
			return c, nil
		case <-ctx.Done():
			return command{}, fmt.Errorf("waiting for %q: %w", want, ctx.Err())
		}
	}
	if err := sc.Prepare(ctx); err != nil {
		return fail(fmt.Errorf("prepare: %w", err))
	}
	emit(event{Type: "ready", Worker: sh.id, Result: snapshot()})
	c, err := next("start")
	if err != nil {
		return fail(err)
	}
	if err := sc.Run(ctx, time.Unix(0, c.At), stopRun); err != nil {
		return fail(fmt.Errorf("run: %w", err))
	}
	emit(event{Type: "done", Worker: sh.id, Result: snapshot()})
	if _, err := next("finish"); err != nil {
		return fail(err)
	}
	sc.Close()
	emit(event{Type: "result", Worker: sh.id, Result: snapshot()})
	return nil
}

// RunWorker is the body of a worker process (loadgen --worker-id id): it
// reads its Config and commands from in and writes events to out.
func RunWorker(ctx context.Context, id int, in io.Reader, out io.Writer) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	if !sc.Scan() {
		return errors.New("worker: no config on stdin")
	}
	var cfg Config
	if err := json.Unmarshal(sc.Bytes(), &cfg); err != nil {
		return fmt.Errorf("worker: config: %w", err)
	}
	cfg.Stderr = os.Stderr
	if _, err := raiseFileLimit(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmds := make(chan command, 4)
	go func() {
		defer cancel() // stdin closed: the coordinator is gone or gave up
		for sc.Scan() {
			var c command
			if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
				fmt.Fprintf(os.Stderr, "worker %d: bad command: %v\n", id, err)
				return
			}
			select {
			case cmds <- c:
			case <-ctx.Done():
				return
			}
		}
	}()
	var mu sync.Mutex
	enc := json.NewEncoder(out)
	emit := func(e event) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(e)
	}
	return work(ctx, &cfg, share{id: id, of: cfg.Workers}, cmds, emit)
}

// peakRSS is the process's peak resident set (VmHWM) in bytes, or 0 if
// unknown.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
