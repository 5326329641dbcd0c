package edge

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/surgechat/surge/edge/internal/ws"
)

type connState uint8

const (
	stateHandshake connState = iota // waiting for the HTTP upgrade
	stateOpen                       // WebSocket open
	stateClosing                    // a close frame was queued; the socket closes after the flush
)

// conn is one client connection. Fields above the mutex belong to the
// connection's event loop; the queue below it may be appended to from any
// goroutine.
type conn struct {
	gc      gnet.Conn
	state   connState
	user    string
	session uint64
	part    int32
	opened  int64 // unix nanoseconds
	reader  ws.Reader
	bucket  tokenBucket
	topics  []string // subscribed topics

	lastRead atomic.Int64 // unix nanoseconds of the last inbound bytes
	ready    atomic.Bool  // the shard has registered the session
	pinged   atomic.Bool  // a heartbeat ping is outstanding

	mu      sync.Mutex
	out     []byte // frames queued for the next flush
	spare   []byte // the previous flush's buffer, reused
	woken   bool   // a wake-up is pending: a flush will come
	frames  int    // frames in out, for the frames-out counter
	closeAt uint16 // close code to send after the queued frames; 0 = none
	why     string // reason for closeAt
}

// enqueue appends a text frame carrying payload and wakes the loop when no
// flush is pending. It reports false when the connection is closing, or when
// the frame does not fit in limit bytes, in which case the connection is
// marked as a slow consumer.
func (c *conn) enqueue(payload []byte, limit int) bool {
	return c.enqueueFrame(ws.OpText, payload, limit, true)
}

// enqueueLocal is enqueue for the connection's own loop, which flushes at
// the end of its callback and needs no wake-up.
func (c *conn) enqueueLocal(payload []byte, limit int) bool {
	return c.enqueueFrame(ws.OpText, payload, limit, false)
}

func (c *conn) enqueueFrame(op ws.Opcode, payload []byte, limit int, wake bool) bool {
	c.mu.Lock()
	if c.closeAt != 0 {
		c.mu.Unlock()
		return false
	}
	if len(c.out)+len(payload)+10 > limit {
		c.closeAt, c.why = ws.ClosePolicyViolation, "slow consumer"
		c.out = c.out[:0]
		wake = wake && !c.woken
		c.woken = true
		c.mu.Unlock()
		if wake {
			_ = c.gc.Wake(nil)
		}
		return false
	}
	c.out = ws.AppendFrameHeader(c.out, op, len(payload))
	c.out = append(c.out, payload...)
	c.frames++
	wake = wake && !c.woken
	if wake {
		c.woken = true
	}
	c.mu.Unlock()
	if wake {
		_ = c.gc.Wake(nil)
	}
	return true
}

// closeWith queues a close frame after whatever is queued; the loop sends
// it on its next flush and then closes the socket.
func (c *conn) closeWith(code uint16, reason string) {
	c.mu.Lock()
	first := c.closeAt == 0
	if first {
		c.closeAt, c.why = code, reason
	}
	wake := first && !c.woken
	c.woken = true
	c.mu.Unlock()
	if wake {
		_ = c.gc.Wake(nil)
	}
}

// flush writes everything queued in one write. It returns how many frames
// went out and the close code sent after them, or 0.
func (c *conn) flush(limit int) (frames int, closed uint16) {
	c.mu.Lock()
	buf := c.out
	c.out, c.spare = c.spare[:0], nil
	code, why := c.closeAt, c.why
	frames = c.frames
	c.frames = 0
	c.woken = false
	if code != 0 {
		buf = ws.AppendClose(buf, code, why)
		c.state = stateClosing
	}
	c.mu.Unlock()

	if len(buf) > 0 {
		_, _ = c.gc.Write(buf) // gnet copies what the socket does not take
	}
	c.mu.Lock()
	if c.spare == nil && cap(buf) <= 64<<10 {
		c.spare = buf[:0] // keep small buffers; let a burst's big one go
	}
	c.mu.Unlock()
	if code != 0 {
		return frames, code
	}
	if c.gc.OutboundBuffered() > limit {
		c.closeWith(ws.ClosePolicyViolation, "slow consumer")
	}
	return frames, 0
}

// tokenBucket limits a connection's sends. It belongs to the loop.
type tokenBucket struct {
	tokens float64
	last   int64 // unix nanoseconds
}

func (b *tokenBucket) allow(now int64, rate float64, burst int) bool {
	if b.last == 0 {
		b.tokens, b.last = float64(burst), now
	}
	b.tokens = min(float64(burst), b.tokens+float64(now-b.last)*rate/float64(time.Second))
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func nowNanos() int64 { return time.Now().UnixNano() }
