package account

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/surgechat/surge/internal/sqldb"
	"github.com/surgechat/surge/internal/sqldb/sqldbtest"
)

// phcDefault is the shape of a hash under the default (OWASP) parameters:
// 16-byte salt (22 base64 characters), 32-byte key (43).
var phcDefault = regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

// TestDefaultArgon2: a Service built with a zero Argon2 hashes with
// OWASP's parameters, and the PHC string records them.
func TestDefaultArgon2(t *testing.T) {
	if DefaultArgon2 != (Argon2Params{Memory: 19456, Time: 2, Threads: 1}) {
		t.Fatalf("DefaultArgon2 = %+v", DefaultArgon2)
	}
	svc, err := New(context.Background(), Config{
		DB:              sqldb.Config{Driver: sqldb.DriverSQLite, DSN: sqldbtest.NewDSN(t, sqldb.DriverSQLite)},
		Keys:            testKeys(t),
		CleanupInterval: -1,
		Logger:          testLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if svc.cfg.Argon2 != DefaultArgon2 {
		t.Fatalf("Config.Argon2 defaults to %+v", svc.cfg.Argon2)
	}
	h, err := svc.hasher.hash(context.Background(), testPassword)
	if err != nil {
		t.Fatal(err)
	}
	if !phcDefault.MatchString(h) {
		t.Fatalf("hash %q, want %v", h, phcDefault)
	}
	if ok, err := verifyPassword(testPassword, h); !ok || err != nil {
		t.Fatalf("verify: %v, %v", ok, err)
	}
	if needsRehash(h, DefaultArgon2) {
		t.Fatal("a fresh default hash needs a rehash")
	}
}

func TestPHC(t *testing.T) {
	p := Argon2Params{Memory: 256, Time: 3, Threads: 2}
	h, err := hashPassword(testPassword, p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=256,t=3,p=2$") {
		t.Fatalf("hash %q", h)
	}
	parsed, err := parsePHC(h)
	if err != nil || parsed.params != p || len(parsed.salt) != 16 || len(parsed.key) != 32 {
		t.Fatalf("parsed %+v, %v", parsed, err)
	}
	if h2, _ := hashPassword(testPassword, p); h2 == h {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
	for _, tc := range []struct {
		pw   string
		want bool
	}{{testPassword, true}, {testPassword + " ", false}, {"", false}, {strings.ToUpper(testPassword), false}} {
		if ok, err := verifyPassword(tc.pw, h); ok != tc.want || err != nil {
			t.Errorf("verify %q: %v, %v; want %v", tc.pw, ok, err, tc.want)
		}
	}
	if !needsRehash(h, testArgon2) || needsRehash(h, p) {
		t.Fatal("needsRehash disagrees with the parameters")
	}

	// Reference vectors from libargon2 (the reference C implementation,
	// argon2id_hash_encoded): the parameters come from the string, not
	// the config, and encodePHC writes the same string.
	for _, ref := range []string{
		"$argon2id$v=19$m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$c8unoZL1fMiTW9VzsIzI4XiLIjeYmhsk2dCIUg21RpY",
		"$argon2id$v=19$m=19456,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$0qsHs573+LgGInzYb7sRqlOTBmqY4X6srNEm6ybpJ20",
	} {
		if ok, err := verifyPassword("password", ref); err != nil || !ok {
			t.Fatalf("reference %s: %v, %v", ref, ok, err)
		}
		if ok, _ := verifyPassword("Password", ref); ok {
			t.Fatalf("reference %s verifies a wrong password", ref)
		}
		parsed, err := parsePHC(ref)
		if err != nil {
			t.Fatal(err)
		}
		if got := encodePHC(parsed.params, parsed.salt, parsed.key); got != ref {
			t.Fatalf("encodePHC gives %s, want %s", got, ref)
		}
	}
}

func TestPHCMalformed(t *testing.T) {
	good, _ := hashPassword(testPassword, testArgon2)
	parts := strings.Split(good, "$")
	salt, key := parts[4], parts[5]
	for _, bad := range []string{
		"",
		"plaintext",
		"$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=256$" + salt + "$" + key,
		"$argon2id$v=19$m=4,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=99999999,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1000,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "=$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "==",
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key[:10],
		"$argon2id$v=19$m=64,t=1,p=1$$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "$",
	} {
		if _, err := verifyPassword(testPassword, bad); !errors.Is(err, errBadHash) {
			t.Errorf("verify against %q: %v, want errBadHash", bad, err)
		}
	}
}
