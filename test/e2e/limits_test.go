package e2e

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/surgechat/surge/client"
)

func TestSendRateLimit(t *testing.T) {
	s := startServer(t, "--send-rate", "5") // burst 10
	a, _ := s.dial("alice", 0)
	var (
		mu      sync.Mutex
		acked   int
		limited int
		wg      sync.WaitGroup
	)
	for i := 0; i < 30; i++ {
		wg.Add(1)
		err := a.SendAsync("bob", fmt.Sprintf("r%d", i), "x", func(_ string, err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			var se *client.ServerError
			switch {
			case err == nil:
				acked++
			case errors.As(err, &se) && se.Code == "rate_limited":
				limited++
			default:
				t.Errorf("send: %v", err)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if acked < 10 || acked > 12 || limited != 30-acked {
		t.Fatalf("acked %d, rate_limited %d: want the burst of 10 (plus refill) acked and the rest limited", acked, limited)
	}
	if _, err := a.Ping(ctxT(t)); err != nil {
		t.Fatalf("rate limiting closed the connection: %v", err)
	}
}

// silent is a WebSocket client that never answers pings.
type silent struct {
	gws.BuiltinEventHandler
	closed chan error
}

func (s *silent) OnPing(*gws.Conn, []byte)       {}
func (s *silent) OnClose(_ *gws.Conn, err error) { s.closed <- err }

func TestHeartbeatAndIdleTimeout(t *testing.T) {
	s := startServer(t, "--heartbeat", "1s") // idle timeout 3s
	h := http.Header{}
	h.Set("Authorization", "Bearer "+s.token("mute"))
	quiet := &silent{closed: make(chan error, 1)}
	conn, _, err := gws.NewClient(quiet, &gws.ClientOption{Addr: s.url(), RequestHeader: h})
	if err != nil {
		t.Fatal(err)
	}
	go conn.ReadLoop()
	lively, _ := s.dial("lively", 0) // answers pings automatically

	select {
	case err := <-quiet.closed:
		var ce *gws.CloseError
		if !errors.As(err, &ce) || ce.Code != 1001 {
			t.Fatalf("quiet client closed with %v, want 1001 idle timeout", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a client that never answers pings was not closed")
	}
	select {
	case <-lively.Done():
		t.Fatalf("a client answering pings was closed: %v", lively.Err())
	default:
	}
	if _, err := lively.Ping(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}
