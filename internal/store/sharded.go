package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// sharded is the Store that Open returns: it routes partition p to
// backends[p % len(backends)].
//
// mu is held for reading by every call in flight and for writing by Close,
// so Close waits for calls in flight and no call reaches a closed pool: a
// call that starts after Close returns ErrClosed.
type sharded struct {
	mu       sync.RWMutex
	closed   bool
	backends []*backend
}

// acquire returns the backend of part with s.mu read-locked; release
// unlocks it. It fails if s is closed or part is negative.
func (s *sharded) acquire(part int32) (*backend, error) {
	if part < 0 {
		return nil, fmt.Errorf("store: negative partition %d", part)
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, ErrClosed
	}
	return s.backends[int(part)%len(s.backends)], nil
}

func (s *sharded) release() { s.mu.RUnlock() }

func (s *sharded) Append(ctx context.Context, part int32, msgs []Message) ([]Message, error) {
	b, err := s.acquire(part)
	if err != nil {
		return nil, err
	}
	defer s.release()
	if len(msgs) == 0 {
		return nil, nil
	}
	out, err := b.append(ctx, msgs)
	if err != nil {
		return nil, fmt.Errorf("store: append partition %d: %w", part, err)
	}
	return out, nil
}

func (s *sharded) Inbox(ctx context.Context, part int32, owner string, after uint64, limit int) ([]Message, error) {
	b, err := s.acquire(part)
	if err != nil {
		return nil, err
	}
	defer s.release()
	if limit <= 0 || checkOwner(owner) != nil {
		return nil, nil
	}
	out, err := b.inbox(ctx, owner, after, limit)
	if err != nil {
		return nil, fmt.Errorf("store: inbox partition %d: %w", part, err)
	}
	return out, nil
}

func (s *sharded) LastSeq(ctx context.Context, part int32, owner string) (uint64, error) {
	b, err := s.acquire(part)
	if err != nil {
		return 0, err
	}
	defer s.release()
	if checkOwner(owner) != nil {
		return 0, nil
	}
	seq, err := b.lastSeq(ctx, owner)
	if err != nil {
		return 0, fmt.Errorf("store: last seq partition %d: %w", part, err)
	}
	return seq, nil
}

func (s *sharded) Ping(ctx context.Context) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	var errs []error
	for i, b := range s.backends {
		if err := b.ping(ctx); err != nil {
			errs = append(errs, fmt.Errorf("store: ping DSNs[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// Close closes every backend once calls in flight have returned. Closing a
// closed store returns nil.
func (s *sharded) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	for i, b := range s.backends {
		if err := b.close(); err != nil {
			errs = append(errs, fmt.Errorf("store: close DSNs[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// AppendParts implements Store.AppendParts: one transaction per backend.
func (s *sharded) AppendParts(ctx context.Context, parts []int32, msgs [][]Message) ([][]Message, []error) {
	out := make([][]Message, len(parts))
	errs := make([]error, len(parts))
	fail := func(err error) ([][]Message, []error) {
		for i := range errs {
			errs[i] = err
		}
		return out, errs
	}
	if len(parts) != len(msgs) {
		return fail(fmt.Errorf("store: AppendParts with %d partitions and %d batches", len(parts), len(msgs)))
	}
	for _, p := range parts {
		if p < 0 {
			return fail(fmt.Errorf("store: negative partition %d", p))
		}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return fail(ErrClosed)
	}
	byBackend := make(map[*backend][]int) // backend → indexes into parts
	for i, p := range parts {
		b := s.backends[int(p)%len(s.backends)]
		byBackend[b] = append(byBackend[b], i)
	}
	for b, idx := range byBackend {
		var flat []Message
		whose := make(map[string]int) // owner → index into parts
		for _, i := range idx {
			for j := range msgs[i] {
				whose[msgs[i][j].Owner] = i
			}
			flat = append(flat, msgs[i]...)
		}
		if len(flat) == 0 {
			continue
		}
		stored, err := b.append(ctx, flat)
		if err != nil {
			for _, i := range idx {
				errs[i] = fmt.Errorf("store: append partition %d: %w", parts[i], err)
			}
			continue
		}
		for _, m := range stored {
			i := whose[m.Owner]
			out[i] = append(out[i], m)
		}
	}
	return out, errs
}
