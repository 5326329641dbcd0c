package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/surgechat/surge/client"
)

func TestBadTokenGets401(t *testing.T) {
	s := startServer(t)
	f := func(token string) {
		t.Helper()
		_, err := client.Dial(ctxT(t), s.url(), token, client.Options{})
		var de *client.DialError
		if !errors.As(err, &de) || de.Status != 401 {
			t.Fatalf("token %q: err %v, want HTTP 401", token, err)
		}
	}
	f("")
	f("not-a-jwt")
	good := s.token("alice")
	f(good[:len(good)-2] + "xx") // signature altered
	// A token from another deployment's keys.
	other := startServer(t)
	f(other.token("alice"))
}

func TestMalformedFrameKeepsConnection(t *testing.T) {
	s := startServer(t)
	errs := make(chan *client.ServerError, 4)
	c, err := client.Dial(ctxT(t), s.url(), s.token("alice"), client.Options{OnError: func(e *client.ServerError) { errs <- e }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f := func(raw, code string) {
		t.Helper()
		if err := c.WriteRaw([]byte(raw)); err != nil {
			t.Fatal(err)
		}
		select {
		case e := <-errs:
			if e.Code != code {
				t.Fatalf("%s: got %s (%s), want %s", raw, e.Code, e.Reason, code)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no error frame", raw)
		}
		if _, err := c.Ping(ctxT(t)); err != nil {
			t.Fatalf("after %s the connection is gone: %v", raw, err)
		}
	}
	f(`not json`, "bad_frame")
	f(`{"no":"type"}`, "bad_frame")
	f(`{"type":"launch"}`, "bad_frame")
	f(`[1,2,3]`, "bad_frame")
}

func TestInvalidSendsGetDocumentedErrors(t *testing.T) {
	s := startServer(t)
	a, _ := s.dial("alice", 0)
	f := func(to, id, body, code string) {
		t.Helper()
		_, err := a.Send(ctxT(t), to, id, body)
		var se *client.ServerError
		if !errors.As(err, &se) || se.Code != code {
			t.Fatalf("send to %q id %q: %v, want %s", to, id, err, code)
		}
		if _, err := a.Ping(ctxT(t)); err != nil {
			t.Fatalf("connection closed after %s: %v", code, err)
		}
	}
	f("bad/user", "x1", "hi", "bad_recipient")
	f("", "x2", "hi", "bad_recipient")
	f(strings.Repeat("u", 65), "x3", "hi", "bad_recipient")
	f("bob", "has space", "hi", "bad_request")
	f("bob", "x4", strings.Repeat("b", 4097), "too_large")
	// A good send still works on the same connection.
	if _, err := a.Send(ctxT(t), "bob", "ok1", "fine"); err != nil {
		t.Fatal(err)
	}
}

func TestOversizedFrameClosesWith1009(t *testing.T) {
	s := startServer(t)
	c, _ := s.dial("alice", 0)
	if err := c.WriteRaw([]byte(`{"type":"send","id":"big","to":"bob","body":"` + strings.Repeat("x", 20000) + `"}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("connection not closed")
	}
	var ce *gws.CloseError
	if !errors.As(c.Err(), &ce) || ce.Code != 1009 {
		t.Fatalf("closed with %v, want close code 1009", c.Err())
	}
	// The server carries on.
	if _, err := client.Dial(context.Background(), s.url(), s.token("bob"), client.Options{}); err != nil {
		t.Fatalf("server unusable after the oversized frame: %v", err)
	}
}
