package wsconn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// Loop holds upgraded connections on a few gnet event loops instead of a
// goroutine each: a held connection costs its socket, gnet's small
// per-connection state and a Handle. Callbacks run on the event loops and
// must not block. Adopt, Handle's methods and Stop are safe to call from
// any goroutine.
type Loop struct {
	cli      *gnet.Client
	onText   func(id any, b []byte)
	onClose  func(id any, err error)
	stopping atomic.Bool
}

// events is the Loop's gnet.EventHandler; its methods run on the event
// loops.
type events struct {
	gnet.BuiltinEventEngine
	*Loop
}

// Handle is one connection adopted by a Loop.
type Handle struct {
	l         *Loop
	gc        gnet.Conn
	id        any
	pending   []byte // unparsed bytes: the handshake's read-ahead, then partial frames behind it
	msg       []byte // fragments of the message in progress; event loop only
	msgOp     byte
	err       error // why the event loop closed it; event loop only
	timer     atomic.Pointer[time.Timer]
	sentClose atomic.Bool
	byUs      atomic.Bool
}

// NewLoop starts an event loop per CPU. onText gets each text message (the
// slice is valid only during the call); onClose gets each connection's end
// once: nil if Handle.Close or Stop closed it, *CloseError for a close
// frame from the server, otherwise the read or protocol error.
func NewLoop(onText func(id any, b []byte), onClose func(id any, err error)) (*Loop, error) {
	l := &Loop{onText: onText, onClose: onClose}
	cli, err := gnet.NewClient(&events{Loop: l}, gnet.WithMulticore(true), gnet.WithLogger(quietLogger{}))
	if err != nil {
		return nil, fmt.Errorf("gnet client: %w", err)
	}
	if err := cli.Start(); err != nil {
		return nil, fmt.Errorf("start gnet client: %w", err)
	}
	l.cli = cli
	return l, nil
}

// Adopt moves c onto the loop under id and returns its Handle; c must not
// be used afterwards. Bytes the handshake read ahead are parsed first. On
// error c is closed and onClose is not called.
func (l *Loop) Adopt(c *Conn, id any) (*Handle, error) {
	h := &Handle{l: l, id: id}
	if n := c.br.Buffered(); n > 0 {
		b, _ := c.br.Peek(n)
		h.pending = append([]byte(nil), b...)
	}
	c.br = nil
	gc, err := l.cli.EnrollContext(c.nc, h) // closes c.nc, keeping a duplicate
	if err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	h.gc = gc
	return h, nil
}

// Stop closes every connection (onClose gets nil) and the event loops.
func (l *Loop) Stop() {
	l.stopping.Store(true)
	_ = l.cli.Stop()
}

// WriteText queues p as one masked text frame.
func (h *Handle) WriteText(p []byte) error { return h.gc.AsyncWrite(frame(opText, p), nil) }

// Close starts the closing handshake with code 1000 and drops the socket
// if the server has not finished it within timeout.
func (h *Handle) Close(timeout time.Duration) {
	h.byUs.Store(true)
	if !h.sentClose.Swap(true) {
		_ = h.gc.AsyncWrite(frame(opClose, []byte{0x03, 0xE8}), nil)
	}
	if h.timer.Load() == nil {
		h.timer.Store(time.AfterFunc(timeout, func() { _ = h.gc.Close() }))
	}
}

// Abort closes the socket at once.
func (h *Handle) Abort() {
	h.byUs.Store(true)
	_ = h.gc.Close()
}

// frame builds a masked client frame.
func frame(op byte, p []byte) []byte {
	b := make([]byte, 0, len(p)+14)
	b = append(b, 0x80|op)
	switch n := len(p); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xFFFF:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	var m [4]byte
	binary.BigEndian.PutUint32(m[:], rand.Uint32())
	b = append(b, m[:]...)
	start := len(b)
	b = append(b, p...)
	for i := range b[start:] {
		b[start+i] ^= m[i&3]
	}
	return b
}

// OnOpen parses what the handshake read ahead.
func (l *events) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	h := c.Context().(*Handle)
	if len(h.pending) == 0 {
		return nil, gnet.None
	}
	n, ok := l.parse(c, h, h.pending)
	if !ok {
		return nil, gnet.Close
	}
	h.pending = h.pending[n:]
	if len(h.pending) == 0 {
		h.pending = nil
	}
	return nil, gnet.None
}

// OnTraffic parses every complete frame and leaves a partial one buffered.
func (l *events) OnTraffic(c gnet.Conn) gnet.Action {
	h := c.Context().(*Handle)
	in, _ := c.Peek(-1)
	if len(h.pending) > 0 { // rare: a partial frame in the handshake's read-ahead
		h.pending = append(h.pending, in...)
		if len(in) > 0 {
			_, _ = c.Discard(len(in))
		}
		n, ok := l.parse(c, h, h.pending)
		if !ok {
			return gnet.Close
		}
		h.pending = h.pending[n:]
		if len(h.pending) == 0 {
			h.pending = nil
		}
		return gnet.None
	}
	n, ok := l.parse(c, h, in)
	if n > 0 { // Discard(0) would drop the whole buffer
		_, _ = c.Discard(n)
	}
	if !ok {
		return gnet.Close
	}
	return gnet.None
}

// OnClose reports the end of a connection.
func (l *events) OnClose(c gnet.Conn, err error) gnet.Action {
	h, _ := c.Context().(*Handle)
	if h == nil {
		return gnet.None
	}
	if t := h.timer.Load(); t != nil {
		t.Stop()
	}
	switch {
	case h.byUs.Load() || l.stopping.Load():
		err = nil
	case h.err != nil:
		err = h.err
	case err == nil:
		err = io.EOF
	}
	h.msg, h.pending = nil, nil
	l.onClose(h.id, err)
	return gnet.None
}

// parse consumes the complete frames at the front of b and returns how
// many bytes they took; ok is false once the connection must close, with
// the reason in h.err.
func (l *events) parse(c gnet.Conn, h *Handle, b []byte) (used int, ok bool) {
	for {
		d := b[used:]
		if len(d) < 2 {
			return used, true
		}
		fin, op := d[0]&0x80 != 0, d[0]&0x0F
		if d[1]&0x80 != 0 {
			h.err = errors.New("masked frame from server")
			return used, false
		}
		hl, n := 2, uint64(d[1]&0x7F)
		switch n {
		case 126:
			hl = 4
		case 127:
			hl = 10
		}
		if len(d) < hl {
			return used, true
		}
		switch n {
		case 126:
			n = uint64(binary.BigEndian.Uint16(d[2:4]))
		case 127:
			n = binary.BigEndian.Uint64(d[2:10])
		}
		if n > MaxMessage || uint64(len(h.msg))+n > MaxMessage {
			h.err = fmt.Errorf("message over %d bytes", MaxMessage)
			return used, false
		}
		if op >= opClose && (n > 125 || !fin) {
			h.err = errors.New("bad control frame")
			return used, false
		}
		if uint64(len(d)-hl) < n {
			return used, true
		}
		p := d[hl : hl+int(n)]
		used += hl + int(n)
		switch op {
		case opPing:
			_, _ = c.Write(frame(opPong, p))
			continue
		case opPong:
			continue
		case opClose:
			ce := &CloseError{Code: 1005}
			if n >= 2 {
				ce.Code, ce.Reason = int(binary.BigEndian.Uint16(p[:2])), string(p[2:])
			}
			if !h.sentClose.Swap(true) {
				_, _ = c.Write(frame(opClose, p[:min(n, 2)]))
			}
			h.err = ce
			return used, false
		case opText, opBin, opCont:
		default:
			h.err = fmt.Errorf("unknown opcode %d", op)
			return used, false
		}
		switch {
		case op == opCont && h.msgOp == 0:
			h.err = errors.New("continuation frame outside a message")
			return used, false
		case op != opCont && h.msgOp != 0:
			h.err = errors.New("new message inside a fragmented one")
			return used, false
		case fin && op == opText:
			l.onText(h.id, p) // whole message in one frame: no copy
			continue
		case fin && op == opBin:
			continue
		case op != opCont:
			h.msgOp = op
		}
		h.msg = append(h.msg, p...)
		if !fin {
			continue
		}
		if h.msgOp == opText {
			l.onText(h.id, h.msg)
		}
		h.msgOp, h.msg = 0, nil
	}
}

// quietLogger drops gnet's debug and info lines and passes the rest to
// slog.
type quietLogger struct{}

func (quietLogger) Debugf(string, ...any) {}
func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Warnf(f string, a ...any) {
	slog.Warn("gnet: " + fmt.Sprintf(f, a...))
}
func (quietLogger) Errorf(f string, a ...any) {
	slog.Error("gnet: " + fmt.Sprintf(f, a...))
}
func (quietLogger) Fatalf(f string, a ...any) {
	slog.Error("gnet: " + fmt.Sprintf(f, a...))
}
