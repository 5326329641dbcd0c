package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/surgechat/surge/client"
)

// rawFrame is any server frame, decoded loosely. Online is a bool in a
// presence event and an object in a presence reply.
type rawFrame struct {
	Type   string          `json:"type"`
	ID     string          `json:"id"`
	Code   string          `json:"code"`
	Reason string          `json:"reason"`
	MsgID  string          `json:"msg_id"`
	Seq    uint64          `json:"seq"`
	Conv   string          `json:"conv"`
	From   string          `json:"from"`
	Body   string          `json:"body"`
	User   string          `json:"user"`
	Topic  string          `json:"topic"`
	Online json.RawMessage `json:"online"`
}

// rawConn is a WebSocket client that keeps every frame the server sends:
// the Go client has no group sends and drops what it does not know
// (acks of raw frames, presence, topic pushes, subscribe replies).
type rawConn struct {
	gws.BuiltinEventHandler
	t      *testing.T
	conn   *gws.Conn
	mu     sync.Mutex
	frames []rawFrame
	done   chan struct{}
}

func (r *rawConn) OnMessage(_ *gws.Conn, m *gws.Message) {
	defer m.Close()
	var f rawFrame
	if err := json.Unmarshal(m.Bytes(), &f); err != nil {
		return
	}
	r.mu.Lock()
	r.frames = append(r.frames, f)
	r.mu.Unlock()
}

func (r *rawConn) OnClose(*gws.Conn, error) { close(r.done) }

// rawDial connects with token and waits for the hello.
func rawDial(t *testing.T, wsURL, token string) *rawConn {
	t.Helper()
	h := http.Header{}
	h.Set("Authorization", "Bearer "+token)
	r := &rawConn{t: t, done: make(chan struct{})}
	conn, _, err := gws.NewClient(r, &gws.ClientOption{Addr: wsURL, RequestHeader: h})
	if err != nil {
		t.Fatalf("raw dial: %v", err)
	}
	r.conn = conn
	go conn.ReadLoop()
	t.Cleanup(r.close)
	r.wait(5*time.Second, "hello", func(f rawFrame) bool { return f.Type == "hello" })
	return r
}

func (r *rawConn) close() {
	_ = r.conn.WriteClose(1000, nil)
	select {
	case <-r.done:
	case <-time.After(2 * time.Second):
		r.conn.NetConn().Close()
	}
}

// write sends v as a JSON text frame.
func (r *rawConn) write(v any) {
	r.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.conn.WriteMessage(gws.OpcodeText, b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// sendGroup writes a group send without waiting.
func (r *rawConn) sendGroup(group, id, body string) {
	r.write(map[string]string{"type": "send", "id": id, "group": group, "body": body})
}

// all returns the frames that match.
func (r *rawConn) all(match func(rawFrame) bool) []rawFrame {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []rawFrame
	for _, f := range r.frames {
		if match(f) {
			out = append(out, f)
		}
	}
	return out
}

// wait polls until a frame matches and returns the first that does.
func (r *rawConn) wait(d time.Duration, what string, match func(rawFrame) bool) rawFrame {
	r.t.Helper()
	var got rawFrame
	waitFor(r.t, d, what, func() bool {
		fs := r.all(match)
		if len(fs) > 0 {
			got = fs[0]
			return true
		}
		return false
	})
	return got
}

// outcome waits for the ack or error of the send with client id id.
func (r *rawConn) outcome(id string) rawFrame {
	r.t.Helper()
	return r.wait(10*time.Second, "ack or error of "+id, func(f rawFrame) bool {
		return f.ID == id && (f.Type == "ack" || f.Type == "error")
	})
}

// refused waits until the send id is refused with code, whether at once
// or, after its ack, as an event from the shard.
func (r *rawConn) refused(id, code string) {
	r.t.Helper()
	f := r.wait(10*time.Second, "refusal of "+id, func(f rawFrame) bool { return f.ID == id && f.Type == "error" })
	if f.Code != code {
		r.t.Fatalf("send %s refused with %s (%s), want %s", id, f.Code, f.Reason, code)
	}
}

// group is the part of the API's Group the tests read.
type group struct {
	ID          string `json:"id"`
	Owner       string `json:"owner"`
	MemberCount int    `json:"member_count"`
	Version     string `json:"version"`
	MyRole      string `json:"my_role"`
}

// createGroup creates a group owned by owner with members and returns its id.
func (s *server) createGroup(ownerToken, name string, members ...string) string {
	s.t.Helper()
	var g group
	s.mustAPI(201, "POST", "/v1/groups", ownerToken, map[string]any{"name": name, "members": members}, &g)
	if len(g.ID) != 16 {
		s.t.Fatalf("group id %q", g.ID)
	}
	return g.ID
}

// TestGroupFanOut has three of a group's four members send interleaved
// group messages: every member, senders included, gets each exactly once
// with conv g/<id>, gap-free, and all members see one order.
func TestGroupFanOut(t *testing.T) {
	s := startServer(t)
	names := []string{"alice", "bob", "carol", "dave"}
	tok := s.users(names...)
	gid := s.createGroup(tok["alice"], "four", "bob", "carol", "dave")
	conv := "g/" + gid

	inboxes := make(map[string]*inbox)
	raws := make(map[string]*rawConn)
	for _, u := range names {
		_, inboxes[u] = s.dialToken(tok[u], client.Options{})
		raws[u] = rawDial(t, s.url(), tok[u]) // a second device, for sending
	}
	senders := names[:3]
	const per = 25
	for i := 0; i < per; i++ {
		for _, u := range senders {
			raws[u].sendGroup(gid, fmt.Sprintf("%s-%d", u, i), fmt.Sprintf("%s says %d", u, i))
		}
	}
	acked := make(map[string]string) // msg_id -> client id
	for _, u := range senders {
		for i := 0; i < per; i++ {
			id := fmt.Sprintf("%s-%d", u, i)
			f := raws[u].outcome(id)
			if f.Type != "ack" || len(f.MsgID) != 32 {
				t.Fatalf("send %s: %+v", id, f)
			}
			acked[f.MsgID] = id
		}
	}
	const total = 3 * per
	var order []string // msg ids as the first member saw them
	for _, u := range names {
		in := inboxes[u]
		waitFor(t, 15*time.Second, u+"'s group messages", func() bool { return in.len() >= total })
	}
	time.Sleep(300 * time.Millisecond) // room for a duplicate to show up
	for _, u := range names {
		got := inboxes[u].list()
		if len(got) != total {
			t.Fatalf("%s has %d messages, want %d", u, len(got), total)
		}
		var ids []string
		next := map[string]int{}
		for i, m := range got {
			if m.Seq != uint64(i+1) {
				t.Fatalf("%s[%d] has seq %d: not gap-free", u, i, m.Seq)
			}
			if m.Conv != conv {
				t.Fatalf("%s[%d] conv %q, want %q", u, i, m.Conv, conv)
			}
			id, ok := acked[m.MsgID]
			if !ok || id != m.ID {
				t.Fatalf("%s[%d] = %+v: not an acked message", u, i, m)
			}
			// Per-sender order holds.
			if want := fmt.Sprintf("%s-%d", m.From, next[m.From]); m.ID != want {
				t.Fatalf("%s[%d] from %s is %s, want %s", u, i, m.From, m.ID, want)
			}
			next[m.From]++
			ids = append(ids, m.MsgID)
		}
		if order == nil {
			order = ids
		} else if !slices.Equal(order, ids) {
			t.Fatalf("%s sees the group messages in another order than %s", u, names[0])
		}
	}
}

// TestGroupAuthorization: a non-member's send is refused with not_member;
// a member removed over HTTP can no longer post and stops receiving.
func TestGroupAuthorization(t *testing.T) {
	s := startServer(t)
	tok := s.users("alice", "bob", "carol", "mallory")
	gid := s.createGroup(tok["alice"], "club", "bob", "carol")
	alice := rawDial(t, s.url(), tok["alice"])
	bob, bobIn := s.dialToken(tok["bob"], client.Options{})
	carol := rawDial(t, s.url(), tok["carol"])
	_, carolIn := s.dialToken(tok["carol"], client.Options{})
	mallory := rawDial(t, s.url(), tok["mallory"])

	// A stranger is refused, first after the ack (the edge's cache is
	// cold), then at the edge.
	mallory.sendGroup(gid, "m1", "let me in")
	mallory.refused("m1", "not_member")
	mallory.sendGroup(gid, "m2", "please")
	mallory.refused("m2", "not_member")
	// So is a send to a group that does not exist.
	mallory.sendGroup("0123456789abcdef", "m3", "anyone?")
	mallory.refused("m3", "not_member")

	alice.sendGroup(gid, "a1", "before")
	if f := alice.outcome("a1"); f.Type != "ack" {
		t.Fatalf("a1: %+v", f)
	}
	// The Go client's group send, too.
	if _, err := bob.SendGroup(ctxT(t), gid, "b1", "me too"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "carol gets a1 and b1", func() bool { return carolIn.len() == 2 })

	// A member may not disband the group, nor remove others.
	if r := s.api("DELETE", "/v1/groups/"+gid, tok["bob"], nil); r.Status != 403 || r.errCode() != "PERMISSION_DENIED" {
		t.Fatalf("member disbands: HTTP %d %s, want 403 PERMISSION_DENIED", r.Status, r.Body)
	}
	if r := s.api("DELETE", "/v1/groups/"+gid+"/members/carol", tok["bob"], nil); r.Status != 403 {
		t.Fatalf("member removes a member: HTTP %d %s, want 403", r.Status, r.Body)
	}

	s.mustAPI(204, "DELETE", "/v1/groups/"+gid+"/members/carol", tok["alice"], nil, nil)
	carol.sendGroup(gid, "c1", "am I still here?")
	carol.refused("c1", "not_member")
	alice.sendGroup(gid, "a2", "after")
	if f := alice.outcome("a2"); f.Type != "ack" {
		t.Fatalf("a2: %+v", f)
	}
	waitFor(t, 5*time.Second, "bob gets a1, b1 and a2", func() bool { return bobIn.len() == 3 })
	time.Sleep(300 * time.Millisecond)
	for _, m := range bobIn.list() {
		if m.From != "alice" && m.From != "bob" {
			t.Fatalf("bob got a message from a non-member: %+v", m)
		}
	}
	if got := carolIn.list(); len(got) != 2 || got[0].ID != "a1" || got[1].ID != "b1" {
		t.Fatalf("removed carol got %+v, want only a1 and b1", got)
	}
	// Nor may she read the group's history any more.
	checkError(t, s.api("GET", "/v1/conversations/g/"+gid+"/messages", tok["carol"], nil), 403, "PERMISSION_DENIED")
	// The remaining members' messages still flow; the member list agrees.
	var ms struct {
		Members []struct{ User, Role string } `json:"members"`
	}
	s.mustAPI(200, "GET", "/v1/groups/"+gid+"/members", tok["bob"], nil, &ms)
	if len(ms.Members) != 2 {
		t.Fatalf("members after removal: %+v", ms.Members)
	}
	if r := s.api("GET", "/v1/groups/"+gid+"/members", tok["carol"], nil); r.Status != 404 && r.Status != 403 {
		t.Fatalf("removed member lists members: HTTP %d %s", r.Status, r.Body)
	}
	// Once disbanded, the group takes no more messages, even its owner's.
	s.mustAPI(204, "DELETE", "/v1/groups/"+gid, tok["alice"], nil, nil)
	alice.sendGroup(gid, "a3", "anyone left?")
	alice.refused("a3", "not_member")
}

// TestBlockedDirectMessage: after bob blocks alice, direct messages are
// refused with code blocked both ways and nothing is delivered.
func TestBlockedDirectMessage(t *testing.T) {
	s := startServer(t)
	tok := s.users("alice", "bob")
	s.mustAPI(204, "PUT", "/v1/blocks/alice", tok["bob"], nil, nil)
	var bl struct{ Users []string }
	s.mustAPI(200, "GET", "/v1/blocks", tok["bob"], nil, &bl)
	if !slices.Equal(bl.Users, []string{"alice"}) {
		t.Fatalf("bob's blocks: %v", bl.Users)
	}
	alice := rawDial(t, s.url(), tok["alice"])
	bob := rawDial(t, s.url(), tok["bob"])
	_, bobIn := s.dialToken(tok["bob"], client.Options{})
	alice.write(map[string]string{"type": "send", "id": "d1", "to": "bob", "body": "hi"})
	alice.refused("d1", "blocked")
	alice.write(map[string]string{"type": "send", "id": "d2", "to": "bob", "body": "hi again"})
	alice.refused("d2", "blocked")
	bob.write(map[string]string{"type": "send", "id": "b1", "to": "alice", "body": "go away"})
	bob.refused("b1", "blocked")
	// A friend request is refused too.
	if r := s.api("POST", "/v1/friends/requests", tok["alice"], map[string]string{"to": "bob"}); r.Status != 400 || r.errCode() != "FAILED_PRECONDITION" {
		t.Fatalf("friend request to a blocker: HTTP %d %s, want 400 FAILED_PRECONDITION", r.Status, r.Body)
	}
	time.Sleep(300 * time.Millisecond)
	if n := bobIn.len(); n != 0 {
		t.Fatalf("bob received %d messages from a blocked user", n)
	}
}

// TestDirectPolicyFriends: with --direct-policy friends, only friends may
// exchange direct messages.
func TestDirectPolicyFriends(t *testing.T) {
	s := startServer(t, "--direct-policy", "friends")
	tok := s.users("alice", "bob", "carol")
	s.mustAPI(201, "POST", "/v1/friends/requests", tok["alice"], map[string]string{"to": "bob"}, nil)
	s.mustAPI(200, "POST", "/v1/friends/requests/alice/accept", tok["bob"], nil, nil)

	a, _ := s.dialToken(tok["alice"], client.Options{})
	_, bobIn := s.dialToken(tok["bob"], client.Options{})
	_, aliceIn := s.dialToken(tok["alice"], client.Options{})
	carol := rawDial(t, s.url(), tok["carol"])
	if _, err := a.Send(ctxT(t), "bob", "f1", "hello friend"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "bob gets f1", func() bool { return bobIn.len() == 1 })
	if m := bobIn.list()[0]; m.From != "alice" || m.Body != "hello friend" {
		t.Fatalf("bob got %+v", m)
	}
	carol.write(map[string]string{"type": "send", "id": "c1", "to": "alice", "body": "hi stranger"})
	carol.refused("c1", "not_friends")
	carol.write(map[string]string{"type": "send", "id": "c2", "to": "alice", "body": "hi again"})
	carol.refused("c2", "not_friends")
	// A user may always write to themself.
	carol.write(map[string]string{"type": "send", "id": "c3", "to": "carol", "body": "note to self"})
	if f := carol.outcome("c3"); f.Type != "ack" {
		t.Fatalf("note to self: %+v", f)
	}
	time.Sleep(300 * time.Millisecond)
	for _, m := range aliceIn.list() {
		if m.From == "carol" {
			t.Fatalf("alice got a message from a non-friend: %+v", m)
		}
	}
}

// TestUnblockLetsMessagesThrough: once bob unblocks alice, her direct
// messages flow again within the cache's lifetime of an answer (10s).
func TestUnblockLetsMessagesThrough(t *testing.T) {
	s := startServer(t)
	tok := s.users("alice", "bob")
	s.mustAPI(204, "PUT", "/v1/blocks/alice", tok["bob"], nil, nil)
	alice := rawDial(t, s.url(), tok["alice"])
	_, bobIn := s.dialToken(tok["bob"], client.Options{})
	alice.write(map[string]string{"type": "send", "id": "d0", "to": "bob", "body": "hi"})
	alice.refused("d0", "blocked")
	s.mustAPI(204, "DELETE", "/v1/blocks/alice", tok["bob"], nil, nil)

	deadline := time.Now().Add(15 * time.Second)
	for i := 1; ; i++ {
		id := fmt.Sprintf("d%d", i)
		alice.write(map[string]string{"type": "send", "id": id, "to": "bob", "body": "hi again"})
		if f := alice.outcome(id); f.Type == "ack" {
			// An ack can still be refused by the shard; the delivery counts.
			if waitDelivered(bobIn, id, time.Second) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("15s after the unblock alice's direct messages are still refused (%d tries): "+
				"a cached \"blocked\" answer is used past its lifetime", i)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// waitDelivered reports whether the message with client id id reaches in
// within d.
func waitDelivered(in *inbox, id string, d time.Duration) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if slices.ContainsFunc(in.list(), func(m client.Msg) bool { return m.ID == id }) {
			return true
		}
	}
	return false
}

// TestAddedMemberCanSendAtOnce: a user refused as a non-member, then
// added over HTTP, may post as soon as the add has answered.
func TestAddedMemberCanSendAtOnce(t *testing.T) {
	s := startServer(t, "--send-rate", "1000")
	tok := s.users("alice", "mallory")
	m := rawDial(t, s.url(), tok["mallory"])
	a := rawDial(t, s.url(), tok["alice"])
	const rounds = 15
	for i := 0; i < rounds; i++ {
		gid := s.createGroup(tok["alice"], fmt.Sprintf("g%d", i))
		out, in := fmt.Sprintf("out%d", i), fmt.Sprintf("in%d", i)
		// Refused after the ack (the edge's cache is cold), then at the edge.
		for _, id := range []string{out + "a", out + "b"} {
			m.sendGroup(gid, id, "not yet")
			m.refused(id, "not_member")
		}
		// Keep the group's shard busy, as in any lively group, so that
		// it takes a moment to see the change.
		for j := 0; j < 100; j++ {
			a.sendGroup(gid, fmt.Sprintf("busy%d-%d", i, j), "chatter")
		}
		s.mustAPI(200, "POST", "/v1/groups/"+gid+"/members", tok["alice"], map[string]any{"users": []string{"mallory"}}, nil)
		m.sendGroup(gid, in, "now a member")
		m.outcome(in)
	}
	time.Sleep(300 * time.Millisecond) // a refusal by the shard comes after the ack
	refused := len(m.all(func(f rawFrame) bool { return f.Type == "error" && strings.HasPrefix(f.ID, "in") }))
	if refused > 0 {
		t.Fatalf("BUG: %d of %d sends right after being added were refused as not_member, at the edge: "+
			"it used a membership cached before the add, which its shard had not yet invalidated", refused, rounds)
	}
}
