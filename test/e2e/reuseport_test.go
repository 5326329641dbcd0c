package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/surgechat/surge/client"
)

// TestEdgesShareAPort runs a second edge process on the same WebSocket
// port (SO_REUSEPORT) as surge up, attached to its broker, store and
// delivery plane. The kernel spreads clients over both processes, and a
// message pushes across them.
func TestEdgesShareAPort(t *testing.T) {
	kafkaAddr := freePort(t)
	kafkaPort := kafkaAddr[strings.LastIndex(kafkaAddr, ":")+1:]
	up := startServer(t, "--reuse-port", "--kafka-port", kafkaPort)
	edge := &server{t: t, dataDir: t.TempDir(), ws: up.ws, http: freePort(t), edgeOnly: true, args: []string{
		"--reuse-port", "--kafka", kafkaAddr, "--shards", up.plane,
		"--store-dsn", filepath.Join(up.dataDir, "inbox.db"), "--keys", filepath.Join(up.dataDir, "keys.json"),
	}}
	edge.start()
	t.Cleanup(edge.stop)

	const n = 40
	clients := make([]*client.Client, n)
	inboxes := make([]*inbox, n)
	for i := range clients {
		clients[i], inboxes[i] = up.dial(fmt.Sprintf("u%d", i), 0)
	}
	a, b := up.metric("surge_edge_connections"), edge.metric("surge_edge_connections")
	if a+b != n || a == 0 || b == 0 {
		t.Fatalf("connections: %v on surge up, %v on surge edge; want %d spread over both", a, b, n)
	}
	// Wait until each edge's sessions are registered with the shard, so
	// that the messages below are pushed, not synced.
	waitFor(t, 10*time.Second, "sessions registered", func() bool { return up.metric("surge_online_sessions") == n })

	for i, c := range clients {
		if _, err := c.Send(ctxT(t), fmt.Sprintf("u%d", (i+1)%n), "x", fmt.Sprintf("from u%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i, in := range inboxes {
		waitFor(t, 10*time.Second, fmt.Sprintf("u%d's message and own copy", i), func() bool { return in.len() == 2 })
	}
	if got := edge.metric("surge_plane_received_deliveries_total"); got == 0 {
		t.Fatal("no delivery crossed the plane to the second edge process")
	}
}
