// Package wsconn is a small RFC 6455 client for load generation: a
// hand-written upgrade over a net.Conn bound to a chosen source address,
// masked text frames out, and a read loop that answers pings and hands
// text messages to a callback with a reused buffer.
//
// It holds about 1.5 KiB of buffers per connection besides the goroutine
// that runs ReadLoop; Loop (evloop.go) instead holds many connections on
// gnet event loops with no goroutine each, for the idle scenario. Write and Close are safe to call concurrently with
// each other and with ReadLoop; ReadLoop runs on one goroutine.
package wsconn

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Opcodes used here.
const (
	opCont  = 0x0
	opText  = 0x1
	opBin   = 0x2
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xA
)

// MaxMessage is the largest message ReadLoop accepts.
const MaxMessage = 1 << 20

// WriteTimeout bounds every write.
const WriteTimeout = 5 * time.Second

// Conn is one client WebSocket.
type Conn struct {
	nc        net.Conn
	br        *bufio.Reader
	msg       []byte // reused message buffer
	wmu       sync.Mutex
	wbuf      []byte
	sentClose atomic.Bool // a close frame went out
	byUs      atomic.Bool // Close was called
}

// HandshakeError is an upgrade the server answered with another status
// than 101, such as 401 or 503.
type HandshakeError struct {
	Status int
	Reason string // first line of the body, if any
}

func (e *HandshakeError) Error() string {
	return "upgrade refused with HTTP " + strconv.Itoa(e.Status) + ": " + e.Reason
}

// DialError is a failure to open the TCP connection.
type DialError struct{ Err error }

func (e *DialError) Error() string { return "dial: " + e.Err.Error() }
func (e *DialError) Unwrap() error { return e.Err }

// CloseError is a close frame from the server.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	return "closed by server: " + strconv.Itoa(e.Code) + " " + e.Reason
}

// Reason names the class of a Dial error for reports: "http_503",
// "http_401", "dial" or "handshake".
func Reason(err error) string {
	var he *HandshakeError
	var de *DialError
	switch {
	case errors.As(err, &he):
		return "http_" + strconv.Itoa(he.Status)
	case errors.As(err, &de):
		return "dial"
	}
	return "handshake"
}

// Dial opens a WebSocket to ws://addr+path from source address local (nil:
// any), authenticating with token, and returns once the upgrade is
// accepted. ctx bounds the whole handshake.
func Dial(ctx context.Context, addr, path, token string, local net.IP) (*Conn, error) {
	d := net.Dialer{}
	if local != nil {
		d.LocalAddr = &net.TCPAddr{IP: local}
		if local.To4() != nil {
			d.Control = bindNoPort
		}
	}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, &DialError{Err: err}
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	c := &Conn{nc: nc, br: bufio.NewReaderSize(nc, 1024)}
	if err := c.handshake(addr, path, token); err != nil {
		nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return c, nil
}

// bindNoPort sets IP_BIND_ADDRESS_NO_PORT so that binding the source
// address leaves the port to connect, which picks it per destination and
// may reuse TIME_WAIT ports on loopback.
func bindNoPort(_, _ string, rc syscall.RawConn) error {
	const ipBindAddressNoPort = 24 // linux/in.h
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
	})
	if err != nil {
		return err
	}
	_ = serr // best effort: not every kernel has it
	return nil
}

const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

func (c *Conn) handshake(addr, path, token string) error {
	var raw [16]byte
	binary.LittleEndian.PutUint64(raw[:], rand.Uint64())
	binary.LittleEndian.PutUint64(raw[8:], rand.Uint64())
	key := base64.StdEncoding.EncodeToString(raw[:])
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key +
		"\r\nAuthorization: Bearer " + token + "\r\n\r\n"
	if _, err := io.WriteString(c.nc, req); err != nil {
		return fmt.Errorf("write upgrade: %w", err)
	}
	line, err := c.line()
	if err != nil {
		return fmt.Errorf("read upgrade response: %w", err)
	}
	f := strings.Fields(line)
	if len(f) < 2 || !strings.HasPrefix(f[0], "HTTP/1.") {
		return fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(f[1])
	if err != nil {
		return fmt.Errorf("bad status line %q", line)
	}
	var accept string
	clen := 0
	for {
		h, err := c.line()
		if err != nil {
			return fmt.Errorf("read upgrade headers: %w", err)
		}
		if h == "" {
			break
		}
		name, value, _ := strings.Cut(h, ":")
		value = strings.TrimSpace(value)
		switch strings.ToLower(name) {
		case "sec-websocket-accept":
			accept = value
		case "content-length":
			clen, _ = strconv.Atoi(value)
		}
	}
	if status != 101 {
		body := make([]byte, min(max(clen, 0), 512))
		n, _ := io.ReadFull(c.br, body)
		reason, _, _ := strings.Cut(strings.TrimSpace(string(body[:n])), "\n")
		return &HandshakeError{Status: status, Reason: reason}
	}
	sum := sha1.Sum([]byte(key + acceptGUID))
	if accept != base64.StdEncoding.EncodeToString(sum[:]) {
		return errors.New("bad Sec-WebSocket-Accept")
	}
	return nil
}

func (c *Conn) line() (string, error) {
	b, err := c.br.ReadSlice('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// WriteText sends p as one masked text frame.
func (c *Conn) WriteText(p []byte) error { return c.write(opText, p) }

func (c *Conn) write(op byte, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := append(c.wbuf[:0], 0x80|op)
	switch n := len(p); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xFFFF:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	mask := rand.Uint32()
	b = binary.BigEndian.AppendUint32(b, mask)
	start := len(b)
	b = append(b, p...)
	var m [4]byte
	binary.BigEndian.PutUint32(m[:], mask)
	for i := range b[start:] {
		b[start+i] ^= m[i&3]
	}
	if cap(b) <= 4096 {
		c.wbuf = b
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(WriteTimeout))
	_, err := c.nc.Write(b)
	return err
}

// ReadLoop reads until the connection ends, calling onText with each text
// message (the slice is reused after onText returns). It answers pings,
// and returns the close frame as *CloseError, or the read error. It closes
// the connection before returning.
func (c *Conn) ReadLoop(onText func([]byte)) error {
	defer c.nc.Close()
	var hdr [8]byte
	var msgOp byte
	c.msg = c.msg[:0]
	for {
		if _, err := io.ReadFull(c.br, hdr[:2]); err != nil {
			return err
		}
		fin, op := hdr[0]&0x80 != 0, hdr[0]&0x0F
		if hdr[1]&0x80 != 0 {
			return errors.New("masked frame from server")
		}
		n := uint64(hdr[1] & 0x7F)
		switch n {
		case 126:
			if _, err := io.ReadFull(c.br, hdr[:2]); err != nil {
				return err
			}
			n = uint64(binary.BigEndian.Uint16(hdr[:2]))
		case 127:
			if _, err := io.ReadFull(c.br, hdr[:8]); err != nil {
				return err
			}
			n = binary.BigEndian.Uint64(hdr[:8])
		}
		if n > MaxMessage || uint64(len(c.msg))+n > MaxMessage {
			return fmt.Errorf("message over %d bytes", MaxMessage)
		}
		if op >= opClose {
			if n > 125 {
				return errors.New("control frame over 125 bytes")
			}
			var ctl [125]byte
			if _, err := io.ReadFull(c.br, ctl[:n]); err != nil {
				return err
			}
			switch op {
			case opPing:
				_ = c.write(opPong, ctl[:n])
			case opClose:
				ce := &CloseError{Code: 1005}
				if n >= 2 {
					ce.Code, ce.Reason = int(binary.BigEndian.Uint16(ctl[:2])), string(ctl[2:n])
				}
				if !c.sentClose.Swap(true) {
					_ = c.write(opClose, ctl[:min(n, 2)])
				}
				return ce
			}
			continue
		}
		start := len(c.msg)
		switch {
		case op == opCont && msgOp == 0:
			return errors.New("continuation frame outside a message")
		case op != opCont && msgOp != 0:
			return errors.New("new message inside a fragmented one")
		case op != opCont:
			msgOp = op
		}
		c.msg = slices.Grow(c.msg, int(n))[:start+int(n)]
		if _, err := io.ReadFull(c.br, c.msg[start:]); err != nil {
			return err
		}
		if !fin {
			continue
		}
		if msgOp == opText {
			onText(c.msg)
		}
		msgOp = 0
		if cap(c.msg) > 4096 {
			c.msg = nil
		} else {
			c.msg = c.msg[:0]
		}
	}
}

// Close starts the closing handshake with code 1000; ReadLoop returns once
// the server answers or after timeout, whichever comes first.
func (c *Conn) Close(timeout time.Duration) {
	c.byUs.Store(true)
	if !c.sentClose.Swap(true) {
		_ = c.write(opClose, []byte{0x03, 0xE8})
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(timeout))
}

// Abort closes the socket at once.
func (c *Conn) Abort() { _ = c.nc.Close() }

// ClosedByUs reports whether Close was called.
func (c *Conn) ClosedByUs() bool { return c.byUs.Load() }
