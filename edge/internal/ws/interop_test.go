package ws

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/lxzan/gws"
)

// The interop tests drive the codec with gws, an independent implementation
// that checks what the server sends as strictly as RFC 6455 asks.

// testMaxMessage is the echo server's limit in the interop tests.
const testMaxMessage = 256 << 10

type gwsMessage struct {
	op      gws.Opcode
	payload []byte
}

// gwsHandler collects what a gws client receives.
type gwsHandler struct {
	messages chan gwsMessage
	pongs    chan string
	closed   chan error
}

func (h *gwsHandler) OnOpen(*gws.Conn) {}

func (h *gwsHandler) OnClose(_ *gws.Conn, err error) { h.closed <- err }

func (h *gwsHandler) OnPing(c *gws.Conn, payload []byte) { _ = c.WritePong(payload) }

func (h *gwsHandler) OnPong(_ *gws.Conn, payload []byte) { h.pongs <- string(payload) }

func (h *gwsHandler) OnMessage(_ *gws.Conn, m *gws.Message) {
	h.messages <- gwsMessage{op: m.Opcode, payload: bytes.Clone(m.Bytes())}
	_ = m.Close()
}

// dialGWS connects a gws client to s and runs its read loop.
func dialGWS(t *testing.T, s *echoServer, header http.Header) (*gws.Conn, *gwsHandler) {
	t.Helper()
	h := &gwsHandler{
		messages: make(chan gwsMessage, 16),
		pongs:    make(chan string, 16),
		closed:   make(chan error, 1),
	}
	c, _, err := gws.NewClient(h, &gws.ClientOption{
		Addr:             "ws://" + s.addr + "/ws",
		CheckUtf8Enabled: true,
		RequestHeader:    header,
	})
	if err != nil {
		t.Fatalf("gws dial: %v", err)
	}
	go c.ReadLoop()
	t.Cleanup(func() { _ = c.NetConn().Close() })
	return c, h
}

// utf8Text is n bytes of text mixing one- to four-byte code points.
func utf8Text(n int) string {
	s := strings.Repeat("aé€😀", n/10+1)[:n]
	for len(s) > 0 && !strings.HasSuffix(s, "a") && !strings.HasSuffix(s, "é") &&
		!strings.HasSuffix(s, "€") && !strings.HasSuffix(s, "😀") {
		s = s[:len(s)-1]
	}
	return s + strings.Repeat("x", n-len(s))
}

// wantClose waits for h's connection to close with a close frame of code.
func wantClose(t *testing.T, h *gwsHandler, code uint16) {
	t.Helper()
	err := recv(t, h.closed, "close")
	var ce *gws.CloseError
	if !errors.As(err, &ce) || ce.Code != code {
		t.Fatalf("closed with %v, want a close frame with code %d", err, code)
	}
}

func TestInteropEcho(t *testing.T) {
	s := startEchoServer(t, testMaxMessage)
	c, h := dialGWS(t, s, nil)
	f := func(op gws.Opcode, payload []byte) {
		t.Helper()
		if err := c.WriteMessage(op, payload); err != nil {
			t.Fatalf("write %d bytes: %v", len(payload), err)
		}
		got := recv(t, h.messages, "echo")
		if got.op != op || !bytes.Equal(got.payload, payload) {
			t.Fatalf("echo of %d bytes (op %d): got %d bytes (op %d)", len(payload), op, len(got.payload), got.op)
		}
	}
	for _, n := range []int{0, 1, 125, 126, 65535, 65536, testMaxMessage} {
		f(gws.OpcodeText, []byte(utf8Text(n)))
		f(gws.OpcodeBinary, bytes.Repeat([]byte{0xff, 0x00, 0x80}, n/3+1)[:n])
	}
}

// TestInteropFragmented sends messages gws splits into 128 KiB fragments;
// the text one has a code point cut by a fragment boundary.
func TestInteropFragmented(t *testing.T) {
	s := startEchoServer(t, testMaxMessage)
	c, h := dialGWS(t, s, nil)
	f := func(op gws.Opcode, payload []byte) {
		t.Helper()
		if err := c.WriteFile(op, bytes.NewReader(payload)); err != nil {
			t.Fatalf("write %d bytes: %v", len(payload), err)
		}
		got := recv(t, h.messages, "echo")
		if got.op != op || !bytes.Equal(got.payload, payload) {
			t.Fatalf("echo of %d bytes: got %d bytes (op %d)", len(payload), len(got.payload), got.op)
		}
	}
	text := utf8Text(200 << 10)
	if r := text[128<<10]; r&0xC0 != 0x80 {
		t.Fatalf("byte %#x at the fragment boundary does not continue a code point", r)
	}
	f(gws.OpcodeText, []byte(text))
	f(gws.OpcodeBinary, bytes.Repeat([]byte{7}, testMaxMessage))
}

func TestInteropTooBig(t *testing.T) {
	s := startEchoServer(t, testMaxMessage)
	f := func(write func(*gws.Conn) error) {
		t.Helper()
		c, h := dialGWS(t, s, nil)
		_ = write(c) // the server may close before gws has written it all
		wantClose(t, h, CloseMessageTooBig)
	}
	f(func(c *gws.Conn) error {
		return c.WriteMessage(gws.OpcodeBinary, make([]byte, testMaxMessage+1))
	})
	f(func(c *gws.Conn) error {
		return c.WriteFile(gws.OpcodeBinary, bytes.NewReader(make([]byte, testMaxMessage+1)))
	})
}

func TestInteropPing(t *testing.T) {
	s := startEchoServer(t, testMaxMessage)
	c, h := dialGWS(t, s, nil)
	for _, payload := range []string{"", "hello", strings.Repeat("p", 125)} {
		if err := c.WritePing([]byte(payload)); err != nil {
			t.Fatal(err)
		}
		if got := recv(t, h.pongs, "pong"); got != payload {
			t.Fatalf("pong %q, want %q", got, payload)
		}
	}
}

func TestInteropClose(t *testing.T) {
	s := startEchoServer(t, testMaxMessage)
	c, h := dialGWS(t, s, nil)
	if err := c.WriteString("before close"); err != nil {
		t.Fatal(err)
	}
	recv(t, h.messages, "echo")
	if err := c.WriteClose(4001, []byte("bye")); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, s.closes, "server close"); got != (CloseError{Code: 4001, Reason: "bye"}) {
		t.Fatalf("server got close %+v", got)
	}
	recv(t, h.closed, "client close")
}

func TestInteropSubprotocol(t *testing.T) {
	s := startEchoServer(t, testMaxMessage)
	c, _ := dialGWS(t, s, http.Header{"Sec-Websocket-Protocol": {"other, " + echoProtocol}})
	if got := c.SubProtocol(); got != echoProtocol {
		t.Fatalf("subprotocol %q, want %q", got, echoProtocol)
	}
}
