// Package client is Surge's Go client: it speaks the WebSocket protocol of
// docs/PROTOCOL.md over github.com/lxzan/gws.
//
// A Client keeps the inbox in order for its user: it hands messages to the
// application exactly once and in sequence order, holding back any that
// arrive after a gap and syncing to fill it. All methods are safe for
// concurrent use.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"
)

// Msg is one inbox entry.
type Msg struct {
	Seq      uint64 `json:"seq"`
	MsgID    string `json:"msg_id"`
	Conv     string `json:"conv"`
	From     string `json:"from"`
	ID       string `json:"id"` // the sender's client message id
	Body     string `json:"body"`
	SentAt   int64  `json:"sent_at"`   // unix microseconds, when the edge accepted the send
	StoredAt int64  `json:"stored_at"` // unix microseconds, when the shard stored it
}

// TopicMsg is a live push to a topic.
type TopicMsg struct {
	Topic  string `json:"topic"`
	From   string `json:"from"`
	MsgID  string `json:"msg_id"`
	Body   string `json:"body"`
	SentAt int64  `json:"sent_at"`
}

// ServerError is an error frame from the server.
type ServerError struct {
	ID     string `json:"id"`
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

func (e *ServerError) Error() string { return "surge: " + e.Code + ": " + e.Reason }

// ErrClosed is returned by calls on a closed client.
var ErrClosed = errors.New("surge: connection closed")

// Options configure Dial.
type Options struct {
	// After is the last sequence the application already has; the client
	// syncs everything after it on connect. Zero means from the start.
	After uint64
	// OnMessage receives inbox entries in sequence order, exactly once
	// each, on the client's read goroutine: it must not block for long.
	// Nil discards them.
	OnMessage func(Msg)
	// OnError receives error frames that answer no pending request, such
	// as bad_frame for a frame the server could not parse; nil ignores them.
	OnError func(*ServerError)
	// OnPresence receives a friend's presence changes; nil ignores them.
	OnPresence func(user string, online bool)
	// OnTopic receives pushes to subscribed topics; nil ignores them.
	OnTopic func(TopicMsg)
	// OnClose is called once when the connection ends; nil ignores it.
	OnClose func(err error)
	// NoSync turns off the sync on connect and on gaps.
	NoSync bool
	// DialTimeout bounds the upgrade; zero means 10s.
	DialTimeout time.Duration
}

// Client is one connection to a Surge edge.
type Client struct {
	opts    Options
	conn    *gws.Conn
	user    string
	session string

	nextReq atomic.Uint64
	mu      sync.Mutex
	waiting map[string]chan frame // request id → reply
	closed  bool
	err     error

	// inbox ordering
	imu     sync.Mutex
	next    uint64         // next sequence to hand out
	held    map[uint64]Msg // arrived after a gap
	syncing bool
	done    chan struct{}
}

// frame is any server frame; fields unused by its type stay zero.
type frame struct {
	Type      string          `json:"type"`
	User      string          `json:"user"`
	Session   string          `json:"session"`
	Heartbeat int             `json:"heartbeat"`
	ID        string          `json:"id"`
	MsgID     string          `json:"msg_id"`
	Code      string          `json:"code"`
	Reason    string          `json:"reason"`
	After     uint64          `json:"after"`
	Last      uint64          `json:"last"`
	More      bool            `json:"more"`
	TS        int64           `json:"ts"`
	Topic     string          `json:"topic"`
	Online    json.RawMessage `json:"online"` // presence: a bool (event) or an object (reply)
	OnlineMap map[string]bool `json:"-"`
	Msg
}

// Dial connects to url (ws://host:port/ws) with token and waits for the
// server's hello.
func Dial(ctx context.Context, url, token string, opts Options) (*Client, error) {
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 10 * time.Second
	}
	c := &Client{
		opts:    opts,
		waiting: make(map[string]chan frame),
		next:    opts.After + 1,
		held:    make(map[uint64]Msg),
		done:    make(chan struct{}),
	}
	hello := make(chan frame, 1)
	c.waiting[""] = hello
	h := http.Header{}
	h.Set("Authorization", "Bearer "+token)
	conn, resp, err := gws.NewClient(&handler{c: c}, &gws.ClientOption{
		Addr:             url,
		RequestHeader:    h,
		HandshakeTimeout: opts.DialTimeout,
		CheckUtf8Enabled: true,
	})
	if err != nil {
		if resp != nil {
			return nil, &DialError{Status: resp.StatusCode, Err: err}
		}
		return nil, fmt.Errorf("surge: dial %s: %w", url, err)
	}
	c.conn = conn
	go conn.ReadLoop()
	select {
	case f := <-hello:
		c.user, c.session = f.User, f.Session
	case <-c.done:
		return nil, c.closeErr()
	case <-ctx.Done():
		conn.NetConn().Close()
		return nil, ctx.Err()
	}
	if !opts.NoSync {
		c.imu.Lock()
		c.startSync(c.next - 1)
		c.imu.Unlock()
	}
	return c, nil
}

// DialError is a refused upgrade.
type DialError struct {
	Status int // HTTP status, such as 401 or 503
	Err    error
}

func (e *DialError) Error() string {
	return "surge: upgrade refused with HTTP " + strconv.Itoa(e.Status) + ": " + e.Err.Error()
}
func (e *DialError) Unwrap() error { return e.Err }

// User returns the user the server authenticated.
func (c *Client) User() string { return c.user }

// Session returns the server's id for this connection.
func (c *Client) Session() string { return c.session }

// Done is closed when the connection ends.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended, once Done is closed.
func (c *Client) Err() error { return c.closeErr() }

// Send sends body to user "to" under the client message id id, and waits
// for the ack (returning the message id) or an error frame (*ServerError).
// Retrying with the same id after an error or a lost connection is safe:
// the message is stored once.
func (c *Client) Send(ctx context.Context, to, id, body string) (string, error) {
	f, err := c.roundTrip(ctx, id, map[string]any{"type": "send", "id": id, "to": to, "body": body})
	if err != nil {
		return "", err
	}
	return f.MsgID, nil
}

// SendGroup sends body to group under the client message id id, and waits
// for the ack. The group's shard may still refuse the message after the
// ack (the sender is not a member): that error arrives later, through
// Options.OnError, with the same id.
func (c *Client) SendGroup(ctx context.Context, group, id, body string) (string, error) {
	f, err := c.roundTrip(ctx, id, map[string]any{"type": "send", "id": id, "group": group, "body": body})
	if err != nil {
		return "", err
	}
	return f.MsgID, nil
}

// Subscribe subscribes the connection to topic; pushes arrive through
// Options.OnTopic.
func (c *Client) Subscribe(ctx context.Context, topic string) error {
	id := c.reqID("s")
	_, err := c.roundTrip(ctx, id, map[string]any{"type": "subscribe", "id": id, "topic": topic})
	return err
}

// Unsubscribe ends a subscription.
func (c *Client) Unsubscribe(ctx context.Context, topic string) error {
	id := c.reqID("s")
	_, err := c.roundTrip(ctx, id, map[string]any{"type": "unsubscribe", "id": id, "topic": topic})
	return err
}

// Online asks which of users are online; the server answers for the
// caller's friends only, leaving the others out.
func (c *Client) Online(ctx context.Context, users ...string) (map[string]bool, error) {
	id := c.reqID("q")
	f, err := c.roundTrip(ctx, id, map[string]any{"type": "presence", "id": id, "users": users})
	if err != nil {
		return nil, err
	}
	return f.OnlineMap, nil
}

// SendAsync sends without waiting; done (if not nil) is called on the read
// goroutine with the ack's message id or the error.
func (c *Client) SendAsync(to, id, body string, done func(msgID string, err error)) error {
	ch := make(chan frame, 1)
	if err := c.register(id, ch); err != nil {
		return err
	}
	b, _ := json.Marshal(map[string]any{"type": "send", "id": id, "to": to, "body": body})
	if err := c.conn.WriteMessage(gws.OpcodeText, b); err != nil {
		c.unregister(id)
		return err
	}
	if done != nil {
		go func() {
			select {
			case f := <-ch:
				if f.Type == "error" {
					done("", &ServerError{ID: f.ID, Code: f.Code, Reason: f.Reason})
				} else {
					done(f.MsgID, nil)
				}
			case <-c.done:
				done("", c.closeErr())
			}
		}()
	}
	return nil
}

// Ping sends an application ping and returns the round-trip time.
func (c *Client) Ping(ctx context.Context) (time.Duration, error) {
	id := c.reqID("p")
	start := time.Now()
	if _, err := c.roundTrip(ctx, id, map[string]any{"type": "ping", "id": id}); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// WriteRaw sends a raw text frame, for tests of the server's error handling.
func (c *Client) WriteRaw(b []byte) error { return c.conn.WriteMessage(gws.OpcodeText, b) }

// Close closes the connection with code 1000.
func (c *Client) Close() error {
	_ = c.conn.WriteClose(1000, nil)
	select {
	case <-c.done:
	case <-time.After(2 * time.Second):
		c.conn.NetConn().Close()
	}
	return nil
}

func (c *Client) roundTrip(ctx context.Context, id string, req map[string]any) (frame, error) {
	ch := make(chan frame, 1)
	if err := c.register(id, ch); err != nil {
		return frame{}, err
	}
	defer c.unregister(id)
	b, _ := json.Marshal(req)
	if err := c.conn.WriteMessage(gws.OpcodeText, b); err != nil {
		return frame{}, err
	}
	select {
	case f := <-ch:
		if f.Type == "error" {
			return f, &ServerError{ID: f.ID, Code: f.Code, Reason: f.Reason}
		}
		return f, nil
	case <-c.done:
		return frame{}, c.closeErr()
	case <-ctx.Done():
		return frame{}, ctx.Err()
	}
}

func (c *Client) register(id string, ch chan frame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	if _, dup := c.waiting[id]; dup {
		return fmt.Errorf("surge: request id %q already in flight", id)
	}
	c.waiting[id] = ch
	return nil
}

func (c *Client) unregister(id string) {
	c.mu.Lock()
	delete(c.waiting, id)
	c.mu.Unlock()
}

func (c *Client) reply(id string, f frame) bool {
	c.mu.Lock()
	ch, ok := c.waiting[id]
	if ok {
		delete(c.waiting, id)
	}
	c.mu.Unlock()
	if ok {
		ch <- f
	}
	return ok
}

func (c *Client) closeErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	return ErrClosed
}

// reqID returns an id for the client's own requests (sync, ping,
// subscribe, presence). "~" is not allowed in a send's id, so these never
// clash with the application's message ids.
func (c *Client) reqID(kind string) string {
	return "~" + kind + strconv.FormatUint(c.nextReq.Add(1), 10)
}
