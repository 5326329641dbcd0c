package wsconn

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lxzan/gws"
)

// peer is a strict gws server: it echoes text, pings on "ping-me", closes
// with 1001 on "bye", and reports pongs.
type peer struct {
	gws.BuiltinEventHandler
	pongs chan string
}

func (p *peer) OnPong(_ *gws.Conn, b []byte) { p.pongs <- string(b) }

func (p *peer) OnMessage(c *gws.Conn, m *gws.Message) {
	defer m.Close()
	switch s := m.Data.String(); s {
	case "ping-me":
		_ = c.WritePing([]byte("p1"))
	case "bye":
		_ = c.WriteClose(1001, []byte("going away"))
	default:
		_ = c.WriteMessage(gws.OpcodeText, m.Bytes())
	}
}

func startPeer(t *testing.T) (*peer, string) {
	t.Helper()
	p := &peer{pongs: make(chan string, 4)}
	up := gws.NewUpgrader(p, &gws.ServerOption{CheckUtf8Enabled: true})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("Authorization") {
		case "Bearer good":
		case "Bearer full":
			http.Error(w, "edge at connection capacity", http.StatusServiceUnavailable)
			return
		default:
			http.Error(w, "invalid token", http.StatusUnauthorized)
			return
		}
		c, err := up.Upgrade(w, r)
		if err != nil {
			return
		}
		go c.ReadLoop()
	}))
	t.Cleanup(srv.Close)
	return p, strings.TrimPrefix(srv.URL, "http://")
}

func dial(t *testing.T, addr, token string) (*Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return Dial(ctx, addr, "/ws", token, net.IPv4(127, 0, 0, 3))
}

func TestEchoPingClose(t *testing.T) {
	p, addr := startPeer(t)
	c, err := dial(t, addr, "good")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 8)
	done := make(chan error, 1)
	go func() { done <- c.ReadLoop(func(b []byte) { got <- string(b) }) }()

	msgs := []string{"hello", strings.Repeat("m", 1000), strings.Repeat("L", 70000)} // 7-bit, 16-bit and 64-bit lengths
	for _, m := range msgs {
		if err := c.WriteText([]byte(m)); err != nil {
			t.Fatal(err)
		}
		if e := <-got; e != m {
			t.Fatalf("echo of %d bytes came back as %d bytes", len(m), len(e))
		}
	}
	if err := c.WriteText([]byte("ping-me")); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-p.pongs:
		if b != "p1" {
			t.Fatalf("pong payload %q", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no pong for the server's ping")
	}
	c.Close(2 * time.Second)
	var ce *CloseError
	if err := <-done; !errors.As(err, &ce) || ce.Code != 1000 || !c.ClosedByUs() {
		t.Fatalf("ReadLoop after Close: %v", err)
	}
}

func TestServerClose(t *testing.T) {
	_, addr := startPeer(t)
	c, err := dial(t, addr, "good")
	if err != nil {
		t.Fatal(err)
	}
	_ = c.WriteText([]byte("bye"))
	var ce *CloseError
	if err := c.ReadLoop(func([]byte) {}); !errors.As(err, &ce) || ce.Code != 1001 || ce.Reason != "going away" {
		t.Fatalf("got %v, want close 1001", err)
	}
	if c.ClosedByUs() {
		t.Fatal("a server close counted as ours")
	}
}

func TestRefusals(t *testing.T) {
	_, addr := startPeer(t)
	f := func(addr, token, want string) {
		t.Helper()
		_, err := dial(t, addr, token)
		if err == nil || Reason(err) != want {
			t.Fatalf("token %q: got %v (%s), want %s", token, err, Reason(err), want)
		}
	}
	f(addr, "full", "http_503")
	f(addr, "bad", "http_401")
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln.Addr().String()
	ln.Close()
	f(closed, "good", "dial")
	var he *HandshakeError
	_, err := dial(t, addr, "full")
	if !errors.As(err, &he) || !bytes.Contains([]byte(he.Reason), []byte("capacity")) {
		t.Fatalf("503 reason: %v", err)
	}
}
