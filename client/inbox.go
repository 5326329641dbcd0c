package client

import (
	"encoding/json"
	"errors"
	"strconv"

	"github.com/lxzan/gws"
)

type handler struct {
	gws.BuiltinEventHandler
	c *Client
}

func (h *handler) OnClose(_ *gws.Conn, err error) {
	c := h.c
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		var ce *gws.CloseError
		if errors.As(err, &ce) && ce.Code == 1000 {
			err = ErrClosed
		}
		c.err = err
	}
	c.mu.Unlock()
	close(c.done)
	if c.opts.OnClose != nil {
		c.opts.OnClose(err)
	}
}

func (h *handler) OnMessage(_ *gws.Conn, m *gws.Message) {
	defer m.Close()
	var f frame
	if err := json.Unmarshal(m.Bytes(), &f); err != nil {
		return
	}
	c := h.c
	switch f.Type {
	case "hello":
		c.reply("", f)
	case "msg":
		// frame's own ID and MsgID shadow the embedded Msg's.
		f.Msg.ID, f.Msg.MsgID = f.ID, f.MsgID
		c.imu.Lock()
		c.inbox(f.Msg)
		c.imu.Unlock()
	case "synced":
		c.imu.Lock()
		c.synced(f)
		c.imu.Unlock()
	case "ack", "pong", "subscribed", "unsubscribed":
		c.reply(f.ID, f)
	case "presence":
		if f.ID != "" {
			_ = json.Unmarshal(f.Online, &f.OnlineMap)
			c.reply(f.ID, f)
			return
		}
		var online bool
		if json.Unmarshal(f.Online, &online) == nil && c.opts.OnPresence != nil {
			c.opts.OnPresence(f.User, online)
		}
	case "topic":
		if c.opts.OnTopic != nil {
			c.opts.OnTopic(TopicMsg{Topic: f.Topic, From: f.From, MsgID: f.MsgID, Body: f.Body, SentAt: f.SentAt})
		}
	case "error":
		if c.reply(f.ID, f) {
			return
		}
		if f.ID == c.syncID() {
			c.imu.Lock()
			c.syncing = false
			c.imu.Unlock()
		}
		if c.opts.OnError != nil {
			c.opts.OnError(&ServerError{ID: f.ID, Code: f.Code, Reason: f.Reason})
		}
	}
}

// inbox hands m out if it is the next in sequence, holds it if it comes
// after a gap (and syncs the gap), and drops it if it was handed out.
func (c *Client) inbox(m Msg) {
	switch {
	case m.Seq < c.next:
		return
	case m.Seq > c.next:
		c.held[m.Seq] = m
		if !c.opts.NoSync {
			c.startSync(c.next - 1)
		}
		return
	}
	c.deliver(m)
	for {
		h, ok := c.held[c.next]
		if !ok {
			break
		}
		delete(c.held, c.next)
		c.deliver(h)
	}
	for s := range c.held {
		if s < c.next {
			delete(c.held, s)
		}
	}
}

func (c *Client) deliver(m Msg) {
	c.next = m.Seq + 1
	if c.opts.OnMessage != nil {
		c.opts.OnMessage(m)
	}
}

func (c *Client) syncID() string { return "~sync" }

// startSync asks for everything after "after", unless a sync is running.
func (c *Client) startSync(after uint64) {
	if c.syncing {
		return
	}
	c.syncing = true
	b := []byte(`{"type":"sync","id":"` + c.syncID() + `","after":` + strconv.FormatUint(after, 10) + `}`)
	if err := c.conn.WriteMessage(gws.OpcodeText, b); err != nil {
		c.syncing = false
	}
}

func (c *Client) synced(f frame) {
	c.syncing = false
	if f.More || len(c.held) > 0 {
		c.startSync(c.next - 1)
	}
}

// LastSeq returns the highest sequence handed out so far. OnMessage runs
// with the inbox locked, so it must not call LastSeq; it has m.Seq.
func (c *Client) LastSeq() uint64 {
	c.imu.Lock()
	defer c.imu.Unlock()
	return c.next - 1
}
