package social

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"google.golang.org/grpc/codes"

	"github.com/surgechat/surge/internal/sqldb"
	"github.com/surgechat/surge/internal/wire"
	"github.com/surgechat/surge/services/social/socialpb"
)

// Groups: the group itself (this file) and its members (members.go).
// Errors, besides those of every user RPC (doc.go):
//
//	any group RPC    InvalidArgument   "invalid group id"
//	                 NotFound          "no such group": the group never existed, is
//	                                   disbanded, or the caller is not a member
//	CreateGroup      InvalidArgument   "name: 1 to 64 characters" /
//	                                   "description: at most 512 characters" /
//	                                   "members: invalid user id"
//	                 FailedPrecondition "a group holds at most N members; larger audiences use topics"
//	                 NotFound          "no such user: <id>"; Unavailable "user lookup failed"
//	UpdateGroup      PermissionDenied  "only the owner or an admin may do this"
//	DisbandGroup     PermissionDenied  "only the owner may do this"
//
// GetGroup and ListMembers are also open to privileged principals (a
// service, or the operator role) that are not members.

// Group field limits, in characters.
const (
	MaxGroupName        = 64
	MaxGroupDescription = 512
)

// groupIDBytes is the random bytes in a group id: 16 hex characters.
const groupIDBytes = 8

func newGroupID() string {
	var b [groupIDBytes]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

func checkName(name string) error {
	n := utf8.RuneCountInString(name)
	if !utf8.ValidString(name) || n > MaxGroupName || strings.TrimSpace(name) == "" {
		return errf(codes.InvalidArgument, "name: 1 to %d characters", MaxGroupName)
	}
	return nil
}

func checkDescription(d string) error {
	if !utf8.ValidString(d) || utf8.RuneCountInString(d) > MaxGroupDescription {
		return errf(codes.InvalidArgument, "description: at most %d characters", MaxGroupDescription)
	}
	return nil
}

func checkGroupID(id string) error {
	if !wire.ValidID(id) {
		return errf(codes.InvalidArgument, "invalid group id")
	}
	return nil
}

// tooBig is the error of a change that would make a group exceed the limit.
func (s *Service) tooBig() error {
	return errf(codes.FailedPrecondition, "a group holds at most %d members; larger audiences use topics", s.cfg.MaxGroupSize)
}

// Errors of members without the rights an RPC needs, or acting on
// someone who is not a member.
var (
	errOwnerOnly      = errf(codes.PermissionDenied, "only the owner may do this")
	errOwnerOrAdmin   = errf(codes.PermissionDenied, "only the owner or an admin may do this")
	errOwnerMustStay  = errf(codes.FailedPrecondition, "the owner must hand ownership over first (SetMemberRole with role owner)")
	errNotMember      = errf(codes.NotFound, "not a member")
	errAdminsOnlyRank = errf(codes.PermissionDenied, "an admin may remove plain members only")
)

// userList checks and de-duplicates a list of user ids, keeping the first
// occurrence's order and dropping skip.
func userList(field string, users []string, skip string) ([]string, error) {
	seen := make(map[string]bool, len(users))
	out := make([]string, 0, len(users))
	for _, u := range users {
		if !wire.ValidID(u) {
			return nil, errf(codes.InvalidArgument, "%s: invalid user id", field)
		}
		if u == skip || seen[u] {
			continue
		}
		seen[u] = true
		out = append(out, u)
	}
	return out, nil
}

// CreateGroup creates a group owned by the caller, with req.Members as
// plain members. The caller need not list themself; duplicates are
// ignored. The new group's version is 1.
func (s *Service) CreateGroup(ctx context.Context, req *socialpb.CreateGroupRequest) (*socialpb.Group, error) {
	out, err := s.createGroup(ctx, req)
	return out, s.rpcErr(ctx, err)
}

func (s *Service) createGroup(ctx context.Context, req *socialpb.CreateGroupRequest) (*socialpb.Group, error) {
	me, err := callerUser(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkName(req.GetName()); err != nil {
		return nil, err
	}
	if err := checkDescription(req.GetDescription()); err != nil {
		return nil, err
	}
	members, err := userList("members", req.GetMembers(), me)
	if err != nil {
		return nil, err
	}
	if 1+len(members) > s.cfg.MaxGroupSize {
		return nil, s.tooBig()
	}
	if err := s.checkUsers(ctx, members...); err != nil {
		return nil, err
	}
	g := &groupRow{
		name:        req.GetName(),
		description: req.GetDescription(),
		owner:       me,
		memberCount: 1 + len(members),
		version:     1,
		createdAt:   now(),
	}
	for attempt := 0; ; attempt++ {
		g.id = newGroupID()
		err = s.db.Tx(ctx, func(tx *sql.Tx) error { return insertGroup(ctx, tx, g, members) })
		// A duplicate is a clash of random ids: 2^-64 per pair of groups.
		if !sqldb.IsDuplicate(err) || attempt == 2 {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("create group: %w", err)
	}
	s.groupChanged(ctx, g.id, g.version)
	return g.proto(RoleOwner), nil
}

func insertGroup(ctx context.Context, tx *sql.Tx, g *groupRow, members []string) error {
	if _, err := tx.ExecContext(ctx, "INSERT INTO social_groups ("+groupColumns+", disbanded_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
		g.id, g.name, g.description, g.owner, g.memberCount, g.version, g.createdAt); err != nil {
		return err
	}
	if err := insertMembers(ctx, tx, g.id, []string{g.owner}, RoleOwner, g.createdAt); err != nil {
		return err
	}
	return insertMembers(ctx, tx, g.id, members, RoleMember, g.createdAt)
}

// insertMembers adds users to group with role, in batches.
func insertMembers(ctx context.Context, tx *sql.Tx, group string, users []string, role string, joined int64) error {
	const batch = 250
	for len(users) > 0 {
		n := min(len(users), batch)
		args := make([]any, 0, 4*n)
		for _, u := range users[:n] {
			args = append(args, group, u, role, joined)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO group_members (group_id, user_id, role, joined_at) VALUES "+sqldb.Placeholders(n, 4), args...); err != nil {
			return fmt.Errorf("insert members: %w", err)
		}
		users = users[n:]
	}
	return nil
}

// GetGroup returns a group to its members (my_role set) and to privileged
// principals (my_role empty unless they are members too).
func (s *Service) GetGroup(ctx context.Context, req *socialpb.GroupRef) (*socialpb.Group, error) {
	out, err := s.getGroup(ctx, req)
	return out, s.rpcErr(ctx, err)
}

func (s *Service) getGroup(ctx context.Context, req *socialpb.GroupRef) (*socialpb.Group, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	id := req.GetGroupId()
	if err := checkGroupID(id); err != nil {
		return nil, err
	}
	var g groupRow
	var role sql.NullString
	err = s.db.R.QueryRowContext(ctx, `SELECT g.id, g.name, g.description, g.owner, g.member_count, g.version, g.created_at, m.role
		FROM social_groups g LEFT JOIN group_members m ON m.group_id = g.id AND m.user_id = ?
		WHERE g.id = ? AND g.disbanded_at IS NULL`, p.user, id).
		Scan(&g.id, &g.name, &g.description, &g.owner, &g.memberCount, &g.version, &g.createdAt, &role)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, errNoSuchGroup
	case err != nil:
		return nil, fmt.Errorf("get group: %w", err)
	case !role.Valid && !p.privileged:
		return nil, errNoSuchGroup
	}
	return g.proto(role.String), nil
}

// UpdateGroup renames a group or changes its description (whichever of
// the two req sets); for the owner and admins. It does not change the
// version.
func (s *Service) UpdateGroup(ctx context.Context, req *socialpb.UpdateGroupRequest) (*socialpb.Group, error) {
	out, err := s.updateGroup(ctx, req)
	return out, s.rpcErr(ctx, err)
}

func (s *Service) updateGroup(ctx context.Context, req *socialpb.UpdateGroupRequest) (*socialpb.Group, error) {
	me, err := callerUser(ctx)
	if err != nil {
		return nil, err
	}
	id := req.GetGroupId()
	if err := checkGroupID(id); err != nil {
		return nil, err
	}
	if req.Name != nil {
		if err := checkName(req.GetName()); err != nil {
			return nil, err
		}
	}
	if req.Description != nil {
		if err := checkDescription(req.GetDescription()); err != nil {
			return nil, err
		}
	}
	var out *socialpb.Group
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		g, role, err := s.lockAsMember(ctx, tx, id, me)
		if err != nil {
			return err
		}
		if role != RoleOwner && role != RoleAdmin {
			return errOwnerOrAdmin
		}
		if req.Name != nil {
			g.name = req.GetName()
		}
		if req.Description != nil {
			g.description = req.GetDescription()
		}
		if req.Name != nil || req.Description != nil {
			if _, err := tx.ExecContext(ctx, "UPDATE social_groups SET name = ?, description = ? WHERE id = ?", g.name, g.description, id); err != nil {
				return fmt.Errorf("update group: %w", err)
			}
		}
		out = g.proto(role)
		return nil
	})
	return out, err
}

// DisbandGroup ends a group; for its owner. All members leave at once, the
// version grows one last time, and from then on the group is NotFound
// (GetMembership: exists false, with that last version).
func (s *Service) DisbandGroup(ctx context.Context, req *socialpb.GroupRef) (*socialpb.Empty, error) {
	err := s.disbandGroup(ctx, req)
	return &socialpb.Empty{}, s.rpcErr(ctx, err)
}

func (s *Service) disbandGroup(ctx context.Context, req *socialpb.GroupRef) error {
	me, err := callerUser(ctx)
	if err != nil {
		return err
	}
	id := req.GetGroupId()
	if err := checkGroupID(id); err != nil {
		return err
	}
	var version int64
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		g, role, err := s.lockAsMember(ctx, tx, id, me)
		if err != nil {
			return err
		}
		if role != RoleOwner {
			return errOwnerOnly
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM group_members WHERE group_id = ?", id); err != nil {
			return fmt.Errorf("disband: %w", err)
		}
		if _, err := tx.ExecContext(ctx, "UPDATE social_groups SET disbanded_at = ? WHERE id = ?", now(), id); err != nil {
			return fmt.Errorf("disband: %w", err)
		}
		if err := bumpGroup(ctx, tx, g, 0); err != nil {
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

// ListMyGroups pages through the caller's groups in group id order.
func (s *Service) ListMyGroups(ctx context.Context, req *socialpb.PageRequest) (*socialpb.ListGroupsResponse, error) {
	out, err := s.listMyGroups(ctx, req)
	return out, s.rpcErr(ctx, err)
}

func (s *Service) listMyGroups(ctx context.Context, req *socialpb.PageRequest) (*socialpb.ListGroupsResponse, error) {
	me, err := callerUser(ctx)
	if err != nil {
		return nil, err
	}
	p, err := parsePage(pageGroups, req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	rows, err := s.db.R.QueryContext(ctx, `SELECT g.id, g.name, g.description, g.owner, g.member_count, g.version, g.created_at, m.role
		FROM group_members m JOIN social_groups g ON g.id = m.group_id
		WHERE m.user_id = ? AND m.group_id > ? ORDER BY m.group_id LIMIT ?`, me, p.after, p.size+1)
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	defer rows.Close()
	var groups []*socialpb.Group
	for rows.Next() {
		var g groupRow
		var role string
		if err := rows.Scan(&g.id, &g.name, &g.description, &g.owner, &g.memberCount, &g.version, &g.createdAt, &role); err != nil {
			return nil, fmt.Errorf("list groups: %w", err)
		}
		groups = append(groups, g.proto(role))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	groups, next := cut(p, pageGroups, groups, (*socialpb.Group).GetId)
	return &socialpb.ListGroupsResponse{Groups: groups, NextPageToken: next}, nil
}

// lockAsMember locks the live group id (see db.go) and returns it with
// user's role in it; errNoSuchGroup if user is not a member.
func (s *Service) lockAsMember(ctx context.Context, tx *sql.Tx, id, user string) (*groupRow, string, error) {
	g, err := s.loadGroup(ctx, tx, id, true)
	if err != nil {
		return nil, "", err
	}
	role, err := roleOf(ctx, tx, id, user)
	if err != nil {
		return nil, "", err
	}
	if role == "" {
		return nil, "", errNoSuchGroup
	}
	return g, role, nil
}
