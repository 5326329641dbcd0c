package auth

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// MinSecretLen is the shortest HMAC secret a Keyring accepts, in bytes: the
// size of the SHA-256 output, as RFC 7518 section 3.2 requires for HS256.
const MinSecretLen = 32

// DefaultLeeway is the clock skew Verify tolerates on exp, nbf and iat when
// WithLeeway is not given.
const DefaultLeeway = 30 * time.Second

// Option configures a Keyring.
type Option func(*Keyring)

// WithLeeway sets the clock skew Verify tolerates between the issuer's clock
// and the verifier's on exp, nbf and iat (default DefaultLeeway, 30s). Zero
// means none; negative values are treated as zero.
func WithLeeway(d time.Duration) Option {
	return func(k *Keyring) { k.leeway = max(d, 0) }
}

// Keyring holds the HMAC secrets that sign and verify tokens, by key id
// (kid). Every key verifies; the active key signs.
//
// A Keyring is safe for concurrent use. Readers (Issue, Verify, Active, KIDs)
// load an immutable snapshot without locking; Rotate, Remove and Save are
// serialised by a mutex and publish a new snapshot.
type Keyring struct {
	mu     sync.Mutex // serialises writers and Save; readers never take it
	set    atomic.Pointer[keyset]
	leeway time.Duration // set once by options
}

// keyset is one immutable snapshot of a Keyring.
type keyset struct {
	active string
	keys   map[string][]byte
}

// keyringFile is the on-disk and ParseKeyring form:
//
//	{"active":"k1","keys":{"k1":"<standard base64 of the secret>"}}
type keyringFile struct {
	Active string            `json:"active"`
	Keys   map[string]string `json:"keys"`
}

// NewKeyring returns a keyring over keys, signing with keys[active]. The
// secrets are copied. It fails if active is not in keys, a kid is not 1 to
// 64 characters of [A-Za-z0-9._-], or a secret is shorter than MinSecretLen.
func NewKeyring(active string, keys map[string][]byte, opts ...Option) (*Keyring, error) {
	set := &keyset{active: active, keys: make(map[string][]byte, len(keys))}
	for kid, secret := range keys {
		set.keys[kid] = bytes.Clone(secret)
	}
	if err := set.validate(); err != nil {
		return nil, err
	}
	return newKeyring(set, opts), nil
}

func newKeyring(set *keyset, opts []Option) *Keyring {
	k := &Keyring{leeway: DefaultLeeway}
	for _, o := range opts {
		o(k)
	}
	k.set.Store(set)
	return k
}

// ParseKeyring parses the JSON form of a keyring,
// {"active":"k1","keys":{"k1":"<standard base64 secret>"}}, with the same
// checks as NewKeyring. Unknown fields are rejected.
func ParseKeyring(data []byte, opts ...Option) (*Keyring, error) {
	var f keyringFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("auth: parse keyring: %w", err)
	}
	if dec.More() {
		return nil, errors.New("auth: parse keyring: trailing data after the JSON object")
	}
	set := &keyset{active: f.Active, keys: make(map[string][]byte, len(f.Keys))}
	for kid, s := range f.Keys {
		secret, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("auth: parse keyring: key %q: secret is not standard base64: %w", kid, err)
		}
		set.keys[kid] = secret
	}
	if err := set.validate(); err != nil {
		return nil, err
	}
	return newKeyring(set, opts), nil
}

// LoadOrCreateKeyring reads the keyring file at path. If there is none, it
// creates one holding a single fresh random key (creating the parent
// directory with mode 0700 and the file with mode 0600) and returns that.
// When several processes race to create the file, all of them end up with
// the keyring the first one wrote.
func LoadOrCreateKeyring(path string, opts ...Option) (*Keyring, error) {
	k, err := loadKeyring(path, opts)
	if !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("auth: create keyring dir: %w", err)
	}
	kid, secret, err := newKey(nil)
	if err != nil {
		return nil, err
	}
	set := &keyset{active: kid, keys: map[string][]byte{kid: secret}}
	switch err := writeKeyringFile(path, set, true); {
	case errors.Is(err, fs.ErrExist):
		return loadKeyring(path, opts) // another process won the race
	case err != nil:
		return nil, err
	}
	return newKeyring(set, opts), nil
}

func loadKeyring(path string, opts []Option) (*Keyring, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: read keyring: %w", err)
	}
	k, err := ParseKeyring(data, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return k, nil
}

// Rotate adds a fresh random key, makes it the active one and returns its
// kid. The old keys stay in the ring, so tokens they signed keep verifying
// until they expire; remove them with Remove once no such token can be
// alive (one token TTL after the rotation).
//
// If path is not empty, Rotate first writes the new keyring there atomically
// (temporary file, fsync, rename) and leaves the keyring unchanged if that
// fails. Other processes sharing the file see the new key when they reload
// it; until then they verify but do not yet sign with it, so reload
// verifiers before signers.
func (k *Keyring) Rotate(path string) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	cur := k.set.Load()
	kid, secret, err := newKey(cur.keys)
	if err != nil {
		return "", err
	}
	next := &keyset{active: kid, keys: maps.Clone(cur.keys)}
	next.keys[kid] = secret
	if path != "" {
		if err := writeKeyringFile(path, next, false); err != nil {
			return "", err
		}
	}
	k.set.Store(next)
	return kid, nil
}

// Remove drops key kid from the ring, so tokens it signed stop verifying
// (with ErrUnknownKey). The active key cannot be removed: Rotate first.
// Remove changes only this Keyring; call Save to persist it.
func (k *Keyring) Remove(kid string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	cur := k.set.Load()
	if _, ok := cur.keys[kid]; !ok {
		return fmt.Errorf("auth: remove key %q: %w", kid, ErrUnknownKey)
	}
	if kid == cur.active {
		return fmt.Errorf("auth: remove key %q: it is the active key; rotate first", kid)
	}
	next := &keyset{active: cur.active, keys: maps.Clone(cur.keys)}
	delete(next.keys, kid)
	k.set.Store(next)
	return nil
}

// Save writes the keyring to path atomically (temporary file, fsync,
// rename) with mode 0600.
func (k *Keyring) Save(path string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return writeKeyringFile(path, k.set.Load(), false)
}

// Active returns the kid of the signing key.
func (k *Keyring) Active() string { return k.set.Load().active }

// KIDs returns the kids of all keys in the ring, sorted.
func (k *Keyring) KIDs() []string { return slices.Sorted(maps.Keys(k.set.Load().keys)) }

// MarshalJSON returns the keyring's JSON form, secrets included: treat the
// output as a secret.
func (k *Keyring) MarshalJSON() ([]byte, error) { return k.set.Load().marshal() }

// String names the keys without revealing the secrets, so a Keyring can be
// logged.
func (k *Keyring) String() string {
	return fmt.Sprintf("auth.Keyring{active: %s, kids: %v}", k.Active(), k.KIDs())
}

func (s *keyset) validate() error {
	if len(s.keys) == 0 {
		return errors.New("auth: keyring has no keys")
	}
	if s.active == "" {
		return errors.New("auth: keyring has no active key")
	}
	if _, ok := s.keys[s.active]; !ok {
		return fmt.Errorf("auth: keyring's active key %q is not among its keys", s.active)
	}
	for kid, secret := range s.keys {
		if err := checkKID(kid); err != nil {
			return err
		}
		if len(secret) < MinSecretLen {
			return fmt.Errorf("auth: keyring key %q: secret is %d bytes, want at least %d", kid, len(secret), MinSecretLen)
		}
	}
	return nil
}

func (s *keyset) marshal() ([]byte, error) {
	f := keyringFile{Active: s.active, Keys: make(map[string]string, len(s.keys))}
	for kid, secret := range s.keys {
		f.Keys[kid] = base64.StdEncoding.EncodeToString(secret)
	}
	data, err := json.MarshalIndent(f, "", "  ") // map keys come out sorted
	if err != nil {
		return nil, fmt.Errorf("auth: marshal keyring: %w", err)
	}
	return append(data, '\n'), nil
}

// checkKID keeps kids short and printable: they travel in every token header
// and show up in logs.
func checkKID(kid string) error {
	if len(kid) == 0 || len(kid) > 64 {
		return fmt.Errorf("auth: keyring kid %q: must be 1 to 64 characters", kid)
	}
	for i := 0; i < len(kid); i++ {
		c := kid[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("auth: keyring kid %q: only A-Z, a-z, 0-9, '.', '_' and '-' are allowed", kid)
		}
	}
	return nil
}

// newKey returns a fresh MinSecretLen-byte secret from crypto/rand and a kid
// not in taken: "k" + the UTC date + "-" + 8 random hex digits, such as
// k20260317-9f2c61ab, so operators can tell keys' ages apart.
func newKey(taken map[string][]byte) (string, []byte, error) {
	secret := make([]byte, MinSecretLen)
	if _, err := rand.Read(secret); err != nil {
		return "", nil, fmt.Errorf("auth: generate key: %w", err)
	}
	for {
		var suffix [4]byte
		if _, err := rand.Read(suffix[:]); err != nil {
			return "", nil, fmt.Errorf("auth: generate kid: %w", err)
		}
		kid := "k" + time.Now().UTC().Format("20060102") + "-" + hex.EncodeToString(suffix[:])
		if _, ok := taken[kid]; !ok {
			return kid, secret, nil
		}
	}
}

// writeKeyringFile writes set to path through a 0600 temporary file in the
// same directory, fsynced, then renamed over path (or, if exclusive, linked
// to path so that an existing file is never replaced: the error then
// matches fs.ErrExist). The directory is fsynced so the new name survives a
// crash.
func writeKeyringFile(path string, set *keyset, exclusive bool) error {
	data, err := set.marshal()
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*") // mode 0600
	if err != nil {
		return fmt.Errorf("auth: write keyring: %w", err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name()) // after a rename this fails harmlessly
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("auth: write keyring: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("auth: write keyring: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("auth: write keyring: %w", err)
	}
	if exclusive {
		err = os.Link(tmp.Name(), path)
		if err != nil && !errors.Is(err, fs.ErrExist) {
			// No hard links on this file system: fall back to a
			// rename, racy only against a concurrent first start.
			if _, statErr := os.Stat(path); statErr == nil {
				err = fs.ErrExist
			} else {
				err = os.Rename(tmp.Name(), path)
			}
		}
	} else {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("auth: write keyring: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // best effort: the file itself is already durable
		d.Close()
	}
	return nil
}
