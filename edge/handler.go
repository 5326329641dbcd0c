package edge

import (
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/surgechat/surge/edge/internal/ws"
	"github.com/surgechat/surge/internal/wire"
)

// OnOpen implements gnet.EventHandler: admission control.
func (e *Edge) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	if e.draining.Load() {
		e.m.upgrades["draining"].Inc()
		return ws.AppendHTTPError(nil, 503, "edge draining; reconnect elsewhere", "Retry-After: 1"), gnet.Close
	}
	if e.active.Add(1) > int64(e.cfg.MaxConns) {
		e.active.Add(-1)
		e.m.upgrades["refused_cap"].Inc()
		return ws.AppendHTTPError(nil, 503, "edge at connection capacity; retry later", "Retry-After: 1"), gnet.Close
	}
	now := nowNanos()
	c := &conn{gc: gc, opened: now}
	c.reader.MaxMessage = e.cfg.MaxMessage
	c.lastRead.Store(now)
	gc.SetContext(c)
	e.pending.Store(c, struct{}{})
	return nil, gnet.None
}

// OnClose implements gnet.EventHandler.
func (e *Edge) OnClose(gc gnet.Conn, _ error) gnet.Action {
	c, ok := gc.Context().(*conn)
	if !ok {
		return gnet.None // refused in OnOpen
	}
	gc.SetContext(nil)
	e.active.Add(-1)
	if c.user == "" {
		e.pending.Delete(c)
		return gnet.None
	}
	e.users.remove(c.user, c)
	for _, t := range c.topics {
		e.topics.remove(t, c)
	}
	e.producePresence(c, false)
	e.m.disconnects.Inc()
	return gnet.None
}

// OnTraffic implements gnet.EventHandler. It also runs when another
// goroutine queued frames and woke the connection.
func (e *Edge) OnTraffic(gc gnet.Conn) gnet.Action {
	c, ok := gc.Context().(*conn)
	if !ok {
		return gnet.Close
	}
	buf, _ := gc.Peek(-1)
	if len(buf) > 0 {
		now := nowNanos()
		c.lastRead.Store(now)
		c.pinged.Store(false)
		e.m.bytesIn.Add(len(buf))
		var n int
		switch c.state {
		case stateHandshake:
			n = e.handshake(c, buf, now)
			if c.state == stateOpen && n < len(buf) {
				n += e.frames(c, buf[n:], now)
			}
		case stateOpen:
			n = e.frames(c, buf, now)
		default:
			n = len(buf) // closing: ignore what still arrives
		}
		if n > 0 {
			// gnet's Discard(0) drops the whole buffer, partial frame and all.
			_, _ = gc.Discard(n)
		}
	}
	if c.state == stateHandshake {
		return c.flushHandshake()
	}
	frames, closed := c.flush(e.cfg.WriteQueue)
	e.m.framesOut.Add(frames)
	switch closed {
	case 0:
		return gnet.None
	case ws.ClosePolicyViolation:
		e.m.slowConsumers.Inc()
	}
	return gnet.Close
}

// flushHandshake closes a connection whose upgrade was refused.
func (c *conn) flushHandshake() gnet.Action {
	c.mu.Lock()
	code := c.closeAt
	c.mu.Unlock()
	if code != 0 {
		return gnet.Close
	}
	return gnet.None
}

// handshake parses the upgrade request and answers it. It returns the bytes
// consumed.
func (e *Edge) handshake(c *conn, buf []byte, now int64) int {
	req, n, err := ws.ParseUpgrade(buf)
	if err != nil {
		var he *ws.HTTPError
		if !errors.As(err, &he) {
			he = &ws.HTTPError{Status: 400, Reason: err.Error()}
		}
		e.refuse(c, he.AppendResponse(nil), "bad_request")
		return len(buf)
	}
	if n == 0 {
		return 0 // header incomplete
	}
	if req.Path != e.cfg.Path {
		e.refuse(c, ws.AppendHTTPError(nil, 404, "no WebSocket endpoint at "+req.Path), "not_found")
		return len(buf)
	}
	token := bearer(req.Authorization)
	if token == "" {
		if q, err := url.ParseQuery(req.RawQuery); err == nil {
			token = q.Get("token")
		}
	}
	if token == "" {
		e.refuse(c, ws.AppendHTTPError(nil, 401, "missing token: send Authorization: Bearer <jwt> or ?token=<jwt>",
			`WWW-Authenticate: Bearer realm="surge"`), "unauthorized")
		return len(buf)
	}
	claims, err := e.cfg.Keyring.Verify(token, time.Unix(0, now))
	if err != nil || !wire.ValidID(claims.Subject) {
		reason := "invalid token"
		if err != nil {
			reason = "invalid token: " + err.Error()
		}
		e.refuse(c, ws.AppendHTTPError(nil, 401, reason, `WWW-Authenticate: Bearer realm="surge", error="invalid_token"`), "unauthorized")
		return len(buf)
	}

	c.user = strings.Clone(claims.Subject) // not the whole decoded token
	c.session = e.nextSess.Add(1)
	c.part = e.cfg.Ring.Partition(c.user)
	c.state = stateOpen
	e.pending.Delete(c)

	out := ws.AppendAccept(nil, req.Key, "")
	out = ws.AppendFrame(out, ws.OpText, wire.AppendHello(nil, c.user, c.session, int(e.cfg.Heartbeat/time.Second)))
	_, _ = c.gc.Write(out)

	// Local first, then the shard: a delivery that races the connect record
	// finds the session here.
	e.users.add(c.user, c)
	e.producePresence(c, true)
	e.m.upgrades["ok"].Inc()
	e.m.handshakeLat.Update(float64(now-c.opened) / 1e9)
	return n
}

func (e *Edge) refuse(c *conn, resp []byte, result string) {
	e.m.upgrades[result].Inc()
	_, _ = c.gc.Write(resp)
	c.mu.Lock()
	c.closeAt = 1
	c.mu.Unlock()
}

func bearer(h string) string {
	const prefix = "bearer "
	if len(h) > len(prefix) && strings.EqualFold(h[:len(prefix)], prefix) {
		return strings.TrimSpace(h[len(prefix):])
	}
	return ""
}

// frames reads WebSocket messages from buf and handles them. It returns the
// bytes consumed.
func (e *Edge) frames(c *conn, buf []byte, now int64) int {
	total := 0
	for c.state == stateOpen {
		m, n, err := c.reader.Next(buf[total:])
		total += n
		if err != nil {
			var ce *ws.CloseError
			if !errors.As(err, &ce) {
				ce = &ws.CloseError{Code: ws.CloseProtocolError, Reason: "protocol error"}
			}
			e.m.protocolErrors.Inc()
			c.closeWith(ce.Code, ce.Reason)
			return len(buf)
		}
		if m.Op == 0 {
			if n == 0 {
				break
			}
			continue
		}
		e.m.framesIn.Inc()
		switch m.Op {
		case ws.OpText:
			e.request(c, m.Payload, now)
		case ws.OpBinary:
			c.enqueueLocal(wire.AppendError(nil, "", wire.CodeBadFrame, "binary frames are not used; send JSON text frames"), e.cfg.WriteQueue)
		case ws.OpPing:
			c.enqueueFrame(ws.OpPong, m.Payload, e.cfg.WriteQueue, false)
		case ws.OpPong:
			// lastRead already refreshed
		case ws.OpClose:
			code, reason := ws.ParseClose(m.Payload)
			if code == ws.CloseNoStatus {
				code = ws.CloseNormal
			}
			c.closeWith(code, string(reason))
			return len(buf)
		}
	}
	return total
}
