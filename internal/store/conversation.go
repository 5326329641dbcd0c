package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Conversation implements Store.Conversation.
func (s *sharded) Conversation(ctx context.Context, part int32, owner string, q ConvQuery) ([]Message, bool, error) {
	b, err := s.acquire(part)
	if err != nil {
		return nil, false, err
	}
	defer s.release()
	if q.Limit <= 0 || checkOwner(owner) != nil {
		return nil, false, nil
	}
	out, more, err := b.conversation(ctx, owner, q)
	if err != nil {
		return nil, false, fmt.Errorf("store: conversation partition %d: %w", part, err)
	}
	return out, more, nil
}

// conversation builds one query for q; the (owner, conv, seq) index serves
// a conversation, the primary key the whole inbox.
func (b *backend) conversation(ctx context.Context, owner string, q ConvQuery) ([]Message, bool, error) {
	var sb strings.Builder
	args := []any{owner}
	sb.WriteString("SELECT " + inboxCols + " FROM inbox WHERE owner = ?")
	if q.Conv != "" {
		sb.WriteString(" AND conv = ?")
		args = append(args, q.Conv)
	}
	if q.After > 0 {
		sb.WriteString(" AND seq > ?")
		args = append(args, int64(min(q.After, 1<<62)))
	}
	if q.Before > 0 {
		sb.WriteString(" AND seq < ?")
		args = append(args, int64(min(q.Before, 1<<62)))
	}
	if q.Since > 0 {
		sb.WriteString(" AND stored_at >= ?")
		args = append(args, q.Since)
	}
	if q.Until > 0 {
		sb.WriteString(" AND stored_at < ?")
		args = append(args, q.Until)
	}
	forward := q.After > 0 || q.Since > 0
	if forward {
		sb.WriteString(" ORDER BY seq LIMIT ?")
	} else {
		sb.WriteString(" ORDER BY seq DESC LIMIT ?")
	}
	args = append(args, q.Limit+1)
	rows, err := b.r.QueryContext(ctx, sb.String(), args...)
	if err != nil {
		return nil, false, err
	}
	out, err := scanMessages(rows, owner, q.Limit+1)
	if err != nil {
		return nil, false, err
	}
	more := len(out) > q.Limit
	if more {
		out = out[:q.Limit]
	}
	if !forward {
		slices.Reverse(out)
	}
	return out, more, nil
}
