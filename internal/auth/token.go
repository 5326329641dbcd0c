package auth

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Every error Verify returns matches exactly one of these (with errors.Is),
// and also the jwt/v5 sentinel that gives the reason, such as
// jwt.ErrTokenNotValidYet or jwt.ErrTokenSignatureInvalid.
var (
	// ErrTokenExpired: the token was valid but its exp has passed (beyond
	// the leeway). The client should refresh it.
	ErrTokenExpired = errors.New("auth: token expired")
	// ErrUnknownKey: the token's kid names no key in the ring, for example
	// a key removed after rotation. Remove also returns it for an unknown kid.
	ErrUnknownKey = errors.New("auth: unknown signing key")
	// ErrTokenInvalid: any other reason to reject the token: malformed,
	// wrong algorithm, missing kid, bad signature, wrong issuer or type,
	// missing claims, or not valid yet.
	ErrTokenInvalid = errors.New("auth: invalid token")
)

const (
	// Issuer is the iss claim of every Surge token.
	Issuer = "surge"
	// TypeAccess is the typ claim of an access token, the only type
	// Verify accepts.
	TypeAccess = "access"
)

// Claims are the claims of a Surge access token. RegisteredClaims carries
// sub (the user id), iss, iat, nbf, exp and jti (the token id, for
// revocation).
type Claims struct {
	jwt.RegisteredClaims
	Roles []string `json:"roles,omitempty"`
	Type  string   `json:"typ,omitempty"`
}

// Validate implements jwt.ClaimsValidator: jwt/v5 calls it during Verify,
// after the signature and the time-based claims are checked. It requires
// what the generic validator cannot: a subject, iat, a token id, and the
// access type.
func (c *Claims) Validate() error {
	switch {
	case c.Subject == "":
		return fmt.Errorf("%w: sub", jwt.ErrTokenRequiredClaimMissing)
	case c.IssuedAt == nil:
		return fmt.Errorf("%w: iat", jwt.ErrTokenRequiredClaimMissing)
	case c.ID == "":
		return fmt.Errorf("%w: jti", jwt.ErrTokenRequiredClaimMissing)
	case c.Type != TypeAccess:
		return fmt.Errorf("%w: typ is %q, want %q", jwt.ErrTokenInvalidClaims, c.Type, TypeAccess)
	}
	return nil
}

// Issue returns an access token for user with the given roles, valid from
// now for ttl, signed with the active key and naming it in the kid header.
// It sets sub, iss, iat, nbf, exp and a random jti.
func (k *Keyring) Issue(user string, roles []string, ttl time.Duration, now time.Time) (string, error) {
	if user == "" {
		return "", errors.New("auth: issue token: empty user")
	}
	if ttl <= 0 {
		return "", fmt.Errorf("auth: issue token: ttl %v, want > 0", ttl)
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", fmt.Errorf("auth: issue token: %w", err)
	}
	set := k.set.Load()
	claims := &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    Issuer,
			Subject:   user,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			ID:        base64.RawURLEncoding.EncodeToString(id[:]),
		},
		Roles: slices.Clone(roles),
		Type:  TypeAccess,
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	tok.Header["kid"] = set.active
	s, err := tok.SignedString(set.keys[set.active])
	if err != nil {
		return "", fmt.Errorf("auth: issue token: %w", err)
	}
	return s, nil
}

// Verify checks token as of now and returns its claims. The token must be
// an HS256 JWT (no other algorithm is accepted, whatever its header says)
// whose kid names a key in the ring and whose signature that key verifies,
// with iss "surge", typ "access", a sub, a jti, an exp not yet passed, and
// iat and nbf (if present) not in the future, each time check allowing the
// keyring's leeway. See ErrTokenExpired for how errors are classified.
func (k *Keyring) Verify(token string, now time.Time) (*Claims, error) {
	set := k.set.Load()
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(k.leeway),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	claims := new(Claims)
	_, err := p.ParseWithClaims(token, claims, set.keyfunc)
	switch {
	case err == nil:
		return claims, nil
	case errors.Is(err, ErrUnknownKey):
		return nil, fmt.Errorf("auth: verify token: %w", err)
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, fmt.Errorf("%w: %w", ErrTokenExpired, err)
	default:
		return nil, fmt.Errorf("%w: %w", ErrTokenInvalid, err)
	}
}

// errMissingKID is returned by keyfunc and wrapped into ErrTokenInvalid.
var errMissingKID = errors.New("missing or non-string kid header")

// keyfunc returns the secret the token's kid names. jwt/v5 calls it only
// after checking that the algorithm is HS256.
func (s *keyset) keyfunc(t *jwt.Token) (any, error) {
	kid, ok := t.Header["kid"].(string)
	if !ok || kid == "" {
		return nil, errMissingKID
	}
	secret, ok := s.keys[kid]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownKey, kid)
	}
	return secret, nil
}
