package account

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// ThrottleConfig bounds failed logins, per account and per client address,
// in fixed windows that start at a key's first failure. It is kept in
// memory, per process: behind several account processes an attacker gets
// each process's allowance.
type ThrottleConfig struct {
	// AccountFailures is how many failed logins one username may have in
	// Window before further attempts are refused until the window ends.
	// A successful login clears the count. Zero means 5; negative turns
	// the per-account limit off.
	AccountFailures int
	// AddressFailures is the same for one client address (IPv6 addresses
	// count per /64). Zero means 20; negative turns it off.
	AddressFailures int
	// Window is the length of a window. Zero (or negative) means 15
	// minutes.
	Window time.Duration
	// MaxKeys bounds the usernames, and separately the addresses, tracked
	// at once. When full, expired windows are dropped first, then
	// counters below their limit, then arbitrary ones. Zero (or negative)
	// means 100,000.
	MaxKeys int
}

func (c *ThrottleConfig) setDefaults() {
	if c.AccountFailures == 0 {
		c.AccountFailures = 5
	}
	if c.AddressFailures == 0 {
		c.AddressFailures = 20
	}
	if c.Window <= 0 {
		c.Window = 15 * time.Minute
	}
	if c.MaxKeys <= 0 {
		c.MaxKeys = 100_000
	}
}

// limiter counts attempts per key in fixed windows. Attempts are counted
// when they start (take), not when they fail, so concurrent attempts
// cannot slip past the limit; a success takes its attempt back (undo) or
// clears the key (reset). It is safe for concurrent use.
type limiter struct {
	limit  int // < 0: unlimited
	window time.Duration
	max    int

	mu sync.Mutex
	m  map[string]counter
}

type counter struct {
	start time.Time // of the window
	n     int       // attempts in it
}

func newLimiter(limit int, window time.Duration, max int) *limiter {
	return &limiter{limit: limit, window: window, max: max, m: make(map[string]counter)}
}

// take counts one attempt for key as of now. If key has used up its
// window, it counts nothing and returns false and the time until the
// window ends.
func (l *limiter) take(key string, now time.Time) (bool, time.Duration) {
	if l.limit < 0 {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.m[key]
	if !ok || now.Sub(c.start) >= l.window {
		if !ok && len(l.m) >= l.max {
			l.makeRoom(now)
		}
		c = counter{start: now}
	}
	if c.n >= l.limit {
		return false, c.start.Add(l.window).Sub(now)
	}
	c.n++
	l.m[key] = c
	return true, 0
}

// undo takes back an attempt that take counted.
func (l *limiter) undo(key string) {
	if l.limit < 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if c, ok := l.m[key]; ok {
		if c.n <= 1 {
			delete(l.m, key)
		} else {
			c.n--
			l.m[key] = c
		}
	}
}

// reset forgets key.
func (l *limiter) reset(key string) {
	if l.limit < 0 {
		return
	}
	l.mu.Lock()
	delete(l.m, key)
	l.mu.Unlock()
}

// makeRoom shrinks a full map to 7/8 of max: expired windows first, then
// counters that block nobody, then arbitrary ones (map order is random).
// Keeping the blocking counters for last means flooding the map with new
// keys does not lift a block. The O(n) sweeps are amortised over the
// max/8 insertions that the freed room allows.
func (l *limiter) makeRoom(now time.Time) {
	target := l.max - l.max/8 - 1
	for k, c := range l.m {
		if now.Sub(c.start) >= l.window {
			delete(l.m, k)
		}
	}
	for k, c := range l.m {
		if len(l.m) <= target {
			return
		}
		if c.n < l.limit {
			delete(l.m, k)
		}
	}
	for k := range l.m {
		if len(l.m) <= target {
			return
		}
		delete(l.m, k)
	}
}

// size returns the number of keys tracked.
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// throttle combines the per-account and per-address limiters.
type throttle struct {
	accounts, addresses *limiter
}

func newThrottle(c ThrottleConfig) *throttle {
	return &throttle{
		accounts:  newLimiter(c.AccountFailures, c.Window, c.MaxKeys),
		addresses: newLimiter(c.AddressFailures, c.Window, c.MaxKeys),
	}
}

// throttled says which limit refused an attempt and for how long.
type throttled struct {
	what  string // "account" or "address"
	retry time.Duration
}

// begin counts a login attempt for account from addr; either may be ""
// (an impossible username, an in-process caller) and is then not
// counted. It returns nil if the attempt may go ahead, else which limit
// refused it; a refused attempt counts against neither.
func (t *throttle) begin(account, addr string, now time.Time) *throttled {
	if addr != "" {
		if ok, retry := t.addresses.take(addr, now); !ok {
			return &throttled{what: "address", retry: retry}
		}
	}
	if account != "" {
		if ok, retry := t.accounts.take(account, now); !ok {
			if addr != "" {
				t.addresses.undo(addr)
			}
			return &throttled{what: "account", retry: retry}
		}
	}
	return nil
}

// succeeded clears the account's failures and takes back the address's
// attempt.
func (t *throttle) succeeded(account, addr string) {
	if account != "" {
		t.accounts.reset(account)
	}
	if addr != "" {
		t.addresses.undo(addr)
	}
}

// abort takes back an attempt that ended in neither success nor failure
// (a server error, a cancelled call).
func (t *throttle) abort(account, addr string) {
	if account != "" {
		t.accounts.undo(account)
	}
	if addr != "" {
		t.addresses.undo(addr)
	}
}

// clientAddr returns the key the throttle counts a caller's address under:
// the first address of the "x-forwarded-for" metadata when trusted (the
// HTTP gateway sets it) and it parses, else the gRPC peer's IP. IPv6
// addresses are cut to their /64, the smallest block a host usually gets.
// It returns "" when there is no address (an in-process call).
func clientAddr(md metadata.MD, p *peer.Peer, trustForwarded bool) string {
	if trustForwarded {
		if v := md.Get("x-forwarded-for"); len(v) > 0 {
			first, _, _ := strings.Cut(v[0], ",")
			if a, err := netip.ParseAddr(strings.TrimSpace(first)); err == nil {
				return addrKey(a)
			}
		}
	}
	if p == nil || p.Addr == nil {
		return ""
	}
	s := p.Addr.String()
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return s // not IP (a unix socket, a bufconn): one key for all
	}
	return addrKey(a)
}

func addrKey(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	pfx, _ := a.Prefix(64)
	return pfx.String()
}
