// Package socialcache is the message path's view of the social graph:
// group membership, the direct-message check and friend lists, fetched
// from the social service and cached.
//
// The cache degrades instead of failing: when the social service does not
// answer, a cached answer is used however old it is, so messages keep
// flowing through a social outage. Only a question never answered before
// fails. Membership entries are dropped when the group's shard sees that
// the membership changed (Invalidate). Safe for concurrent use.
package socialcache

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
)

// Membership is a group's members at a version.
type Membership struct {
	Version int64
	Members []string // sorted
	Exists  bool
}

// Has reports whether user is a member.
func (m *Membership) Has(user string) bool {
	_, ok := slices.BinarySearch(m.Members, user)
	return ok
}

// Direct is the answer to "may from send a direct message to to".
type Direct struct {
	Allowed bool
	Reason  string // "blocked" or "not_friends" when not allowed
}

// Source answers from the social service.
type Source interface {
	Membership(ctx context.Context, group string) (Membership, error)
	CheckDirect(ctx context.Context, from, to string) (Direct, error)
	FriendIDs(ctx context.Context, user string) ([]string, error)
}

// Config configures a Cache.
type Config struct {
	// MembershipTTL is how long a membership is used without asking again;
	// 0 means 5 minutes (changes also invalidate it).
	MembershipTTL time.Duration
	// DirectTTL is how long a direct-message answer is kept; 0 means 10s.
	DirectTTL time.Duration
	// FriendsTTL is how long a friend list is kept; 0 means 30s.
	FriendsTTL time.Duration
	// MaxEntries bounds each of the three maps; 0 means 100,000. A full
	// map is emptied, which costs a round of questions and no correctness.
	MaxEntries int
	// Metrics receives the cache's counters; nil means a private set.
	Metrics *vm.Set
	// Role labels the metrics ("edge", "shard").
	Role string
}

// Cache caches a Source.
type Cache struct {
	src Source
	cfg Config

	mu      sync.Mutex
	groups  map[string]entry[Membership]
	directs map[[2]string]entry[Direct]
	friends map[string]entry[[]string]

	refreshing sync.Map // refreshKey → true while a background refresh runs

	hits, misses, stale, degraded, failed *vm.Counter
}

type entry[T any] struct {
	v       T
	fetched time.Time
}

// New returns a cache over src.
func New(src Source, cfg Config) *Cache {
	if cfg.MembershipTTL <= 0 {
		cfg.MembershipTTL = 5 * time.Minute
	}
	if cfg.DirectTTL <= 0 {
		cfg.DirectTTL = 10 * time.Second
	}
	if cfg.FriendsTTL <= 0 {
		cfg.FriendsTTL = 30 * time.Second
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 100_000
	}
	if cfg.Metrics == nil {
		cfg.Metrics = vm.NewSet()
	}
	label := `{role="` + cfg.Role + `"}`
	return &Cache{
		src: src, cfg: cfg,
		groups:   make(map[string]entry[Membership]),
		directs:  make(map[[2]string]entry[Direct]),
		friends:  make(map[string]entry[[]string]),
		hits:     cfg.Metrics.NewCounter(`surge_social_cache_hits_total` + label),
		misses:   cfg.Metrics.NewCounter(`surge_social_cache_misses_total` + label),
		stale:    cfg.Metrics.NewCounter(`surge_social_cache_stale_total` + label),
		degraded: cfg.Metrics.NewCounter(`surge_social_degraded_total` + label),
		failed:   cfg.Metrics.NewCounter(`surge_social_unanswered_total` + label),
	}
}

// Membership returns group's membership.
func (c *Cache) Membership(ctx context.Context, group string) (Membership, error) {
	return lookup(c, ctx, c.groups, group, c.cfg.MembershipTTL, func(ctx context.Context) (Membership, error) {
		m, err := c.src.Membership(ctx, group)
		slices.Sort(m.Members)
		return m, err
	})
}

// Invalidate drops group's membership if it is older than version.
func (c *Cache) Invalidate(group string, version int64) {
	c.mu.Lock()
	if e, ok := c.groups[group]; ok && e.v.Version < version {
		delete(c.groups, group)
	}
	c.mu.Unlock()
}

// CheckDirect answers whether from may send a direct message to to.
func (c *Cache) CheckDirect(ctx context.Context, from, to string) (Direct, error) {
	return lookup(c, ctx, c.directs, [2]string{from, to}, c.cfg.DirectTTL, func(ctx context.Context) (Direct, error) {
		return c.src.CheckDirect(ctx, from, to)
	})
}

// Friends returns user's friends.
func (c *Cache) Friends(ctx context.Context, user string) ([]string, error) {
	return lookup(c, ctx, c.friends, user, c.cfg.FriendsTTL, func(ctx context.Context) ([]string, error) {
		return c.src.FriendIDs(ctx, user)
	})
}

// lookup returns a cached value. A fresh one is returned as it is; a
// stale one too, while a background refresh asks the source (so that a
// hot path never waits for an answer it already has, and a change reaches
// it within the TTL plus one round trip); with nothing cached it asks the
// source and waits.
func lookup[K comparable, V any](c *Cache, ctx context.Context, m map[K]entry[V], k K, ttl time.Duration, fetch func(context.Context) (V, error)) (V, error) {
	now := time.Now()
	c.mu.Lock()
	e, ok := m[k]
	c.mu.Unlock()
	if ok && now.Sub(e.fetched) < ttl {
		c.hits.Inc()
		return e.v, nil
	}
	if ok {
		c.stale.Inc()
		refresh(c, m, k, fetch)
		return e.v, nil
	}
	c.misses.Inc()
	return fill(c, ctx, m, k, fetch)
}

// refresh asks the source for k in the background, once at a time per key.
func refresh[K comparable, V any](c *Cache, m map[K]entry[V], k K, fetch func(context.Context) (V, error)) {
	key := refreshKey{m: fmt.Sprintf("%p", m), k: k}
	if _, busy := c.refreshing.LoadOrStore(key, true); busy {
		return
	}
	go func() {
		defer c.refreshing.Delete(key)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := fill(c, ctx, m, k, fetch); err != nil {
			c.degraded.Inc() // the stale value stays in use
		}
	}()
}

type refreshKey struct {
	m string // which map
	k any
}

// fill asks the source for k and caches the answer.
func fill[K comparable, V any](c *Cache, ctx context.Context, m map[K]entry[V], k K, fetch func(context.Context) (V, error)) (V, error) {
	now := time.Now()
	v, err := fetch(ctx)
	if err != nil {
		c.failed.Inc()
		return v, err
	}
	if empty, ok := any(v).([]string); ok && len(empty) == 0 {
		return v, nil // a user without friends: not worth an entry per online user
	}
	c.mu.Lock()
	if len(m) >= c.cfg.MaxEntries {
		clear(m)
	}
	m[k] = entry[V]{v: v, fetched: now}
	c.mu.Unlock()
	return v, nil
}

// PeekMembership returns group's cached membership without asking the
// source, for callers that must not block; false when nothing fresh is
// cached (the caller then refreshes it in the background).
func (c *Cache) PeekMembership(group string) (Membership, bool) {
	return peek(c, c.groups, group, c.cfg.MembershipTTL)
}

// PeekDirect returns a fresh cached direct-message answer without asking.
func (c *Cache) PeekDirect(from, to string) (Direct, bool) {
	return peek(c, c.directs, [2]string{from, to}, c.cfg.DirectTTL)
}

func peek[K comparable, V any](c *Cache, m map[K]entry[V], k K, ttl time.Duration) (V, bool) {
	c.mu.Lock()
	e, ok := m[k]
	c.mu.Unlock()
	if !ok || time.Since(e.fetched) >= ttl {
		var zero V
		return zero, false
	}
	return e.v, true
}
