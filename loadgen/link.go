package loadgen

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// link is the coordinator's end of one worker.
type link interface {
	send(command)
	wait() // after the context is cancelled: until the worker is gone
}

// inProcess runs the only worker as a goroutine.
type inProcess struct {
	cmds chan command
	done chan struct{}
}

func startInProcess(ctx context.Context, cfg *Config, events chan<- event) link {
	l := &inProcess{cmds: make(chan command, 4), done: make(chan struct{})}
	emit := func(e event) {
		select {
		case events <- e:
		case <-ctx.Done():
		}
	}
	go func() {
		defer close(l.done)
		err := work(ctx, cfg, share{id: 0, of: 1}, l.cmds, emit)
		e := event{Type: "exit", Worker: 0}
		if err != nil {
			e.Error = err.Error()
		}
		emit(e)
	}()
	return l
}

func (l *inProcess) send(c command) { l.cmds <- c }
func (l *inProcess) wait()          { <-l.done }

// process is a worker process: loadgen re-executed with --worker-id.
type process struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	stdin io.WriteCloser
	done  chan struct{}
}

func startProcess(ctx context.Context, cfg *Config, id int, events chan<- event) (link, error) {
	exe := cfg.Exe
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("find the loadgen binary to start workers: %w", err)
		}
	}
	cmd := exec.CommandContext(ctx, exe, cfg.Scenario, "--worker-id", strconv.Itoa(id))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = cfg.Stderr
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker %d (%s): %w", id, exe, err)
	}
	p := &process{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	b, _ := json.Marshal(cfg)
	if _, err := stdin.Write(append(b, '\n')); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("worker %d: send config: %w", id, err)
	}
	go func() {
		defer close(p.done)
		emit := func(e event) bool {
			select {
			case events <- e:
				return true
			case <-ctx.Done():
				return false
			}
		}
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 64<<20)
		for sc.Scan() {
			var e event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				fmt.Fprintf(cfg.Stderr, "worker %d: %s\n", id, sc.Bytes()) // not protocol: pass it on
				continue
			}
			e.Worker = id
			if !emit(e) {
				break
			}
		}
		err := cmd.Wait()
		e := event{Type: "exit", Worker: id}
		if err != nil {
			e.Error = err.Error()
		}
		emit(e)
	}()
	return p, nil
}

func (p *process) send(c command) {
	b, _ := json.Marshal(c)
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = p.stdin.Write(append(b, '\n'))
}

func (p *process) wait() {
	p.mu.Lock()
	_ = p.stdin.Close()
	p.mu.Unlock()
	<-p.done
}
