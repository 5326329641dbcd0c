package auth

import (
	"bytes"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var (
	testNow    = time.Date(2026, 3, 17, 12, 0, 0, 0, time.UTC)
	testSecret = bytes.Repeat([]byte{0x5a}, MinSecretLen)
)

func testKeyring(t testing.TB) *Keyring {
	t.Helper()
	k, err := NewKeyring("k1", map[string][]byte{"k1": testSecret})
	if err != nil {
		t.Fatalf("NewKeyring: %v", err)
	}
	return k
}

// validClaims returns the claims Issue would set for user "u1" at testNow.
func validClaims() *Claims {
	return &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    Issuer,
			Subject:   "u1",
			IssuedAt:  jwt.NewNumericDate(testNow),
			NotBefore: jwt.NewNumericDate(testNow),
			ExpiresAt: jwt.NewNumericDate(testNow.Add(time.Hour)),
			ID:        "jti-1",
		},
		Type: TypeAccess,
	}
}

// sign builds a token by hand: method, kid header (omitted if empty),
// claims edited by edit, signed with key.
func sign(t *testing.T, method jwt.SigningMethod, kid string, edit func(*Claims), key any) string {
	t.Helper()
	c := validClaims()
	if edit != nil {
		edit(c)
	}
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

func TestIssueVerify(t *testing.T) {
	k := testKeyring(t)
	tok, err := k.Issue("u42", []string{"user", "operator"}, 15*time.Minute, testNow)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	c, err := k.Verify(tok, testNow.Add(time.Minute))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if c.Subject != "u42" || c.Issuer != Issuer || c.Type != TypeAccess || !slices.Equal(c.Roles, []string{"user", "operator"}) {
		t.Fatalf("claims: sub %q iss %q typ %q roles %v", c.Subject, c.Issuer, c.Type, c.Roles)
	}
	if !c.IssuedAt.Equal(testNow) || !c.NotBefore.Equal(testNow) || !c.ExpiresAt.Equal(testNow.Add(15*time.Minute)) {
		t.Fatalf("times: iat %v nbf %v exp %v", c.IssuedAt, c.NotBefore, c.ExpiresAt)
	}
	if len(c.ID) < 20 {
		t.Fatalf("jti %q: want 16 random bytes", c.ID)
	}
	tok2, _ := k.Issue("u42", nil, time.Minute, testNow)
	if c2, err := k.Verify(tok2, testNow); err != nil || c2.ID == c.ID || c2.Roles != nil {
		t.Fatalf("second token: err %v, jti %q (first %q), roles %v", err, c2.ID, c.ID, c2.Roles)
	}
	unverified, _, err := jwt.NewParser().ParseUnverified(tok, &Claims{})
	if err != nil || unverified.Header["kid"] != "k1" || unverified.Header["alg"] != "HS256" {
		t.Fatalf("header %v, err %v: want alg HS256, kid k1", unverified.Header, err)
	}
}

func TestIssueErrors(t *testing.T) {
	k := testKeyring(t)
	f := func(user string, ttl time.Duration, want string) {
		t.Helper()
		_, err := k.Issue(user, nil, ttl, testNow)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Issue(%q, %v): error %v, want one containing %q", user, ttl, err, want)
		}
	}
	f("", time.Minute, "empty user")
	f("u1", 0, "ttl 0s")
	f("u1", -time.Second, "ttl -1s")
}

func TestVerifyRejects(t *testing.T) {
	k := testKeyring(t)
	good := sign(t, jwt.SigningMethodHS256, "k1", nil, testSecret)

	// f verifies token at now and wants an error matching our sentinel and
	// jwt's (nil jwtErr: accept any reason).
	f := func(name, token string, now time.Time, want, jwtErr error) {
		t.Helper()
		c, err := k.Verify(token, now)
		if !errors.Is(err, want) || (jwtErr != nil && !errors.Is(err, jwtErr)) {
			t.Fatalf("%s: Verify error %v, want errors.Is %v and %v", name, err, want, jwtErr)
		}
		if c != nil {
			t.Fatalf("%s: got claims %+v with error", name, c)
		}
		for _, other := range []error{ErrTokenExpired, ErrUnknownKey, ErrTokenInvalid} {
			if other != want && errors.Is(err, other) {
				t.Fatalf("%s: error %v matches both %v and %v", name, err, want, other)
			}
		}
	}
	edit := func(fn func(*Claims)) string { return sign(t, jwt.SigningMethodHS256, "k1", fn, testSecret) }

	// Time checks, with the default 30s leeway.
	f("expired", good, testNow.Add(time.Hour+DefaultLeeway), ErrTokenExpired, jwt.ErrTokenExpired)
	f("expired long ago", good, testNow.Add(48*time.Hour), ErrTokenExpired, jwt.ErrTokenExpired)
	f("nbf in the future", edit(func(c *Claims) { c.NotBefore = jwt.NewNumericDate(testNow.Add(5 * time.Minute)) }),
		testNow, ErrTokenInvalid, jwt.ErrTokenNotValidYet)
	f("iat in the future beyond leeway", edit(func(c *Claims) { c.IssuedAt = jwt.NewNumericDate(testNow.Add(DefaultLeeway + time.Second)) }),
		testNow, ErrTokenInvalid, jwt.ErrTokenUsedBeforeIssued)
	f("no exp", edit(func(c *Claims) { c.ExpiresAt = nil }), testNow, ErrTokenInvalid, jwt.ErrTokenRequiredClaimMissing)

	// Algorithm pinning.
	none := sign(t, jwt.SigningMethodNone, "k1", nil, jwt.UnsafeAllowNoneSignatureType)
	f("alg none", none, testNow, ErrTokenInvalid, jwt.ErrTokenSignatureInvalid)
	f("alg none, no signature part", strings.TrimSuffix(none, "."), testNow, ErrTokenInvalid, jwt.ErrTokenMalformed)
	f("HS512 with the same secret", sign(t, jwt.SigningMethodHS512, "k1", nil, testSecret),
		testNow, ErrTokenInvalid, jwt.ErrTokenSignatureInvalid)
	f("HS384 with the same secret", sign(t, jwt.SigningMethodHS384, "k1", nil, testSecret),
		testNow, ErrTokenInvalid, jwt.ErrTokenSignatureInvalid)
	f("RS256 header", withHeader(good, `{"alg":"RS256","kid":"k1","typ":"JWT"}`), testNow, ErrTokenInvalid, jwt.ErrTokenSignatureInvalid)
	f("unknown alg", withHeader(good, `{"alg":"HS257","kid":"k1"}`), testNow, ErrTokenInvalid, jwt.ErrTokenUnverifiable)

	// Key ids.
	f("missing kid", sign(t, jwt.SigningMethodHS256, "", nil, testSecret), testNow, ErrTokenInvalid, errMissingKID)
	f("numeric kid", withHeader(good, `{"alg":"HS256","kid":1}`), testNow, ErrTokenInvalid, errMissingKID)
	f("unknown kid", sign(t, jwt.SigningMethodHS256, "k9", nil, testSecret), testNow, ErrUnknownKey, jwt.ErrTokenUnverifiable)
	f("right kid, other secret", sign(t, jwt.SigningMethodHS256, "k1", nil, bytes.Repeat([]byte{1}, 32)),
		testNow, ErrTokenInvalid, jwt.ErrTokenSignatureInvalid)

	// Tampering.
	parts := strings.Split(good, ".")
	payload := strings.Replace(mustDecode(t, parts[1]), `"sub":"u1"`, `"sub":"u2"`, 1)
	f("tampered payload", parts[0]+"."+base64.RawURLEncoding.EncodeToString([]byte(payload))+"."+parts[2],
		testNow, ErrTokenInvalid, jwt.ErrTokenSignatureInvalid)
	sig := []byte(parts[2])
	sig[0] ^= 'A' ^ 'B' // the first character's 6 bits all count, unlike the last's
	f("tampered signature", parts[0]+"."+parts[1]+"."+string(sig), testNow, ErrTokenInvalid, jwt.ErrTokenSignatureInvalid)
	f("truncated signature", good[:len(good)-3] /* 40 chars, still valid base64 */, testNow, ErrTokenInvalid, jwt.ErrTokenSignatureInvalid)

	// Claims.
	f("wrong issuer", edit(func(c *Claims) { c.Issuer = "evil" }), testNow, ErrTokenInvalid, jwt.ErrTokenInvalidIssuer)
	f("no issuer", edit(func(c *Claims) { c.Issuer = "" }), testNow, ErrTokenInvalid, jwt.ErrTokenRequiredClaimMissing)
	f("no subject", edit(func(c *Claims) { c.Subject = "" }), testNow, ErrTokenInvalid, jwt.ErrTokenRequiredClaimMissing)
	f("no iat", edit(func(c *Claims) { c.IssuedAt = nil }), testNow, ErrTokenInvalid, jwt.ErrTokenRequiredClaimMissing)
	f("no jti", edit(func(c *Claims) { c.ID = "" }), testNow, ErrTokenInvalid, jwt.ErrTokenRequiredClaimMissing)
	f("refresh type", edit(func(c *Claims) { c.Type = "refresh" }), testNow, ErrTokenInvalid, jwt.ErrTokenInvalidClaims)

	// Not a JWT.
	f("empty", "", testNow, ErrTokenInvalid, jwt.ErrTokenMalformed)
	f("garbage", "not.a.jwt", testNow, ErrTokenInvalid, jwt.ErrTokenMalformed)
}

func TestVerifyLeeway(t *testing.T) {
	k := testKeyring(t)
	f := func(k *Keyring, name string, edit func(*Claims), now time.Time, ok bool) {
		t.Helper()
		_, err := k.Verify(sign(t, jwt.SigningMethodHS256, "k1", edit, testSecret), now)
		if (err == nil) != ok {
			t.Fatalf("%s: Verify error %v, want ok=%v", name, err, ok)
		}
	}
	late := testNow.Add(time.Hour + DefaultLeeway - time.Second)
	f(k, "exp passed within leeway", nil, late, true)
	f(k, "iat ahead within leeway", func(c *Claims) { c.IssuedAt = jwt.NewNumericDate(testNow.Add(20 * time.Second)) }, testNow, true)
	f(k, "nbf ahead within leeway", func(c *Claims) { c.NotBefore = jwt.NewNumericDate(testNow.Add(20 * time.Second)) }, testNow, true)
	f(k, "no nbf", func(c *Claims) { c.NotBefore = nil }, testNow, true)

	strict, err := NewKeyring("k1", map[string][]byte{"k1": testSecret}, WithLeeway(0))
	if err != nil {
		t.Fatal(err)
	}
	f(strict, "no leeway: exp passed by 1s", nil, testNow.Add(time.Hour+time.Second), false)
	f(strict, "no leeway: just before exp", nil, testNow.Add(time.Hour-time.Second), true)
	f(strict, "no leeway: iat ahead by 1s", func(c *Claims) { c.IssuedAt = jwt.NewNumericDate(testNow.Add(time.Second)) }, testNow, false)
}

func TestRotateAndRemove(t *testing.T) {
	k := testKeyring(t)
	old, err := k.Issue("u1", nil, time.Hour, testNow)
	if err != nil {
		t.Fatal(err)
	}
	path := t.TempDir() + "/keyring.json"
	kid, err := k.Rotate(path)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if kid == "k1" || k.Active() != kid || !slices.Equal(k.KIDs(), []string{"k1", kid}) {
		t.Fatalf("after Rotate: new kid %q, active %q, kids %v", kid, k.Active(), k.KIDs())
	}
	if _, err := k.Verify(old, testNow); err != nil {
		t.Fatalf("token from the old key after Rotate: %v", err)
	}
	fresh, _ := k.Issue("u1", nil, time.Hour, testNow)
	tok, _, _ := jwt.NewParser().ParseUnverified(fresh, &Claims{})
	if tok.Header["kid"] != kid {
		t.Fatalf("new token's kid %v, want %q", tok.Header["kid"], kid)
	}

	// The file holds both keys, new one active; a process loading it
	// verifies both tokens.
	loaded, err := LoadOrCreateKeyring(path)
	if err != nil {
		t.Fatalf("LoadOrCreateKeyring after Rotate: %v", err)
	}
	if loaded.Active() != kid || !slices.Equal(loaded.KIDs(), k.KIDs()) {
		t.Fatalf("loaded keyring %v, want %v", loaded, k)
	}
	for _, tok := range []string{old, fresh} {
		if _, err := loaded.Verify(tok, testNow); err != nil {
			t.Fatalf("loaded keyring: Verify: %v", err)
		}
	}

	if err := k.Remove(kid); err == nil || !strings.Contains(err.Error(), "active key") {
		t.Fatalf("Remove(active): %v, want a refusal", err)
	}
	if err := k.Remove("k7"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Remove(unknown): %v, want ErrUnknownKey", err)
	}
	if err := k.Remove("k1"); err != nil {
		t.Fatalf("Remove(k1): %v", err)
	}
	if _, err := k.Verify(old, testNow); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("token from a removed key: %v, want ErrUnknownKey", err)
	}
	if _, err := k.Verify(fresh, testNow); err != nil {
		t.Fatalf("token from the active key after Remove: %v", err)
	}
	if _, err := loaded.Verify(old, testNow); err != nil {
		t.Fatalf("Remove changed another keyring: %v", err)
	}
	if err := k.Save(path); err != nil {
		t.Fatalf("Save: %v", err)
	}
	if reloaded, err := LoadOrCreateKeyring(path); err != nil || !slices.Equal(reloaded.KIDs(), []string{kid}) {
		t.Fatalf("reloaded after Remove+Save: %v, %v; want only %q", reloaded, err, kid)
	}
}

func TestRotateWriteFailureKeepsKeyring(t *testing.T) {
	k := testKeyring(t)
	if _, err := k.Rotate(t.TempDir() + "/missing-dir/keyring.json"); err == nil {
		t.Fatalf("Rotate into a missing directory succeeded")
	}
	if k.Active() != "k1" || len(k.KIDs()) != 1 {
		t.Fatalf("failed Rotate changed the keyring: %v", k)
	}
}

// TestConcurrentUse lets the race detector check Issue and Verify against
// Rotate and Remove.
func TestConcurrentUse(t *testing.T) {
	k := testKeyring(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				tok, err := k.Issue("u1", nil, time.Hour, testNow)
				if err != nil {
					t.Errorf("Issue: %v", err)
					return
				}
				// The kid may be removed between Issue and Verify.
				if _, err := k.Verify(tok, testNow); err != nil && !errors.Is(err, ErrUnknownKey) {
					t.Errorf("Verify: %v", err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			prev := k.Active()
			if _, err := k.Rotate(""); err != nil {
				t.Errorf("Rotate: %v", err)
				return
			}
			if err := k.Remove(prev); err != nil {
				t.Errorf("Remove: %v", err)
				return
			}
		}
	})
	wg.Wait()
}

// withHeader replaces token's header segment with the JSON header.
func withHeader(token, header string) string {
	_, rest, _ := strings.Cut(token, ".")
	return base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + rest
}

func mustDecode(t *testing.T, seg string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatalf("decode %q: %v", seg, err)
	}
	return string(b)
}
