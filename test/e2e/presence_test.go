package e2e

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// metric reads one sample from the server's /metrics.
func (s *server) metric(name string) float64 {
	s.t.Helper()
	resp, err := http.Get("http://" + s.http + "/metrics")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, name+" ") {
			v, err := strconv.ParseFloat(strings.TrimSpace(line[len(name):]), 64)
			if err != nil {
				s.t.Fatalf("%s: %v", line, err)
			}
			return v
		}
	}
	s.t.Fatalf("metric %s not exposed", name)
	return 0
}

// TestPresenceThroughThePartition checks that connects and disconnects
// reach the shard that owns each user, which then counts who is online.
func TestPresenceThroughThePartition(t *testing.T) {
	s := startServer(t)
	wait := func(users, sessions float64) {
		t.Helper()
		waitFor(t, 5*time.Second, "presence counts", func() bool {
			return s.metric("surge_online_users") == users && s.metric("surge_online_sessions") == sessions
		})
	}
	a, _ := s.dial("alice", 0)
	b1, _ := s.dial("bob", 0)
	b2, _ := s.dial("bob", 0) // a second device
	wait(2, 3)
	b1.Close()
	wait(2, 2)
	b2.Close()
	wait(1, 1)
	a.Close()
	wait(0, 0)
}

// TestBothDevicesReceive checks that a user's every session gets a push.
func TestBothDevicesReceive(t *testing.T) {
	s := startServer(t)
	a, _ := s.dial("alice", 0)
	_, in1 := s.dial("bob", 0)
	_, in2 := s.dial("bob", 0)
	if _, err := a.Send(ctxT(t), "bob", "d1", "to both"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "both devices", func() bool { return in1.len() == 1 && in2.len() == 1 })
}
