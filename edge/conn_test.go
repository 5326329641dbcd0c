package edge

import (
	"bytes"
	"testing"

	"github.com/panjf2000/gnet/v2"

	"github.com/surgechat/surge/edge/internal/ws"
)

// recordingConn stands in for gnet's connection: it records writes and
// wake-ups. Methods it does not override panic, so the test notices any
// other use.
type recordingConn struct {
	gnet.Conn
	writes [][]byte
	wakes  int
	outbuf int
}

func (r *recordingConn) Write(b []byte) (int, error) {
	r.writes = append(r.writes, append([]byte(nil), b...))
	return len(b), nil
}

func (r *recordingConn) Wake(gnet.AsyncCallback) error { r.wakes++; return nil }
func (r *recordingConn) OutboundBuffered() int         { return r.outbuf }

func TestQueuedFramesLeaveInOneWrite(t *testing.T) {
	rc := &recordingConn{}
	c := &conn{gc: rc}
	payloads := [][]byte{[]byte(`{"a":1}`), []byte(`{"b":2}`), bytes.Repeat([]byte("x"), 300)}
	for _, p := range payloads {
		if !c.enqueue(p, 1<<20) {
			t.Fatal("enqueue refused")
		}
	}
	if rc.wakes != 1 {
		t.Fatalf("%d wake-ups for 3 frames queued before a flush, want 1", rc.wakes)
	}
	frames, closed := c.flush(1 << 20)
	if frames != 3 || closed != 0 || len(rc.writes) != 1 {
		t.Fatalf("flush: %d frames, close %d, %d writes; want 3 frames in 1 write", frames, closed, len(rc.writes))
	}
	var want []byte
	for _, p := range payloads {
		want = ws.AppendFrame(want, ws.OpText, p)
	}
	if !bytes.Equal(rc.writes[0], want) {
		t.Fatalf("write = %q, want %q", rc.writes[0], want)
	}
	// After a flush the next frame wakes the loop again.
	c.enqueue([]byte(`{}`), 1<<20)
	if rc.wakes != 2 {
		t.Fatalf("wakes = %d after a new frame, want 2", rc.wakes)
	}
}

func TestSlowConsumerIsClosedWith1008(t *testing.T) {
	f := func(name string, fill func(c *conn, rc *recordingConn)) {
		t.Run(name, func(t *testing.T) {
			rc := &recordingConn{}
			c := &conn{gc: rc}
			fill(c, rc)
			_, closed := c.flush(1024)
			if closed == 0 {
				// The socket's own backlog is found at flush; the close
				// goes out on the next one.
				_, closed = c.flush(1024)
			}
			if closed != ws.ClosePolicyViolation {
				t.Fatalf("close code %d, want 1008", closed)
			}
			last := rc.writes[len(rc.writes)-1]
			if want := ws.AppendClose(nil, ws.ClosePolicyViolation, "slow consumer"); !bytes.HasSuffix(last, want) {
				t.Fatalf("last write %q does not end with the close frame", last)
			}
			if c.enqueue([]byte("late"), 1024) {
				t.Fatal("a closing connection accepted a frame")
			}
		})
	}
	f("queue over its bound", func(c *conn, _ *recordingConn) {
		for c.enqueue(bytes.Repeat([]byte("y"), 100), 1024) {
		}
	})
	f("socket backlog over the bound", func(c *conn, rc *recordingConn) {
		c.enqueue([]byte("z"), 1024)
		rc.outbuf = 4096
	})
}

func TestTokenBucket(t *testing.T) {
	var b tokenBucket
	const sec = int64(1e9)
	now := int64(1000) * sec
	allowed := 0
	for i := 0; i < 50; i++ {
		if b.allow(now, 10, 20) {
			allowed++
		}
	}
	if allowed != 20 {
		t.Fatalf("burst allowed %d, want 20", allowed)
	}
	if b.allow(now+sec/20, 10, 20) {
		t.Fatal("allowed a send before a token refilled")
	}
	if !b.allow(now+sec/10, 10, 20) {
		t.Fatal("refused a send after a token refilled")
	}
}
