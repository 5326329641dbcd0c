package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/surgechat/surge/internal/auth"
)

func TestExitCodes(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "keys.json")
	if _, err := auth.LoadOrCreateKeyring(keys); err != nil {
		t.Fatal(err)
	}
	f := func(want int, wantErr string, args ...string) {
		t.Helper()
		var out, errb bytes.Buffer
		if got := run(args, &out, &errb); got != want || !strings.Contains(errb.String(), wantErr) {
			t.Fatalf("loadgen %q = %d, want %d; stderr:\n%s", args, got, want, errb.String())
		}
	}
	f(2, "usage: loadgen")
	f(0, "usage: loadgen", "-h")
	f(2, `unknown scenario "bogus"`, "bogus")
	f(0, "-pairs", "direct", "-h")
	f(0, "-conns", "idle", "-h")
	f(2, "flag provided but not defined", "idle", "--pairs", "3")
	f(2, "unexpected arguments", "idle", "--keys", keys, "extra")
	f(2, "keyring", "direct", "--keys", filepath.Join(t.TempDir(), "missing.json"))
	f(2, "not a loopback address", "idle", "--keys", keys, "--target", "ws://192.0.2.1:7000/ws")
	f(2, "unknown operator", "direct", "--keys", keys, "--slo", "p99(delivery)=10ms")
	f(2, "unknown metric", "direct", "--keys", keys, "--slo", "p99(nope)<10ms")
	f(2, "bad --worker-id", "idle", "--worker-id", "x")
}
