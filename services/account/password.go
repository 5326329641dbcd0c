package account

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2Params are the argon2id cost parameters of new password hashes.
// Every hash records the parameters it was made with (PHC string format),
// so raising them later keeps old hashes verifying; a user's hash is
// rewritten with the current parameters at their next successful login.
type Argon2Params struct {
	// Memory is the memory cost in KiB. Zero means 19456 (19 MiB), OWASP's
	// recommendation for argon2id.
	Memory uint32
	// Time is the number of passes. Zero means 2.
	Time uint32
	// Threads is the degree of parallelism. Zero means 1.
	Threads uint8
}

// DefaultArgon2 are OWASP's argon2id parameters (Password Storage Cheat
// Sheet): m=19456 KiB, t=2, p=1.
var DefaultArgon2 = Argon2Params{Memory: 19456, Time: 2, Threads: 1}

// Every hash has a 16-byte random salt and a 32-byte key.
const (
	saltLen = 16
	keyLen  = 32
)

// Bounds on the parameters a stored hash may name, so a corrupt or
// hostile row cannot make a login allocate gigabytes or spin for minutes.
const (
	maxArgon2Memory = 1 << 20 // KiB: 1 GiB
	maxArgon2Time   = 64
)

func (p *Argon2Params) setDefaults() {
	if p.Memory == 0 {
		p.Memory = DefaultArgon2.Memory
	}
	if p.Time == 0 {
		p.Time = DefaultArgon2.Time
	}
	if p.Threads == 0 {
		p.Threads = DefaultArgon2.Threads
	}
}

func (p Argon2Params) validate() error {
	switch {
	case p.Memory < 8*uint32(p.Threads):
		return fmt.Errorf("argon2 memory %d KiB is below 8 KiB per thread", p.Memory)
	case p.Memory > maxArgon2Memory:
		return fmt.Errorf("argon2 memory %d KiB is above %d", p.Memory, maxArgon2Memory)
	case p.Time > maxArgon2Time:
		return fmt.Errorf("argon2 time %d is above %d", p.Time, maxArgon2Time)
	}
	return nil
}

// errBadHash: a stored hash is not an argon2id PHC string this package can
// verify.
var errBadHash = errors.New("account: malformed password hash")

// hashPassword returns the PHC string of password under p with a fresh
// random salt:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>
//
// salt and key in unpadded standard base64, as the PHC format specifies.
func hashPassword(password string, p Argon2Params) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("account: password salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, keyLen)
	return encodePHC(p, salt, key), nil
}

func encodePHC(p Argon2Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt),
		base64.RawStdEncoding.EncodeToString(key))
}

// phc is a parsed argon2id PHC string.
type phc struct {
	params    Argon2Params
	salt, key []byte
}

// parsePHC parses an argon2id PHC string strictly: version 19, the
// parameters in the order m, t, p, within the bounds above, a salt of at
// least 8 bytes and a key of 16 to 64 bytes.
func parsePHC(s string) (phc, error) {
	var h phc
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return h, fmt.Errorf("%w: want $argon2id$v=..$m=..,t=..,p=..$salt$key", errBadHash)
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return h, fmt.Errorf("%w: version %q, want v=%d", errBadHash, parts[2], argon2.Version)
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return h, fmt.Errorf("%w: parameters %q", errBadHash, parts[3])
	}
	var vals [3]uint64
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(params[i], name+"=")
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil {
			return h, fmt.Errorf("%w: parameters %q", errBadHash, parts[3])
		}
		vals[i] = n
	}
	if vals[0] == 0 || vals[1] == 0 || vals[2] == 0 || vals[2] > 255 {
		return h, fmt.Errorf("%w: parameters %q out of range", errBadHash, parts[3])
	}
	h.params = Argon2Params{Memory: uint32(vals[0]), Time: uint32(vals[1]), Threads: uint8(vals[2])}
	if err := h.params.validate(); err != nil {
		return h, fmt.Errorf("%w: %w", errBadHash, err)
	}
	var err error
	if h.salt, err = base64.RawStdEncoding.Strict().DecodeString(parts[4]); err != nil || len(h.salt) < 8 {
		return h, fmt.Errorf("%w: salt", errBadHash)
	}
	if h.key, err = base64.RawStdEncoding.Strict().DecodeString(parts[5]); err != nil || len(h.key) < 16 || len(h.key) > 64 {
		return h, fmt.Errorf("%w: key", errBadHash)
	}
	return h, nil
}

// verifyPassword reports whether password matches the PHC string encoded,
// comparing the derived key in constant time.
func verifyPassword(password, encoded string) (bool, error) {
	h, err := parsePHC(encoded)
	if err != nil {
		return false, err
	}
	key := argon2.IDKey([]byte(password), h.salt, h.params.Time, h.params.Memory, h.params.Threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(key, h.key) == 1, nil
}

// needsRehash reports whether encoded was made with parameters other than
// p (or lengths other than ours), so that a login should store a new hash.
func needsRehash(encoded string, p Argon2Params) bool {
	h, err := parsePHC(encoded)
	return err != nil || h.params != p || len(h.salt) != saltLen || len(h.key) != keyLen
}

// hasher runs argon2 under a bound on concurrent hashes: each one holds
// Memory KiB for its duration, so a burst of logins must queue rather than
// exhaust memory.
type hasher struct {
	params Argon2Params
	slots  chan struct{}
	// dummy is a hash of a random password under params, verified when a
	// login names an unknown user so that it costs as much as a known one.
	dummy string
}

func newHasher(p Argon2Params, concurrency int) (*hasher, error) {
	var pw [16]byte
	rand.Read(pw[:])
	dummy, err := hashPassword(string(pw[:]), p)
	if err != nil {
		return nil, err
	}
	return &hasher{params: p, slots: make(chan struct{}, concurrency), dummy: dummy}, nil
}

func (h *hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *hasher) release() { <-h.slots }

// hash hashes password with the current parameters.
func (h *hasher) hash(ctx context.Context, password string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	return hashPassword(password, h.params)
}

// verify checks password against encoded; an empty encoded (unknown user)
// is checked against the dummy hash and never matches.
func (h *hasher) verify(ctx context.Context, password, encoded string) (bool, error) {
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release()
	if encoded == "" {
		verifyPassword(password, h.dummy)
		return false, nil
	}
	return verifyPassword(password, encoded)
}
