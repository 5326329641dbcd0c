package social

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/surgechat/surge/services/social/socialpb"
)

// Blocks. A block is one-sided to create and lift, two-sided in effect:
// while a blocks b, neither may send the other a friend request or a
// direct message (CheckDirect). Block and Unblock are idempotent. Errors,
// besides those of every user RPC (doc.go):
//
//	Block, Unblock  InvalidArgument "invalid user id" / "cannot block yourself"
//
// Blocking does not ask Config.UserExists: blocking an id that names no
// one is harmless.

// Block makes the caller block req.User. It ends their friendship and
// deletes the pending requests between them, both ways. Blocking someone
// already blocked succeeds and changes nothing.
func (s *Service) Block(ctx context.Context, req *socialpb.UserRef) (*socialpb.Empty, error) {
	err := s.block(ctx, req)
	return &socialpb.Empty{}, s.rpcErr(ctx, err)
}

func (s *Service) block(ctx context.Context, req *socialpb.UserRef) error {
	me, err := callerUser(ctx)
	if err != nil {
		return err
	}
	other := req.GetUser()
	if err := checkOther(me, other, "cannot block yourself"); err != nil {
		return err
	}
	return s.pairTx(ctx, me, other, func(tx *sql.Tx) error {
		ok, err := exists(ctx, tx, "SELECT 1 FROM blocks WHERE blocker = ? AND blocked = ?", me, other)
		if err != nil {
			return fmt.Errorf("read block: %w", err)
		}
		if !ok {
			if _, err := tx.ExecContext(ctx, "INSERT INTO blocks (blocker, blocked, created_at) VALUES (?, ?, ?)", me, other, now()); err != nil {
				return fmt.Errorf("insert block: %w", err)
			}
		}
		if _, err := deletePair(ctx, tx, "friends", "user_a", "user_b", me, other); err != nil {
			return err
		}
		_, err = deletePair(ctx, tx, "friend_requests", "from_user", "to_user", me, other)
		return err
	})
}

// Unblock lifts the caller's block of req.User, if any. A block that
// req.User holds against the caller stays. Nothing that the block removed
// comes back.
func (s *Service) Unblock(ctx context.Context, req *socialpb.UserRef) (*socialpb.Empty, error) {
	err := s.unblock(ctx, req)
	return &socialpb.Empty{}, s.rpcErr(ctx, err)
}

func (s *Service) unblock(ctx context.Context, req *socialpb.UserRef) error {
	me, err := callerUser(ctx)
	if err != nil {
		return err
	}
	other := req.GetUser()
	if err := checkOther(me, other, "cannot block yourself"); err != nil {
		return err
	}
	return s.pairTx(ctx, me, other, func(tx *sql.Tx) error {
		_, err := deleteRow(ctx, tx, "blocks", "blocker", "blocked", me, other)
		return err
	})
}

// ListBlocked returns the users the caller blocks, in id order. It does
// not say who blocks the caller.
func (s *Service) ListBlocked(ctx context.Context, _ *socialpb.Empty) (*socialpb.ListBlockedResponse, error) {
	out, err := s.listBlocked(ctx)
	return out, s.rpcErr(ctx, err)
}

func (s *Service) listBlocked(ctx context.Context) (*socialpb.ListBlockedResponse, error) {
	me, err := callerUser(ctx)
	if err != nil {
		return nil, err
	}
	users, err := scanStrings(s.db.R.QueryContext(ctx, "SELECT blocked FROM blocks WHERE blocker = ? ORDER BY blocked", me))
	if err != nil {
		return nil, fmt.Errorf("list blocked: %w", err)
	}
	return &socialpb.ListBlockedResponse{Users: users}, nil
}
