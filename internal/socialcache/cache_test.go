package socialcache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// source is a programmable Source for the cache's own tests.
type source struct {
	mu      sync.Mutex
	members map[string][]string
	down    bool
	calls   atomic.Int64
	gate    chan struct{} // when set, calls wait for it
}

func (s *source) Membership(_ context.Context, group string) (Membership, error) {
	s.calls.Add(1)
	if s.gate != nil {
		<-s.gate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return Membership{}, errors.New("social down")
	}
	m, ok := s.members[group]
	return Membership{Version: int64(len(m)), Members: append([]string(nil), m...), Exists: ok}, nil
}

func (s *source) CheckDirect(context.Context, string, string) (Direct, error) {
	return Direct{Allowed: true}, nil
}

func (s *source) FriendIDs(context.Context, string) ([]string, error) { return nil, nil }

func (s *source) set(group string, members ...string) {
	s.mu.Lock()
	s.members[group] = members
	s.mu.Unlock()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestStaleWhileRefreshing(t *testing.T) {
	src := &source{members: map[string][]string{"g": {"b", "a"}}}
	c := New(src, Config{MembershipTTL: 20 * time.Millisecond})
	ctx := context.Background()
	m, err := c.Membership(ctx, "g")
	if err != nil || !m.Has("a") || !m.Has("b") || m.Has("c") {
		t.Fatalf("first lookup: %+v, %v", m, err)
	}
	src.set("g", "a", "b", "c")
	time.Sleep(25 * time.Millisecond) // the entry is now stale

	// A stale entry answers at once, even while the source is slow...
	src.gate = make(chan struct{})
	m, err = c.Membership(ctx, "g")
	if err != nil || m.Has("c") {
		t.Fatalf("stale lookup: %+v, %v; want the old answer at once", m, err)
	}
	// ...and one refresh runs in the background, not one per lookup.
	c.Membership(ctx, "g")
	waitFor(t, "the refresh to start", func() bool { return src.calls.Load() == 2 })
	close(src.gate)
	waitFor(t, "the refreshed answer", func() bool {
		m, _ := c.Membership(ctx, "g")
		return m.Has("c")
	})
	if n := src.calls.Load(); n != 2 {
		t.Fatalf("%d source calls, want 2", n)
	}
}

func TestDegradesToStaleWhenDown(t *testing.T) {
	src := &source{members: map[string][]string{"g": {"a"}}}
	c := New(src, Config{MembershipTTL: time.Millisecond})
	ctx := context.Background()
	if _, err := c.Membership(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	src.mu.Lock()
	src.down = true
	src.mu.Unlock()
	time.Sleep(2 * time.Millisecond)
	for range 3 {
		m, err := c.Membership(ctx, "g")
		if err != nil || !m.Has("a") {
			t.Fatalf("with the source down: %+v, %v; want the cached answer", m, err)
		}
	}
	// A group never seen cannot be answered.
	if _, err := c.Membership(ctx, "other"); err == nil {
		t.Fatal("an unseen group was answered while the source is down")
	}
}

func TestInvalidate(t *testing.T) {
	src := &source{members: map[string][]string{"g": {"a"}}}
	c := New(src, Config{})
	ctx := context.Background()
	c.Membership(ctx, "g") // version 1
	c.Invalidate("g", 1)
	if _, ok := c.PeekMembership("g"); !ok {
		t.Fatal("an invalidation at the cached version dropped the entry")
	}
	c.Invalidate("g", 2)
	if _, ok := c.PeekMembership("g"); ok {
		t.Fatal("a newer version did not drop the entry")
	}
	if n := src.calls.Load(); n != 1 {
		t.Fatalf("%d source calls, want 1", n)
	}
}
