package edge

import (
	"hash/maphash"
	"sync"
)

const sessionShards = 64

// sessions indexes upgraded connections by user, in 64 shards so that
// deliveries to different users rarely meet on a lock.
type sessions struct {
	seed   maphash.Seed
	shards [sessionShards]sessionShard
}

type sessionShard struct {
	mu    sync.RWMutex
	users map[string][]*conn
}

func newSessions() *sessions {
	s := &sessions{seed: maphash.MakeSeed()}
	for i := range s.shards {
		s.shards[i].users = make(map[string][]*conn)
	}
	return s
}

func (s *sessions) shard(user string) *sessionShard {
	return &s.shards[maphash.String(s.seed, user)%sessionShards]
}

func (s *sessions) add(c *conn) {
	sh := s.shard(c.user)
	sh.mu.Lock()
	sh.users[c.user] = append(sh.users[c.user], c)
	sh.mu.Unlock()
}

func (s *sessions) remove(c *conn) {
	sh := s.shard(c.user)
	sh.mu.Lock()
	list := sh.users[c.user]
	for i, have := range list {
		if have == c {
			list[i] = list[len(list)-1]
			list[len(list)-1] = nil
			list = list[:len(list)-1]
			break
		}
	}
	if len(list) == 0 {
		delete(sh.users, c.user)
	} else {
		sh.users[c.user] = list
	}
	sh.mu.Unlock()
}

// each calls fn for every connection of user, under the shard's read lock;
// fn must not block.
func (s *sessions) each(user string, fn func(*conn)) {
	sh := s.shard(user)
	sh.mu.RLock()
	for _, c := range sh.users[user] {
		fn(c)
	}
	sh.mu.RUnlock()
}

// all calls fn for every connection; fn must not block.
func (s *sessions) all(fn func(*conn)) {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		for _, list := range sh.users {
			for _, c := range list {
				fn(c)
			}
		}
		sh.mu.RUnlock()
	}
}
