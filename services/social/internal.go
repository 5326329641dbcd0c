package social

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"

	"github.com/surgechat/surge/internal/wire"
	"github.com/surgechat/surge/services/social/socialpb"
)

// The internal RPCs: the questions the message path (edge and shard, via
// internal/socialcache) asks on every send. They are for privileged
// principals only (a service token, or the operator role); anyone else
// gets PermissionDenied "for Surge's services and operators only". They
// never fail for an unknown user or group: the answer says so. Errors:
//
//	GetMembership  InvalidArgument "invalid group id"
//	CheckDirect    InvalidArgument "from: invalid user id" / "to: invalid user id"
//	               Unavailable     "user lookup failed" (Config.UserExists)
//	ListFriendIDs  InvalidArgument "invalid user id"

// GetMembership returns a group's version and all its members, sorted by
// id (byte order), read in one snapshot. A group that was never created
// has exists false and version 0; a disbanded one has exists false, no
// members, and the version its disband gave it.
func (s *Service) GetMembership(ctx context.Context, req *socialpb.GroupRef) (*socialpb.Membership, error) {
	out, err := s.getMembership(ctx, req)
	return out, s.rpcErr(ctx, err)
}

func (s *Service) getMembership(ctx context.Context, req *socialpb.GroupRef) (*socialpb.Membership, error) {
	if err := requirePrivileged(ctx); err != nil {
		return nil, err
	}
	id := req.GetGroupId()
	if err := checkGroupID(id); err != nil {
		return nil, err
	}
	tx, err := s.db.R.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("membership: %w", err)
	}
	defer tx.Rollback()
	out := &socialpb.Membership{GroupId: id}
	var disbanded sql.NullInt64
	err = tx.QueryRowContext(ctx, "SELECT version, disbanded_at FROM social_groups WHERE id = ?", id).Scan(&out.Version, &disbanded)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return out, nil
	case err != nil:
		return nil, fmt.Errorf("membership: %w", err)
	case disbanded.Valid:
		return out, nil
	}
	out.Exists = true
	out.Members, err = scanStrings(tx.QueryContext(ctx, "SELECT user_id FROM group_members WHERE group_id = ? ORDER BY user_id", id))
	if err != nil {
		return nil, fmt.Errorf("membership: %w", err)
	}
	return out, nil
}

// CheckDirect answers whether req.From may send req.To a direct message:
// not if either blocks the other (reason "blocked"), not under
// DirectPolicy "friends" unless they are friends ("not_friends"), and not
// if Config.UserExists denies req.To ("no_such_user"; asked only when
// nothing else forbids the message). A user may always message themself.
func (s *Service) CheckDirect(ctx context.Context, req *socialpb.CheckDirectRequest) (*socialpb.CheckDirectResponse, error) {
	out, err := s.checkDirect(ctx, req)
	return out, s.rpcErr(ctx, err)
}

func (s *Service) checkDirect(ctx context.Context, req *socialpb.CheckDirectRequest) (*socialpb.CheckDirectResponse, error) {
	if err := requirePrivileged(ctx); err != nil {
		return nil, err
	}
	from, to := req.GetFrom(), req.GetTo()
	switch {
	case !wire.ValidID(from):
		return nil, errf(codes.InvalidArgument, "from: invalid user id")
	case !wire.ValidID(to):
		return nil, errf(codes.InvalidArgument, "to: invalid user id")
	case from == to:
		return &socialpb.CheckDirectResponse{Allowed: true}, nil
	}
	deny := func(reason string) (*socialpb.CheckDirectResponse, error) {
		return &socialpb.CheckDirectResponse{Reason: reason}, nil
	}
	blocked, err := blockedEither(ctx, s.db.R, from, to)
	if err != nil {
		return nil, fmt.Errorf("check direct: %w", err)
	}
	if blocked {
		return deny(ReasonBlocked)
	}
	if s.cfg.DirectPolicy == DirectFriends {
		_, friends, err := friendsSince(ctx, s.db.R, from, to)
		if err != nil {
			return nil, fmt.Errorf("check direct: %w", err)
		}
		if !friends {
			return deny(ReasonNotFriends)
		}
	}
	if s.cfg.UserExists != nil && s.cfg.DirectNeedsAccount {
		ok, err := s.userExists(ctx, to)
		if err != nil {
			return nil, err
		}
		if !ok {
			return deny(ReasonNoSuchUser)
		}
	}
	return &socialpb.CheckDirectResponse{Allowed: true}, nil
}

// ListFriendIDs returns all of req.User's friends, sorted by id.
func (s *Service) ListFriendIDs(ctx context.Context, req *socialpb.UserRef) (*socialpb.UserList, error) {
	out, err := s.listFriendIDs(ctx, req)
	return out, s.rpcErr(ctx, err)
}

func (s *Service) listFriendIDs(ctx context.Context, req *socialpb.UserRef) (*socialpb.UserList, error) {
	if err := requirePrivileged(ctx); err != nil {
		return nil, err
	}
	user := req.GetUser()
	if !wire.ValidID(user) {
		return nil, errf(codes.InvalidArgument, "invalid user id")
	}
	users, err := scanStrings(s.db.R.QueryContext(ctx, "SELECT user_b FROM friends WHERE user_a = ? ORDER BY user_b", user))
	if err != nil {
		return nil, fmt.Errorf("list friend ids: %w", err)
	}
	return &socialpb.UserList{Users: users}, nil
}
