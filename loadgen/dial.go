package loadgen

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/surgechat/surge/internal/auth"
	"github.com/surgechat/surge/loadgen/internal/wsconn"
)

// maxInflight bounds a worker's dials in progress.
const maxInflight = 512

// dialer opens authenticated connections to the target, minting tokens
// from the server's keyring.
type dialer struct {
	cfg    *Config
	addr   string // host:port
	path   string
	target net.IP
	ring   *auth.Keyring
}

func newDialer(cfg *Config) (*dialer, error) {
	addr, ip, path, err := resolveTarget(cfg.Target)
	if err != nil {
		return nil, err
	}
	d := &dialer{cfg: cfg, addr: addr, path: path, target: ip}
	if cfg.usesKeys() {
		if d.ring, err = auth.LoadOrCreateKeyring(cfg.Keys); err != nil {
			return nil, fmt.Errorf("keyring: %w", err)
		}
	}
	return d, nil
}

// dial connects user as connection number i (which picks the source
// address).
func (d *dialer) dial(ctx context.Context, user string, i int) (*wsconn.Conn, error) {
	tok, err := d.ring.Issue(d.cfg.UserPrefix+user, []string{"user"}, d.cfg.Deadline+time.Hour, time.Now())
	if err != nil {
		return nil, fmt.Errorf("issue token: %w", err)
	}
	return d.dialToken(ctx, tok, i)
}

// dialToken connects with token (from the API's login) as connection
// number i.
func (d *dialer) dialToken(ctx context.Context, tok string, i int) (*wsconn.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.ConnectTimeout)
	defer cancel()
	return wsconn.Dial(ctx, d.addr, d.path, tok, d.cfg.srcIP(i, d.target))
}

// dialPaced calls attempt for k = 0..n-1 at rate per second (open loop: k
// is due at start + k/rate, and attempt gets that intended time to measure
// from), at most maxInflight at once. attempt may return a function to run
// afterwards on a goroutine of its own, such as the connection's read loop.
// dialPaced returns when every attempt has returned.
func dialPaced(ctx context.Context, n int, rate float64, attempt func(ctx context.Context, k int, intended time.Time) func()) error {
	sem := make(chan struct{}, maxInflight)
	var wg sync.WaitGroup
	defer wg.Wait()
	start := time.Now()
	for k := range n {
		intended := start.Add(time.Duration(float64(k) / rate * float64(time.Second)))
		if err := sleepUntil(ctx, intended); err != nil {
			return err
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		wg.Add(1)
		go func() {
			hold := attempt(ctx, k, intended)
			<-sem
			wg.Done()
			if hold != nil {
				// A fresh goroutine: the dial grew this one's stack, and an
				// idle read loop needs far less.
				go hold()
			}
		}()
	}
	return nil
}

// sleepUntil waits for t or ctx.
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
