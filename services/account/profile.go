package account

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/surgechat/surge/internal/wire"
	"github.com/surgechat/surge/services/account/accountpb"
)

// GetProfile returns a user's profile, or the caller's when user_id is
// empty. Any authenticated caller may read any profile.
func (s *Service) GetProfile(ctx context.Context, req *accountpb.GetProfileRequest) (*accountpb.User, error) {
	id := strings.ToLower(req.GetUserId())
	if id == "" {
		var err error
		if id, err = callerID(ctx); err != nil {
			return nil, err
		}
	} else if !wire.ValidID(id) {
		return nil, invalidArgument("user_id is not a valid user id")
	}
	u, err := s.db.user(ctx, id)
	switch {
	case errors.Is(err, errUserNotFound):
		return nil, userNotFound(id)
	case err != nil:
		return nil, s.internalError(ctx, "get profile", err)
	}
	return userProto(u), nil
}

// UpdateProfile changes the caller's profile fields that the request
// sets; an empty string clears a field.
func (s *Service) UpdateProfile(ctx context.Context, req *accountpb.UpdateProfileRequest) (*accountpb.User, error) {
	id, err := callerID(ctx)
	if err != nil {
		return nil, err
	}
	var p profileUpdate
	if req.DisplayName != nil {
		v := strings.TrimSpace(req.GetDisplayName())
		if msg := checkText("display_name", v, MaxDisplayNameLen, false); msg != "" {
			return nil, invalidArgument(msg)
		}
		p.DisplayName = &v
	}
	if req.Bio != nil {
		v := req.GetBio()
		if msg := checkText("bio", v, MaxBioLen, true); msg != "" {
			return nil, invalidArgument(msg)
		}
		p.Bio = &v
	}
	if req.AvatarUrl != nil {
		v := strings.TrimSpace(req.GetAvatarUrl())
		if msg := checkAvatarURL(v); msg != "" {
			return nil, invalidArgument(msg)
		}
		p.AvatarURL = &v
	}
	u, err := s.db.updateProfile(ctx, id, p)
	switch {
	case errors.Is(err, errUserNotFound):
		return nil, userNotFound(id)
	case err != nil:
		return nil, s.internalError(ctx, "update profile", err)
	}
	return userProto(u), nil
}

// SetRoles replaces a user's roles; "user" is always kept. Operators only.
// The change reaches the user's access tokens at their next refresh.
func (s *Service) SetRoles(ctx context.Context, req *accountpb.SetRolesRequest) (*accountpb.User, error) {
	caller, err := requireOperator(ctx)
	if err != nil {
		return nil, err
	}
	id := strings.ToLower(req.GetUserId())
	switch {
	case id == "":
		return nil, errUserIDRequired
	case !wire.ValidID(id):
		return nil, invalidArgument("user_id is not a valid user id")
	}
	roles, msg := normalizeRoles(req.GetRoles())
	if msg != "" {
		return nil, invalidArgument(msg)
	}
	if id == caller && !slices.Contains(roles, RoleOperator) {
		return nil, errSelfDemote
	}
	u, err := s.db.setRoles(ctx, id, roles)
	switch {
	case errors.Is(err, errUserNotFound):
		return nil, userNotFound(id)
	case err != nil:
		return nil, s.internalError(ctx, "set roles", err)
	}
	s.log.Info("roles set", "user", id, "roles", roles, "by", caller)
	return userProto(u), nil
}

// userProto is the API form of u; the password hash stays inside.
func userProto(u userRow) *accountpb.User {
	return &accountpb.User{
		Id:          u.ID,
		DisplayName: u.DisplayName,
		Bio:         u.Bio,
		AvatarUrl:   u.AvatarURL,
		Roles:       slices.Clone(u.Roles),
		CreatedAt:   u.CreatedAt,
	}
}

// Exists reports whether id names an account: the hook other services
// (social) use to refuse friend requests and members that name nobody.
func (s *Service) Exists(ctx context.Context, id string) (bool, error) {
	if !wire.ValidID(id) {
		return false, nil
	}
	_, err := s.db.user(ctx, strings.ToLower(id))
	switch {
	case errors.Is(err, errUserNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}
