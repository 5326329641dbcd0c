package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	for _, sc := range []string{"group", "topic", "reconnect", "api", "baseline"} {
		f(0, "-duration", sc, "-h")
	}
	f(0, "-group-size", "group", "-h")
	f(0, "-operator-user", "topic", "-h")
	f(0, "-storm-at", "reconnect", "-h")
	f(0, "-mix", "api", "-h")
	f(2, "flag provided but not defined", "baseline", "--rate", "5")
	f(2, "--ramp", "direct", "--keys", keys, "--ramp", "5s:100/s")
	f(2, "not both", "direct", "--keys", keys, "--ramp", "0:100/s", "--rate-end", "200")
	f(2, "flag provided but not defined", "idle", "--closed-loop")
	f(2, "flag provided but not defined", "reconnect", "--closed-loop")
	f(2, "--mix", "api", "--mix", "fly=1")
	f(2, "at least 2", "group", "--group-size", "1")
	f(2, "slos.txt:2:", "baseline", "--slo-file", writeFile(t, "slos.txt", "rate>0\nlost=0\n"))
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestAbortOnBreachExitCode runs the baseline scenario (no server
// needed) for a minute with an objective on a count that only grows:
// the first live check breaks it, the run stops at once and exits 1.
func TestAbortOnBreachExitCode(t *testing.T) {
	slos := writeFile(t, "slos.txt", "# judged live: a count over its bound stays over\nwrites_window<1\nrate>0/s # judged at the end\n")
	var out, errb bytes.Buffer
	start := time.Now()
	code := run([]string{"baseline", "--conns", "4", "--duration", "1m", "--slo-file", slos, "--abort-on-breach",
		"--html", filepath.Join(t.TempDir(), "r.html")}, &out, &errb)
	if code != 1 || !strings.Contains(out.String(), "ABORTED: SLO writes_window<1 breached") || !strings.Contains(out.String(), "SLO PASS rate>0/s") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("aborted run took %v", d)
	}
}
