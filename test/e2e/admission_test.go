package e2e

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/surgechat/surge/client"
)

// fill dials clients until the server refuses one, and returns them.
func fill(t *testing.T, s *server, max int) []*client.Client {
	t.Helper()
	tok := s.token("filler")
	var conns []*client.Client
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for i := 0; i < max; i++ {
		c, err := client.Dial(ctxT(t), s.url(), tok, client.Options{NoSync: true})
		if err != nil {
			var de *client.DialError
			if !errors.As(err, &de) || de.Status != 503 {
				t.Fatalf("connection %d: %v, want success or HTTP 503", i, err)
			}
			return conns
		}
		conns = append(conns, c)
	}
	t.Fatalf("no refusal after %d connections", max)
	return nil
}

func checkAlive(t *testing.T, conns []*client.Client) {
	t.Helper()
	for i, c := range conns {
		if _, err := c.Ping(ctxT(t)); err != nil {
			t.Fatalf("connection %d lost: %v", i, err)
		}
	}
}

func TestAdmissionCapRefusesPolitely(t *testing.T) {
	s := startServer(t, "--max-conns", "40")
	conns := fill(t, s, 100)
	if len(conns) != 40 {
		t.Fatalf("admitted %d connections, want the cap of 40", len(conns))
	}
	// Hammer the full edge: every extra attempt is refused, nothing drops.
	for i := 0; i < 50; i++ {
		if _, err := client.Dial(ctxT(t), s.url(), s.token("extra"), client.Options{}); err == nil {
			t.Fatal("admitted a connection over the cap")
		}
	}
	checkAlive(t, conns)
	// A freed slot is usable again.
	conns[0].Close()
	waitFor(t, 5e9, "a slot to free up", func() bool {
		c, err := client.Dial(ctxT(t), s.url(), s.token("again"), client.Options{NoSync: true})
		if err != nil {
			return false
		}
		conns[0] = c
		return true
	})
	checkAlive(t, conns)
}

// TestAdmissionDerivedFromFileLimit runs the server under a lowered
// RLIMIT_NOFILE with no cap given: the edge must stop below the limit on
// its own, so that accept never fails with EMFILE (which makes gnet drop
// every connection), and the connections it holds must survive.
func TestAdmissionDerivedFromFileLimit(t *testing.T) {
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Skip("prlimit not installed")
	}
	const limit = 600
	s := &server{t: t, dataDir: t.TempDir(), ws: freePort(t), http: freePort(t), plane: freePort(t),
		gateway: freePort(t), grpc: [3]string{freePort(t), freePort(t), freePort(t)}}
	s.wrap = []string{"prlimit", fmt.Sprintf("--nofile=%d:%d", limit, limit), "--"}
	s.start()
	t.Cleanup(s.stop)

	conns := fill(t, s, limit+100)
	want := limit - limit/4 // edge.fileReserve for small limits
	if len(conns) != want {
		t.Fatalf("admitted %d connections under a file limit of %d, want %d", len(conns), limit, want)
	}
	for i := 0; i < 100; i++ {
		if _, err := client.Dial(ctxT(t), s.url(), s.token("extra"), client.Options{}); err == nil {
			t.Fatal("admitted a connection over the derived cap")
		}
	}
	checkAlive(t, conns)
	if strings.Contains(s.log.String(), "too many open files") {
		t.Fatalf("server hit EMFILE:\n%s", s.log.String())
	}
}
