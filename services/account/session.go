package account

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/surgechat/surge/services/account/accountpb"
)

// Register creates a user. The username is lower-cased and becomes the
// user's id. Usernames in Config.Operators get the operator role.
func (s *Service) Register(ctx context.Context, req *accountpb.RegisterRequest) (*accountpb.User, error) {
	id, msg := normalizeUsername(req.GetUsername())
	if msg != "" {
		return nil, invalidArgument(msg)
	}
	if slices.Contains(ReservedUsernames, id) && !s.operators[id] {
		return nil, invalidArgument(fmt.Sprintf("username %q is reserved", id))
	}
	if msg := checkPassword(req.GetPassword()); msg != "" {
		return nil, invalidArgument(msg)
	}
	display := strings.TrimSpace(req.GetDisplayName())
	if msg := checkText("display_name", display, MaxDisplayNameLen, false); msg != "" {
		return nil, invalidArgument(msg)
	}
	// A taken name fails before the costly hash; the insert below still
	// decides a race.
	switch _, err := s.db.user(ctx, id); {
	case err == nil:
		return nil, usernameTaken(id)
	case !errors.Is(err, errUserNotFound):
		return nil, s.internalError(ctx, "register", err)
	}
	hash, err := s.hasher.hash(ctx, req.GetPassword())
	if err != nil {
		return nil, s.internalError(ctx, "register", err)
	}
	u := userRow{
		ID:           id,
		PasswordHash: hash,
		DisplayName:  display,
		Roles:        []string{RoleUser},
		CreatedAt:    s.cfg.Now().UnixMilli(),
	}
	if s.operators[id] {
		u.Roles = []string{RoleOperator, RoleUser}
	}
	switch err := s.db.createUser(ctx, u); {
	case errors.Is(err, errUserExists):
		return nil, usernameTaken(id)
	case err != nil:
		return nil, s.internalError(ctx, "register", err)
	}
	s.m.registrations.Inc()
	if s.operators[id] {
		s.log.Info("operator registered (Config.Operators)", "user", id)
	}
	return userProto(u), nil
}

// Login checks a username and password and starts a session. Failures
// are throttled per account and per client address; a wrong password and
// an unknown user fail alike.
func (s *Service) Login(ctx context.Context, req *accountpb.LoginRequest) (*accountpb.Tokens, error) {
	password := req.GetPassword()
	if req.GetUsername() == "" || password == "" {
		return nil, errLoginRequired
	}
	// A name that breaks the rules cannot exist: it fails like an unknown
	// one, but is not kept as a throttle key (it could be huge).
	id, msg := normalizeUsername(req.GetUsername())
	account := id
	if msg != "" {
		account = ""
	}
	md, _ := metadata.FromIncomingContext(ctx)
	p, _ := peer.FromContext(ctx)
	addr := clientAddr(md, p, s.cfg.TrustForwardedFor)
	now := s.cfg.Now()
	if t := s.throttle.begin(account, addr, now); t != nil {
		s.m.loginThrottled.Inc()
		return nil, throttledError(t)
	}

	var u userRow
	var err error
	if account != "" {
		u, err = s.db.user(ctx, account)
		if err != nil && !errors.Is(err, errUserNotFound) {
			s.throttle.abort(account, addr)
			return nil, s.internalError(ctx, "login", err)
		}
	}
	ok, err := s.hasher.verify(ctx, password, u.PasswordHash)
	if err != nil {
		s.throttle.abort(account, addr)
		return nil, s.internalError(ctx, "login", err)
	}
	if !ok {
		s.m.loginFailed.Inc()
		return nil, errBadCredentials
	}
	s.throttle.succeeded(account, addr)
	s.m.loginOK.Inc()
	if needsRehash(u.PasswordHash, s.cfg.Argon2) {
		s.rehash(ctx, u, password)
	}
	tokens, err := s.startSession(ctx, u, now)
	if err != nil {
		return nil, s.internalError(ctx, "login", err)
	}
	return tokens, nil
}

// rehash stores a hash of password under the current parameters for u,
// whose stored hash uses others. Failure only costs a rehash next time.
func (s *Service) rehash(ctx context.Context, u userRow, password string) {
	hash, err := s.hasher.hash(ctx, password)
	if err == nil {
		err = s.db.setPasswordHash(ctx, u.ID, u.PasswordHash, hash)
	}
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("rehash password", "user", u.ID, "err", err)
		}
		return
	}
	s.m.rehashes.Inc()
}

// Refresh exchanges a live refresh token for a new access token and a new
// refresh token, and marks the presented one used. Presenting a used
// token means that two parties hold it, one of them a thief: the whole
// login is revoked.
func (s *Service) Refresh(ctx context.Context, req *accountpb.RefreshRequest) (*accountpb.Tokens, error) {
	if req.GetRefreshToken() == "" {
		return nil, errRefreshRequired
	}
	hash, ok := hashRefreshToken(req.GetRefreshToken())
	if !ok {
		s.m.refreshInvalid.Inc()
		return nil, errRefreshInvalid
	}
	now := s.cfg.Now()
	refresh, nextHash, err := newRefreshToken()
	if err != nil {
		return nil, s.internalError(ctx, "refresh", err)
	}
	next := tokenRow{Hash: nextHash, ExpiresAt: now.Add(s.cfg.RefreshTTL).UnixMilli(), CreatedAt: now.UnixMilli()}
	u, out, err := s.db.rotate(ctx, hash, &next, now.UnixMilli())
	switch {
	case errors.Is(err, errTokenUnknown):
		s.m.refreshInvalid.Inc()
		return nil, errRefreshInvalid
	case err != nil:
		return nil, s.internalError(ctx, "refresh", err)
	}
	switch out {
	case rotateExpired:
		s.m.refreshInvalid.Inc()
		return nil, errRefreshExpired
	case rotateRevoked:
		s.m.refreshInvalid.Inc()
		return nil, errRefreshRevoked
	case rotateReused:
		s.m.refreshReused.Inc()
		s.log.Warn("used refresh token presented again; revoked its login", "user", u.ID)
		return nil, errRefreshReused
	}
	access, accessExp, err := s.accessToken(u, now)
	if err != nil {
		return nil, s.internalError(ctx, "refresh", err)
	}
	s.m.refreshOK.Inc()
	return &accountpb.Tokens{
		AccessToken:      access,
		RefreshToken:     refresh,
		AccessExpiresAt:  accessExp,
		RefreshExpiresAt: next.ExpiresAt,
		User:             userProto(u),
	}, nil
}

// Logout revokes the caller's login that refresh_token belongs to, or with
// all_sessions every refresh token of the caller. Access tokens already
// issued stay valid until they expire.
func (s *Service) Logout(ctx context.Context, req *accountpb.LogoutRequest) (*accountpb.LogoutResponse, error) {
	user, err := callerID(ctx)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now().UnixMilli()
	switch {
	case req.GetAllSessions():
		if err := s.db.revokeUser(ctx, user, now); err != nil {
			return nil, s.internalError(ctx, "logout", err)
		}
	case req.GetRefreshToken() != "":
		hash, ok := hashRefreshToken(req.GetRefreshToken())
		if !ok {
			return nil, errLogoutNotFound
		}
		switch err := s.db.revokeFamily(ctx, user, hash, now); {
		case errors.Is(err, errTokenUnknown):
			return nil, errLogoutNotFound
		case err != nil:
			return nil, s.internalError(ctx, "logout", err)
		}
	default:
		return nil, errLogoutWhat
	}
	return &accountpb.LogoutResponse{}, nil
}
