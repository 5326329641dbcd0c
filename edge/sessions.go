package edge

import (
	"hash/maphash"
	"sync"
)

const sessionShards = 64

// sessions indexes upgraded connections by a key (the user, or a topic the
// connection subscribed to), in 64 shards so that deliveries to different
// keys rarely meet on a lock.
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

func (s *sessions) add(key string, c *conn) {
	sh := s.shard(key)
	sh.mu.Lock()
	sh.users[key] = append(sh.users[key], c)
	sh.mu.Unlock()
}

func (s *sessions) remove(key string, c *conn) {
	sh := s.shard(key)
	sh.mu.Lock()
	list := sh.users[key]
	for i, have := range list {
		if have == c {
			list[i] = list[len(list)-1]
			list[len(list)-1] = nil
			list = list[:len(list)-1]
			break
		}
	}
	if len(list) == 0 {
		delete(sh.users, key)
	} else {
		sh.users[key] = list
	}
	sh.mu.Unlock()
}

// each calls fn for every connection under key, under the shard's read
// lock; fn must not block.
func (s *sessions) each(key string, fn func(*conn)) {
	sh := s.shard(key)
	sh.mu.RLock()
	for _, c := range sh.users[key] {
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
