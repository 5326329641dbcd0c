package social

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"

	"github.com/surgechat/surge/internal/sqldb"
	"github.com/surgechat/surge/internal/wire"
	"github.com/surgechat/surge/services/social/socialpb"
)

// Members. Who may change whom:
//
//	caller \ target   owner       admin       member
//	owner             (leave: no) remove, role  remove, role
//	admin             no          no          remove
//	member            no          no          no
//
// Errors, besides those of every group RPC (groups.go):
//
//	AddMembers     InvalidArgument  "users: invalid user id" / "users: none given"
//	               PermissionDenied "only the owner or an admin may do this"
//	               FailedPrecondition "a group holds at most N members; larger audiences use topics"
//	               NotFound "no such user: <id>"; Unavailable "user lookup failed"
//	RemoveMember   InvalidArgument  "invalid user id"
//	               PermissionDenied "only the owner or an admin may do this" /
//	                                "an admin may remove plain members only"
//	               NotFound         "not a member" (the target)
//	               FailedPrecondition (the owner removing themself, as LeaveGroup)
//	LeaveGroup     FailedPrecondition "the owner must hand ownership over first (SetMemberRole with role owner)"
//	SetMemberRole  InvalidArgument  "invalid user id" / "role: want owner, admin or member"
//	               PermissionDenied "only the owner may do this"
//	               NotFound         "not a member" (the target)
//	               FailedPrecondition (the owner demoting themself)
//	ListMembers    InvalidArgument  "page_size must not be negative" / "invalid page_token"

// AddMembers adds users to a group as plain members; for the owner and
// admins. Users already in it are skipped; if none is new, nothing changes
// (not even the version). The limit counts the members after the change:
// if they would exceed it, no one is added.
func (s *Service) AddMembers(ctx context.Context, req *socialpb.AddMembersRequest) (*socialpb.Group, error) {
	out, err := s.addMembers(ctx, req)
	return out, s.rpcErr(ctx, err)
}

func (s *Service) addMembers(ctx context.Context, req *socialpb.AddMembersRequest) (*socialpb.Group, error) {
	me, err := callerUser(ctx)
	if err != nil {
		return nil, err
	}
	id := req.GetGroupId()
	if err := checkGroupID(id); err != nil {
		return nil, err
	}
	users, err := userList("users", req.GetUsers(), "")
	if err != nil {
		return nil, err
	}
	switch {
	case len(users) == 0:
		return nil, errf(codes.InvalidArgument, "users: none given")
	case len(users) > s.cfg.MaxGroupSize:
		return nil, s.tooBig()
	}
	// Ask about every user, members or not, before taking the group's
	// lock: the hook may be a remote call.
	if err := s.checkUsers(ctx, users...); err != nil {
		return nil, err
	}
	var out *socialpb.Group
	var changed bool
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		changed = false
		g, role, err := s.lockAsMember(ctx, tx, id, me)
		if err != nil {
			return err
		}
		if role != RoleOwner && role != RoleAdmin {
			return errOwnerOrAdmin
		}
		args := make([]any, 0, 1+len(users))
		args = append(args, id)
		for _, u := range users {
			args = append(args, u)
		}
		have, err := scanStrings(tx.QueryContext(ctx, "SELECT user_id FROM group_members WHERE group_id = ? AND user_id IN ("+sqldb.Marks(len(users))+")", args...))
		if err != nil {
			return fmt.Errorf("read members: %w", err)
		}
		fresh := users
		if len(have) > 0 {
			in := make(map[string]bool, len(have))
			for _, u := range have {
				in[u] = true
			}
			fresh = make([]string, 0, len(users)-len(have))
			for _, u := range users {
				if !in[u] {
					fresh = append(fresh, u)
				}
			}
		}
		if len(fresh) > 0 {
			if g.memberCount+len(fresh) > s.cfg.MaxGroupSize {
				return s.tooBig()
			}
			if err := insertMembers(ctx, tx, id, fresh, RoleMember, now()); err != nil {
				return err
			}
			if err := bumpGroup(ctx, tx, g, g.memberCount+len(fresh)); err != nil {
				return err
			}
			changed = true
		}
		out = g.proto(role)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if changed {
		s.groupChanged(ctx, id, out.Version)
	}
	return out, nil
}

// RemoveMember removes req.User from a group: the owner removes anyone
// else, an admin removes plain members. Removing oneself is LeaveGroup.
func (s *Service) RemoveMember(ctx context.Context, req *socialpb.MemberRef) (*socialpb.Empty, error) {
	err := s.removeMember(ctx, req.GetGroupId(), req.GetUser())
	return &socialpb.Empty{}, s.rpcErr(ctx, err)
}

// LeaveGroup removes the caller from a group. The owner cannot leave: they
// hand ownership over first (SetMemberRole), or disband the group.
func (s *Service) LeaveGroup(ctx context.Context, req *socialpb.GroupRef) (*socialpb.Empty, error) {
	me, err := callerUser(ctx)
	if err == nil {
		err = s.removeMember(ctx, req.GetGroupId(), me)
	}
	return &socialpb.Empty{}, s.rpcErr(ctx, err)
}

func (s *Service) removeMember(ctx context.Context, id, target string) error {
	me, err := callerUser(ctx)
	if err != nil {
		return err
	}
	if err := checkGroupID(id); err != nil {
		return err
	}
	if !wire.ValidID(target) {
		return errf(codes.InvalidArgument, "invalid user id")
	}
	var version int64
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		g, role, err := s.lockAsMember(ctx, tx, id, me)
		if err != nil {
			return err
		}
		if target == me {
			if role == RoleOwner {
				return errOwnerMustStay
			}
		} else {
			if role != RoleOwner && role != RoleAdmin {
				return errOwnerOrAdmin
			}
			theirs, err := roleOf(ctx, tx, id, target)
			switch {
			case err != nil:
				return err
			case theirs == "":
				return errNotMember
			case role == RoleAdmin && theirs != RoleMember:
				return errAdminsOnlyRank
			}
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM group_members WHERE group_id = ? AND user_id = ?", id, target); err != nil {
			return fmt.Errorf("remove member: %w", err)
		}
		if err := bumpGroup(ctx, tx, g, g.memberCount-1); err != nil {
			return err
		}
		version = g.version
		return nil
	})
	if err != nil {
		return err
	}
	s.groupChanged(ctx, id, version)
	return nil
}

// SetMemberRole sets req.User's role in a group; for the owner. Role
// "owner" hands ownership over: req.User becomes the owner and the caller
// an admin. The members, and so the version, stay the same.
func (s *Service) SetMemberRole(ctx context.Context, req *socialpb.SetMemberRoleRequest) (*socialpb.Member, error) {
	out, err := s.setMemberRole(ctx, req)
	return out, s.rpcErr(ctx, err)
}

func (s *Service) setMemberRole(ctx context.Context, req *socialpb.SetMemberRoleRequest) (*socialpb.Member, error) {
	me, err := callerUser(ctx)
	if err != nil {
		return nil, err
	}
	id, target, newRole := req.GetGroupId(), req.GetUser(), req.GetRole()
	if err := checkGroupID(id); err != nil {
		return nil, err
	}
	if !wire.ValidID(target) {
		return nil, errf(codes.InvalidArgument, "invalid user id")
	}
	switch newRole {
	case RoleOwner, RoleAdmin, RoleMember:
	default:
		return nil, errf(codes.InvalidArgument, "role: want owner, admin or member")
	}
	var out *socialpb.Member
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, role, err := s.lockAsMember(ctx, tx, id, me)
		if err != nil {
			return err
		}
		if role != RoleOwner {
			return errOwnerOnly
		}
		out = &socialpb.Member{User: target}
		err = tx.QueryRowContext(ctx, "SELECT role, joined_at FROM group_members WHERE group_id = ? AND user_id = ?", id, target).
			Scan(&out.Role, &out.JoinedAt)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return errNotMember
		case err != nil:
			return fmt.Errorf("read member: %w", err)
		case target == me && newRole != RoleOwner:
			return errOwnerMustStay
		case out.Role == newRole:
			return nil
		}
		set := "UPDATE group_members SET role = ? WHERE group_id = ? AND user_id = ?"
		if newRole == RoleOwner {
			if _, err := tx.ExecContext(ctx, set, RoleAdmin, id, me); err != nil {
				return fmt.Errorf("set role: %w", err)
			}
			if _, err := tx.ExecContext(ctx, "UPDATE social_groups SET owner = ? WHERE id = ?", target, id); err != nil {
				return fmt.Errorf("set owner: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, set, newRole, id, target); err != nil {
			return fmt.Errorf("set role: %w", err)
		}
		out.Role = newRole
		return nil
	})
	return out, err
}

// ListMembers pages through a group's members in user id order; for its
// members and privileged principals.
func (s *Service) ListMembers(ctx context.Context, req *socialpb.ListMembersRequest) (*socialpb.ListMembersResponse, error) {
	out, err := s.listMembers(ctx, req)
	return out, s.rpcErr(ctx, err)
}

func (s *Service) listMembers(ctx context.Context, req *socialpb.ListMembersRequest) (*socialpb.ListMembersResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	id := req.GetGroupId()
	if err := checkGroupID(id); err != nil {
		return nil, err
	}
	pg, err := parsePage(pageMembers, req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	// One read transaction, so the page comes from the state in which the
	// caller was checked.
	tx, err := s.db.R.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	defer tx.Rollback()
	if _, err := s.loadGroup(ctx, tx, id, false); err != nil {
		return nil, err
	}
	if !p.privileged {
		if role, err := roleOf(ctx, tx, id, p.user); err != nil {
			return nil, err
		} else if role == "" {
			return nil, errNoSuchGroup
		}
	}
	rows, err := tx.QueryContext(ctx, "SELECT user_id, role, joined_at FROM group_members WHERE group_id = ? AND user_id > ? ORDER BY user_id LIMIT ?",
		id, pg.after, pg.size+1)
	if err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	defer rows.Close()
	var members []*socialpb.Member
	for rows.Next() {
		m := new(socialpb.Member)
		if err := rows.Scan(&m.User, &m.Role, &m.JoinedAt); err != nil {
			return nil, fmt.Errorf("list members: %w", err)
		}
		members = append(members, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	members, next := cut(pg, pageMembers, members, (*socialpb.Member).GetUser)
	return &socialpb.ListMembersResponse{Members: members, NextPageToken: next}, nil
}
