package account

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/surgechat/surge/services/account/accountpb"
)

// Refresh tokens are opaque: 32 random bytes in unpadded base64url (43
// characters). Only their SHA-256 is stored, so a copy of the database
// cannot be used to refresh. Each login starts a family (16 random bytes);
// every refresh adds the new token to the presented one's family.
const (
	refreshTokenLen = 32
	familyLen       = 16
)

// newRefreshToken returns a fresh token and its hash.
func newRefreshToken() (string, []byte, error) {
	var raw [refreshTokenLen]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", nil, fmt.Errorf("account: refresh token: %w", err)
	}
	sum := sha256.Sum256(raw[:])
	return base64.RawURLEncoding.EncodeToString(raw[:]), sum[:], nil
}

// hashRefreshToken returns the stored hash of token, or false if token
// is not one that newRefreshToken could have made.
func hashRefreshToken(token string) ([]byte, bool) {
	if len(token) != base64.RawURLEncoding.EncodedLen(refreshTokenLen) {
		return nil, false
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(raw) != refreshTokenLen {
		return nil, false
	}
	sum := sha256.Sum256(raw)
	return sum[:], true
}

func newFamily() ([]byte, error) {
	f := make([]byte, familyLen)
	if _, err := rand.Read(f); err != nil {
		return nil, fmt.Errorf("account: token family: %w", err)
	}
	return f, nil
}

// accessToken issues an access token for u as of now.
func (s *Service) accessToken(u userRow, now time.Time) (string, int64, error) {
	tok, err := s.cfg.Keys.Issue(u.ID, u.Roles, s.cfg.AccessTTL, now)
	if err != nil {
		return "", 0, err
	}
	return tok, now.Add(s.cfg.AccessTTL).UnixMilli(), nil
}

// startSession issues the tokens of a new login of u: an access token and
// the first refresh token of a new family.
func (s *Service) startSession(ctx context.Context, u userRow, now time.Time) (*accountpb.Tokens, error) {
	family, err := newFamily()
	if err != nil {
		return nil, err
	}
	refresh, hash, err := newRefreshToken()
	if err != nil {
		return nil, err
	}
	row := tokenRow{
		Hash:      hash,
		UserID:    u.ID,
		Family:    family,
		ExpiresAt: now.Add(s.cfg.RefreshTTL).UnixMilli(),
		CreatedAt: now.UnixMilli(),
	}
	if err := s.db.insertToken(ctx, s.db.W, row); err != nil {
		return nil, err
	}
	access, accessExp, err := s.accessToken(u, now)
	if err != nil {
		return nil, err
	}
	return &accountpb.Tokens{
		AccessToken:      access,
		RefreshToken:     refresh,
		AccessExpiresAt:  accessExp,
		RefreshExpiresAt: row.ExpiresAt,
		User:             userProto(u),
	}, nil
}

// cleanupBatch bounds one DELETE of expired refresh tokens.
const cleanupBatch = 1000

// cleanup deletes the refresh tokens that expired before now, in batches.
func (s *Service) cleanup(ctx context.Context) error {
	now := s.cfg.Now().UnixMilli()
	var total int64
	for {
		n, err := s.db.deleteExpired(ctx, now, cleanupBatch)
		total += n
		if err != nil {
			return err
		}
		if n < cleanupBatch {
			if total > 0 {
				s.log.Debug("deleted expired refresh tokens", "count", total)
			}
			return nil
		}
	}
}

// janitor runs cleanup every interval until ctx ends.
func (s *Service) janitor(ctx context.Context, interval time.Duration) {
	defer close(s.janitorDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		if err := s.cleanup(cctx); err != nil && ctx.Err() == nil {
			s.log.Warn("delete expired refresh tokens", "err", err)
		}
		cancel()
	}
}
