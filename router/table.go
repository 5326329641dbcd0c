package router

import (
	"sync"
	"time"
)

// SessionRef names one client session: the edge that holds it and the
// edge's id for it.
type SessionRef struct {
	Edge    string
	Session uint64
}

// Table is a shard's view of where its users are connected: the presence
// authority for the partitions the shard owns. It is fed, in partition
// order, by the connect, disconnect and lease records of those partitions.
// Sessions live as long as their edge keeps renewing its lease on the
// partition. Safe for concurrent use.
type Table struct {
	mu     sync.RWMutex
	users  map[string]userEntry   // user → sessions
	leases map[leaseKey]time.Time // (edge, partition) → lease expiry
	edges  map[string]string      // edge ids, interned: one copy however many sessions name it
}

// userEntry is small and stored by value: the table holds one per online
// user, so every byte counts at a million connections.
type userEntry struct {
	part     int32
	sessions []SessionRef
}

type leaseKey struct {
	edge string
	part int32
}

// NewTable returns an empty table.
func NewTable() *Table {
	return &Table{
		users:  make(map[string]userEntry),
		leases: make(map[leaseKey]time.Time),
		edges:  make(map[string]string),
	}
}

// Connect records that user, who lives on partition part, has session s,
// and renews s.Edge's lease on part until expires. It reports whether the
// user was offline before.
func (t *Table) Connect(part int32, user string, s SessionRef, expires time.Time) (wasOffline bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.renew(s.Edge, part, expires)
	if id, ok := t.edges[s.Edge]; ok {
		s.Edge = id
	} else {
		t.edges[s.Edge] = s.Edge
	}
	e, ok := t.users[user]
	if !ok {
		e.part = part
	}
	for _, have := range e.sessions {
		if have == s {
			return false
		}
	}
	wasOffline = len(e.sessions) == 0
	e.sessions = append(e.sessions, s)
	t.users[user] = e
	return wasOffline
}

// Disconnect removes session s of user. It reports whether the user is now
// offline.
func (t *Table) Disconnect(user string, s SessionRef) (nowOffline bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.users[user]
	if !ok {
		return false
	}
	for i, have := range e.sessions {
		if have == s {
			e.sessions = append(e.sessions[:i], e.sessions[i+1:]...)
			break
		}
	}
	if len(e.sessions) > 0 {
		t.users[user] = e
		return false
	}
	delete(t.users, user)
	return true
}

// Lease renews edge's lease on part until expires.
func (t *Table) Lease(part int32, edge string, expires time.Time) {
	t.mu.Lock()
	t.renew(edge, part, expires)
	t.mu.Unlock()
}

func (t *Table) renew(edge string, part int32, expires time.Time) {
	k := leaseKey{edge, part}
	if expires.After(t.leases[k]) {
		t.leases[k] = expires
	}
}

// Expire drops every session whose edge's lease on the user's partition
// ended before now, and returns the users who went offline.
func (t *Table) Expire(now time.Time) (offline []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	dead := make(map[leaseKey]bool)
	for k, exp := range t.leases {
		if exp.Before(now) {
			dead[k] = true
			delete(t.leases, k)
		}
	}
	if len(dead) == 0 {
		return nil
	}
	// Forget the ids of edges that hold no lease any more.
	live := make(map[string]bool, len(t.leases))
	for k := range t.leases {
		live[k.edge] = true
	}
	for id := range t.edges {
		if !live[id] {
			delete(t.edges, id)
		}
	}
	for user, e := range t.users {
		kept := e.sessions[:0]
		for _, s := range e.sessions {
			if !dead[leaseKey{s.Edge, e.part}] {
				kept = append(kept, s)
			}
		}
		e.sessions = kept
		if len(kept) == 0 {
			delete(t.users, user)
			offline = append(offline, user)
		} else {
			t.users[user] = e
		}
	}
	return offline
}

// DropPartition forgets everything about part: its shard lost it.
func (t *Table) DropPartition(part int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for user, e := range t.users {
		if e.part == part {
			delete(t.users, user)
		}
	}
	for k := range t.leases {
		if k.part == part {
			delete(t.leases, k)
		}
	}
}

// Sessions appends user's sessions to dst and returns it.
func (t *Table) Sessions(dst []SessionRef, user string) []SessionRef {
	t.mu.RLock()
	dst = append(dst, t.users[user].sessions...)
	t.mu.RUnlock()
	return dst
}

// Online reports whether user has a session.
func (t *Table) Online(user string) bool {
	t.mu.RLock()
	_, ok := t.users[user]
	t.mu.RUnlock()
	return ok
}

// Counts returns the number of online users and of sessions.
func (t *Table) Counts() (users, sessions int) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, e := range t.users {
		sessions += len(e.sessions)
	}
	return len(t.users), sessions
}
