package ws

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The raw tests speak to the echo server over plain TCP with hand-made
// frames, to check the exact bytes the server answers with.

// rawConn is a client connection that sends raw bytes and parses the
// server's frames itself.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, s *echoServer) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

// upgrade sends a valid upgrade request and checks the 101 response.
func (rc *rawConn) upgrade() {
	rc.t.Helper()
	rc.send([]byte(upgrade("GET /ws HTTP/1.1", goodHeaders...)))
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		rc.t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		rc.t.Fatalf("upgrade response %d %v", resp.StatusCode, resp.Header)
	}
}

// send writes b in pieces of a few bytes, so the server sees frames cut
// at odd places.
func (rc *rawConn) send(b []byte) {
	rc.t.Helper()
	for len(b) > 0 {
		k := min(len(b), 3)
		if _, err := rc.c.Write(b[:k]); err != nil {
			rc.t.Fatal(err)
		}
		b = b[k:]
	}
}

// readFrame reads one server frame and returns it whole, checking that it
// is final and unmasked.
func (rc *rawConn) readFrame() []byte {
	rc.t.Helper()
	head := make([]byte, 2, 10)
	if _, err := io.ReadFull(rc.br, head); err != nil {
		rc.t.Fatalf("read frame: %v", err)
	}
	if head[0]&0xF0 != 0x80 || head[1]&0x80 != 0 {
		rc.t.Fatalf("frame header % x: want FIN only and no mask", head)
	}
	length := uint64(head[1] & 0x7F)
	switch length {
	case 126:
		head = head[:4]
		if _, err := io.ReadFull(rc.br, head[2:]); err != nil {
			rc.t.Fatal(err)
		}
		length = uint64(binary.BigEndian.Uint16(head[2:]))
	case 127:
		head = head[:10]
		if _, err := io.ReadFull(rc.br, head[2:]); err != nil {
			rc.t.Fatal(err)
		}
		length = binary.BigEndian.Uint64(head[2:])
	}
	payload := make([]byte, length)
	if _, err := io.ReadFull(rc.br, payload); err != nil {
		rc.t.Fatal(err)
	}
	return append(head, payload...)
}

// expect reads frames and compares them with want, byte for byte.
func (rc *rawConn) expect(want ...[]byte) {
	rc.t.Helper()
	for i, w := range want {
		if got := rc.readFrame(); !bytes.Equal(got, w) {
			rc.t.Fatalf("frame %d: got % x, want % x", i, got, w)
		}
	}
}

// expectEOF checks that the server closed the connection.
func (rc *rawConn) expectEOF() {
	rc.t.Helper()
	if b, err := rc.br.ReadByte(); !errors.Is(err, io.EOF) {
		rc.t.Fatalf("after close: read %#x, %v; want EOF", b, err)
	}
}

func TestRawFragmentedWithPings(t *testing.T) {
	s := startEchoServer(t, testMaxMessage)
	rc := dialRaw(t, s)
	rc.upgrade()
	rc.send(cat(
		fragment(OpText, "frag"),
		frame(OpPing, "p1"),
		fragment(OpContinuation, "men\xe2\x82"), // "€" cut in two
		frame(OpPing, "p2"),
		frame(OpContinuation, "\xacted"),
		frame(OpBinary, "after"),
	))
	rc.expect(
		AppendFrame(nil, OpPong, []byte("p1")),
		AppendFrame(nil, OpPong, []byte("p2")),
		AppendFrame(nil, OpText, []byte("fragmen€ted")),
		AppendFrame(nil, OpBinary, []byte("after")),
	)
	rc.send(closeFrame(CloseNormal, "done"))
	rc.expect(AppendClose(nil, CloseNormal, ""))
	rc.expectEOF()
	if got := recv(t, s.closes, "server close"); got.Code != CloseNormal || got.Reason != "done" {
		t.Fatalf("server got close %+v", got)
	}
}

func TestRawFailures(t *testing.T) {
	s := startEchoServer(t, 1000)
	// f sends stream and expects the frames before, then a close for want.
	f := func(stream []byte, want *CloseError, before ...[]byte) {
		t.Helper()
		rc := dialRaw(t, s)
		rc.upgrade()
		rc.send(stream)
		rc.expect(append(before, AppendClose(nil, want.Code, want.Reason))...)
		rc.expectEOF()
	}
	f([]byte{0x81, 0x05, 'h', 'e', 'l', 'l', 'o'}, errUnmasked)
	f(frame(OpText, "bad \xff text"), ErrInvalidUTF8)
	f(cat(fragment(OpText, "ok so far"), frame(OpPing, ""), fragment(OpContinuation, "\xed\xa0")), ErrInvalidUTF8,
		AppendFrame(nil, OpPong, nil))
	f(appendClientFrame(nil, finBit|rsv1Bit|byte(OpText), []byte("deflated?")), errReservedBits)
	f(frame(OpContinuation, "stray"), errStrayContinue)
	f(cat(fragment(OpText, "a"), frame(OpText, "b")), errUnfinished)
	f(fragment(OpPing, ""), errControlFragment)
	f(closeFrame(1005, ""), errCloseCode)
	f(closeFrame(1000, "\xc0"), errCloseReasonUTF8)
	// Only the header of an oversized frame is sent: the server answers
	// without waiting for the payload.
	f([]byte{0x82, 0x80 | 126, 0x03, 0xe9}, ErrTooBig)
}

func TestRawEmptyClose(t *testing.T) {
	s := startEchoServer(t, testMaxMessage)
	rc := dialRaw(t, s)
	rc.upgrade()
	rc.send(frame(OpClose, ""))
	rc.expect([]byte{0x88, 0x00})
	rc.expectEOF()
}

func TestRawUpgradeRejected(t *testing.T) {
	s := startEchoServer(t, testMaxMessage)
	f := func(request string, wantStatus int, wantHeader string) {
		t.Helper()
		rc := dialRaw(t, s)
		rc.send([]byte(request))
		resp, err := http.ReadResponse(rc.br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != wantStatus || !resp.Close || len(body) == 0 {
			t.Fatalf("got %d close=%v body %q, want %d", resp.StatusCode, resp.Close, body, wantStatus)
		}
		if wantHeader != "" {
			name, value, _ := strings.Cut(wantHeader, ": ")
			if got := resp.Header.Get(name); got != value {
				t.Fatalf("%s: %q, want %q", name, got, value)
			}
		}
		rc.expectEOF()
	}
	f(upgrade("GET / HTTP/1.1", "Host: h", "Upgrade: websocket", "Connection: Upgrade",
		"Sec-WebSocket-Version: 8", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="),
		426, "Sec-WebSocket-Version: 13")
	f(upgrade("POST / HTTP/1.1", goodHeaders...), 405, "Allow: GET")
	f(upgrade("GET / HTTP/1.1", "Host: h"), 400, "")
	f("GET /"+strings.Repeat("a", MaxHandshakeBytes), 431, "")
}
