package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLoadOrCreateKeyring(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "surge", "secrets")
	path := filepath.Join(dir, "keyring.json")
	k, err := LoadOrCreateKeyring(path)
	if err != nil {
		t.Fatalf("LoadOrCreateKeyring (create): %v", err)
	}
	f := func(p string, want fs.FileMode) {
		t.Helper()
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != want {
			t.Fatalf("%s: mode %v, want %v", p, got, want)
		}
	}
	f(path, 0o600)
	f(dir, 0o700)

	if ok, _ := regexp.MatchString(`^k\d{8}-[0-9a-f]{8}$`, k.Active()); !ok {
		t.Fatalf("generated kid %q, want k<yyyymmdd>-<8 hex>", k.Active())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Active string            `json:"active"`
		Keys   map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatalf("keyring file is not the documented JSON: %v\n%s", err, data)
	}
	secret, err := base64.StdEncoding.DecodeString(file.Keys[file.Active])
	if file.Active != k.Active() || len(file.Keys) != 1 || err != nil || len(secret) != MinSecretLen {
		t.Fatalf("keyring file: active %q (keyring %q), %d keys, secret %d bytes (err %v)",
			file.Active, k.Active(), len(file.Keys), len(secret), err)
	}
	if bytes.Equal(secret, make([]byte, MinSecretLen)) {
		t.Fatalf("generated secret is all zeros")
	}

	again, err := LoadOrCreateKeyring(path)
	if err != nil {
		t.Fatalf("LoadOrCreateKeyring (load): %v", err)
	}
	if again.Active() != k.Active() || !bytes.Equal(again.set.Load().keys[k.Active()], k.set.Load().keys[k.Active()]) {
		t.Fatalf("reloaded keyring differs: %v vs %v", again, k)
	}
	tok, err := k.Issue("u1", nil, time.Hour, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := again.Verify(tok, testNow); err != nil {
		t.Fatalf("reloaded keyring rejects a token of the original: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("%s holds %d entries, want only the keyring (temporary files left?)", dir, len(entries))
	}

	other, err := LoadOrCreateKeyring(filepath.Join(dir, "other.json"))
	if err != nil || other.Active() == k.Active() && bytes.Equal(other.set.Load().keys[other.Active()], secret) {
		t.Fatalf("second keyring: %v, err %v: want fresh keys", other, err)
	}
}

// TestLoadOrCreateKeyringRace starts several creators at once: they must all
// end up with the same key, or tokens from one would not verify in another.
func TestLoadOrCreateKeyringRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyring.json")
	const n = 8
	rings := make([]*Keyring, n)
	var wg sync.WaitGroup
	for i := range rings {
		wg.Go(func() {
			k, err := LoadOrCreateKeyring(path)
			if err != nil {
				t.Errorf("LoadOrCreateKeyring: %v", err)
			}
			rings[i] = k
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, k := range rings[1:] {
		if k.Active() != rings[0].Active() {
			t.Fatalf("racing creators disagree: %v vs %v", k, rings[0])
		}
	}
}

func TestLoadKeyringErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"active":"k1"`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKeyring(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("malformed file: %v, want an error naming %s", err, bad)
	}
	if data, _ := os.ReadFile(bad); string(data) != `{"active":"k1"` {
		t.Fatalf("LoadOrCreateKeyring overwrote a malformed file: %q", data)
	}
	if _, err := LoadOrCreateKeyring(filepath.Join(dir, "bad.json", "x.json")); err == nil {
		t.Fatalf("path under a regular file: no error")
	}
}

func TestParseKeyring(t *testing.T) {
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, n)) }
	ok := func(data string, active string, kids int) {
		t.Helper()
		k, err := ParseKeyring([]byte(data))
		if err != nil {
			t.Fatalf("ParseKeyring(%s): %v", data, err)
		}
		if k.Active() != active || len(k.KIDs()) != kids {
			t.Fatalf("ParseKeyring(%s) = %v, want active %q, %d keys", data, k, active, kids)
		}
	}
	ok(`{"active":"k1","keys":{"k1":"`+b64(32)+`"}}`, "k1", 1)
	ok(`{"active":"k2","keys":{"k1":"`+b64(32)+`","k2":"`+b64(64)+`"}}`, "k2", 2)
	ok(`{"active":"K_2026.03-a","keys":{"K_2026.03-a":"`+b64(32)+`"}}`, "K_2026.03-a", 1)

	f := func(data, want string) {
		t.Helper()
		_, err := ParseKeyring([]byte(data))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("ParseKeyring(%s): error %v, want one containing %q", data, err, want)
		}
	}
	f(``, "parse keyring: EOF")
	f(`{"active":"k1",`, "parse keyring")
	f(`[]`, "parse keyring: json: cannot unmarshal array")
	f(`{"active":"k1","keys":{"k1":"`+b64(32)+`"},"extra":1}`, `unknown field "extra"`)
	f(`{"active":"k1","keys":{"k1":"`+b64(32)+`"}} {}`, "trailing data")
	f(`{"active":"k1","keys":{}}`, "no keys")
	f(`{"active":"","keys":{"k1":"`+b64(32)+`"}}`, "no active key")
	f(`{"active":"k2","keys":{"k1":"`+b64(32)+`"}}`, `active key "k2" is not among its keys`)
	f(`{"active":"k1","keys":{"k1":"not base64!"}}`, `key "k1": secret is not standard base64`)
	f(`{"active":"k1","keys":{"k1":"`+b64(31)+`"}}`, `key "k1": secret is 31 bytes, want at least 32`)
	f(`{"active":"k1","keys":{"k1":""}}`, `secret is 0 bytes, want at least 32`)
	f(`{"active":"k 1","keys":{"k 1":"`+b64(32)+`"}}`, `kid "k 1": only A-Z`)
	f(`{"active":"`+strings.Repeat("k", 65)+`","keys":{"`+strings.Repeat("k", 65)+`":"`+b64(32)+`"}}`, "1 to 64 characters")
}

func TestNewKeyring(t *testing.T) {
	secret := bytes.Repeat([]byte{9}, 32)
	k, err := NewKeyring("a", map[string][]byte{"a": secret, "b": bytes.Repeat([]byte{8}, 40)})
	if err != nil {
		t.Fatalf("NewKeyring: %v", err)
	}
	secret[0] = 0 // the keyring holds a copy
	if got := k.set.Load().keys["a"][0]; got != 9 {
		t.Fatalf("NewKeyring kept the caller's slice")
	}
	if s := k.String(); s != "auth.Keyring{active: a, kids: [a b]}" || strings.Contains(s, "CQkJ") {
		t.Fatalf("String() = %q", s)
	}

	f := func(active string, keys map[string][]byte, want string) {
		t.Helper()
		_, err := NewKeyring(active, keys)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("NewKeyring(%q, %d keys): error %v, want one containing %q", active, len(keys), err, want)
		}
	}
	f("a", nil, "no keys")
	f("a", map[string][]byte{"a": make([]byte, 16)}, "secret is 16 bytes, want at least 32")
	f("b", map[string][]byte{"a": make([]byte, 32)}, `active key "b" is not among its keys`)
	f("a/b", map[string][]byte{"a/b": make([]byte, 32)}, `kid "a/b"`)
}

func TestMarshalRoundTrip(t *testing.T) {
	k, err := NewKeyring("k2", map[string][]byte{"k1": bytes.Repeat([]byte{1}, 32), "k2": bytes.Repeat([]byte{2}, 48)})
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(k)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	back, err := ParseKeyring(data)
	if err != nil {
		t.Fatalf("ParseKeyring(Marshal(k)): %v\n%s", err, data)
	}
	for _, kid := range k.KIDs() {
		if !bytes.Equal(back.set.Load().keys[kid], k.set.Load().keys[kid]) {
			t.Fatalf("key %q changed in a round trip", kid)
		}
	}
	if back.Active() != "k2" {
		t.Fatalf("active %q after a round trip", back.Active())
	}
}
