package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/surgechat/surge/client"
)

// metricSum sums the samples of the metric name whose label sets contain
// every one of labels (such as `method="surge.social.v1.Social/CheckDirect"`).
func (s *server) metricSum(name string, labels ...string) float64 {
	s.t.Helper()
	resp, err := http.Get("http://" + s.http + "/metrics")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		series, val, ok := strings.Cut(line, " ")
		if !ok || (series != name && !strings.HasPrefix(series, name+"{")) {
			continue
		}
		if !all(labels, func(l string) bool { return strings.Contains(series, l) }) {
			continue
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			s.t.Fatalf("%s: %v", line, err)
		}
		sum += v
	}
	return sum
}

func all[T any](xs []T, f func(T) bool) bool {
	for _, x := range xs {
		if !f(x) {
			return false
		}
	}
	return true
}

// TestFriendPresence: a friend's connect and disconnect reach bob as
// presence events, and a presence query answers about friends only.
func TestFriendPresence(t *testing.T) {
	s := startServer(t)
	tok := s.users("alice", "bob", "carol")
	s.mustAPI(201, "POST", "/v1/friends/requests", tok["alice"], map[string]string{"to": "bob"}, nil)
	s.mustAPI(200, "POST", "/v1/friends/requests/alice/accept", tok["bob"], nil, nil)
	bob := rawDial(t, s.url(), tok["bob"])
	// bob's second device runs the Go client.
	var mu sync.Mutex
	var events []string
	bobC, _ := s.dialToken(tok["bob"], client.Options{OnPresence: func(u string, online bool) {
		mu.Lock()
		events = append(events, fmt.Sprintf("%s:%v", u, online))
		mu.Unlock()
	}})
	rawDial(t, s.url(), tok["carol"]) // online, but no friend of bob's

	alice, _ := s.dialToken(tok["alice"], client.Options{})
	isAlice := func(online string) func(rawFrame) bool {
		return func(f rawFrame) bool {
			return f.Type == "presence" && f.ID == "" && f.User == "alice" && string(f.Online) == online
		}
	}
	bob.wait(10*time.Second, "alice online", isAlice("true"))

	bob.write(map[string]any{"type": "presence", "id": "q1", "users": []string{"alice", "carol"}})
	reply := bob.wait(5*time.Second, "presence reply", func(f rawFrame) bool { return f.Type == "presence" && f.ID == "q1" })
	var online map[string]bool
	if err := json.Unmarshal(reply.Online, &online); err != nil {
		t.Fatalf("presence reply %s: %v", reply.Online, err)
	}
	if len(online) != 1 || !online["alice"] {
		t.Fatalf("presence reply %v, want alice online and carol left out", online)
	}

	if online, err := bobC.Online(ctxT(t), "alice", "carol"); err != nil || len(online) != 1 || !online["alice"] {
		t.Fatalf("the Go client's presence query: %v, %v", online, err)
	}

	alice.Close()
	bob.wait(10*time.Second, "alice offline", isAlice("false"))
	waitFor(t, 5*time.Second, "the Go client's presence events", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Equal(events, []string{"alice:true", "alice:false"})
	})
	if n := len(bob.all(func(f rawFrame) bool { return f.Type == "presence" && f.User == "carol" })); n != 0 {
		t.Fatalf("bob got %d presence events about carol, who is not a friend", n)
	}
}

// TestTopicsAndPublish: the operator's publish API reaches topic
// subscribers live, a user's inbox (stored), and a group's members.
func TestTopicsAndPublish(t *testing.T) {
	s := startServer(t, "--operators", "ops")
	tok := s.users("ops", "alice", "bob", "carol", "dave", "erin")
	ops := tok["ops"]
	subs := []*rawConn{rawDial(t, s.url(), tok["alice"]), rawDial(t, s.url(), tok["bob"])}
	for i, c := range subs {
		id := fmt.Sprintf("s%d", i)
		c.write(map[string]string{"type": "subscribe", "id": id, "topic": "news"})
		c.wait(5*time.Second, "subscribed", func(f rawFrame) bool { return f.Type == "subscribed" && f.ID == id && f.Topic == "news" })
	}
	// erin subscribes with the Go client.
	pushes := make(chan client.TopicMsg, 4)
	erin, _ := s.dialToken(tok["erin"], client.Options{OnTopic: func(m client.TopicMsg) { pushes <- m }})
	if err := erin.Subscribe(ctxT(t), "news"); err != nil {
		t.Fatal(err)
	}
	other := rawDial(t, s.url(), tok["dave"])

	var pub struct {
		MsgID string `json:"msg_id"`
	}
	s.mustAPI(200, "POST", "/v1/publish", ops, map[string]string{"topic": "news", "body": "flash"}, &pub)
	if len(pub.MsgID) != 32 {
		t.Fatalf("publish answered msg_id %q", pub.MsgID)
	}
	isFlash := func(f rawFrame) bool { return f.Type == "topic" && f.Body == "flash" }
	for _, c := range subs {
		f := c.wait(5*time.Second, "the topic push", isFlash)
		if f.Topic != "news" || f.From != "system" || f.MsgID != pub.MsgID {
			t.Fatalf("topic push %+v", f)
		}
	}
	select {
	case m := <-pushes:
		if m.Topic != "news" || m.Body != "flash" || m.MsgID != pub.MsgID || m.From != "system" {
			t.Fatalf("the Go client's topic push %+v", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the Go client got no topic push")
	}
	// Unsubscribed, alice gets the next push no more; bob does.
	subs[0].write(map[string]string{"type": "unsubscribe", "id": "u0", "topic": "news"})
	subs[0].wait(5*time.Second, "unsubscribed", func(f rawFrame) bool { return f.Type == "unsubscribed" && f.ID == "u0" })
	s.mustAPI(200, "POST", "/v1/publish", ops, map[string]string{"topic": "news", "body": "second", "from": "newsroom"}, nil)
	f := subs[1].wait(5*time.Second, "the second push", func(f rawFrame) bool { return f.Type == "topic" && f.Body == "second" })
	if f.From != "newsroom" {
		t.Fatalf("second push %+v", f)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(subs[0].all(func(f rawFrame) bool { return f.Type == "topic" })); n != 1 {
		t.Fatalf("alice got %d topic pushes, want only the one before unsubscribing", n)
	}
	if n := len(other.all(func(f rawFrame) bool { return f.Type == "topic" })); n != 0 {
		t.Fatalf("a client that never subscribed got %d topic pushes", n)
	}

	// To a user: stored, synced later; a repeated id is stored once.
	var p1, p2 struct {
		MsgID string `json:"msg_id"`
	}
	s.mustAPI(200, "POST", "/v1/publish", ops, map[string]string{"user": "carol", "body": "welcome", "id": "w1", "from": "ops-bot"}, &p1)
	s.mustAPI(200, "POST", "/v1/publish", ops, map[string]string{"user": "carol", "body": "welcome", "id": "w1", "from": "ops-bot"}, &p2)
	s.mustAPI(200, "POST", "/v1/publish", ops, map[string]string{"user": "carol", "body": "notice", "id": "n1"}, nil)
	if p1.MsgID != p2.MsgID {
		t.Fatalf("a repeated publish got msg_id %s, first %s", p2.MsgID, p1.MsgID)
	}
	_, carolIn := s.dialToken(tok["carol"], client.Options{})
	waitFor(t, 5*time.Second, "carol's published messages", func() bool { return carolIn.len() >= 2 })
	time.Sleep(200 * time.Millisecond)
	got := carolIn.list()
	if len(got) != 2 || got[0].MsgID != p1.MsgID || got[0].Conv != "ops-bot" || got[0].From != "ops-bot" || got[0].Body != "welcome" ||
		got[1].Conv != "system" || got[1].From != "system" || got[1].Body != "notice" {
		t.Fatalf("carol's inbox %+v", got)
	}

	// To a group: every member gets it, in the group's conversation.
	gid := s.createGroup(tok["alice"], "team", "bob")
	_, aliceIn := s.dialToken(tok["alice"], client.Options{})
	_, bobIn := s.dialToken(tok["bob"], client.Options{})
	s.mustAPI(200, "POST", "/v1/publish", ops, map[string]string{"group": gid, "body": "all hands", "id": "g1"}, nil)
	for name, in := range map[string]*inbox{"alice": aliceIn, "bob": bobIn} {
		waitFor(t, 5*time.Second, name+"'s group publish", func() bool { return in.len() == 1 })
		if m := in.list()[0]; m.Conv != "g/"+gid || m.From != "system" || m.Body != "all hands" {
			t.Fatalf("%s got %+v", name, m)
		}
	}

	// Only operators (and services) publish; requests are checked.
	checkError(t, s.api("POST", "/v1/publish", tok["alice"], map[string]string{"topic": "news", "body": "spam"}), 403, "PERMISSION_DENIED")
	checkError(t, s.api("POST", "/v1/publish", "", map[string]string{"topic": "news", "body": "spam"}), 401, "UNAUTHENTICATED")
	checkError(t, s.api("POST", "/v1/publish", ops, map[string]string{"user": "carol", "topic": "news", "body": "x", "id": "x"}), 400, "INVALID_ARGUMENT")
	checkError(t, s.api("POST", "/v1/publish", ops, map[string]string{"user": "carol", "body": "no id"}), 400, "INVALID_ARGUMENT")
	checkError(t, s.api("POST", "/v1/publish", ops, map[string]string{"body": "nowhere", "id": "x"}), 400, "INVALID_ARGUMENT")
	checkError(t, s.api("POST", "/v1/publish", ops, map[string]string{"topic": "bad topic", "body": "x"}), 400, "INVALID_ARGUMENT")
	// A group that does not exist is not found, and no user named as the
	// sender hears of it.
	checkError(t, s.api("POST", "/v1/publish", ops, map[string]string{"group": "0123456789abcdef", "body": "x", "id": "p1", "from": "dave"}), 404, "NOT_FOUND")
	time.Sleep(300 * time.Millisecond)
	if errs := other.all(func(f rawFrame) bool { return f.Type == "error" }); len(errs) > 0 {
		t.Fatalf("dave, named as the publisher, got error frames for a send he never made: %+v", errs)
	}
}

// msgs is a History or Sync answer.
type msgs struct {
	Messages []struct {
		Seq   string `json:"seq"`
		MsgID string `json:"msg_id"`
		Conv  string `json:"conv"`
		From  string `json:"from"`
		ID    string `json:"id"`
		Body  string `json:"body"`
	} `json:"messages"`
	More bool   `json:"more"`
	Last string `json:"last"`
}

func (m msgs) seqs() []string {
	var out []string
	for _, x := range m.Messages {
		out = append(out, x.Seq)
	}
	return out
}

// TestHistoryAPI pages a direct and a group conversation over HTTP.
func TestHistoryAPI(t *testing.T) {
	s := startServer(t)
	tok := s.users("alice", "bob", "carol")
	a, aliceIn := s.dialToken(tok["alice"], client.Options{})
	b, _ := s.dialToken(tok["bob"], client.Options{})
	for i, step := range []struct{ from, to string }{
		{"alice", "bob"}, {"alice", "bob"}, {"bob", "alice"}, {"alice", "carol"}, {"alice", "bob"},
		{"bob", "alice"}, {"alice", "bob"}, {"alice", "bob"},
	} {
		c := map[string]*client.Client{"alice": a, "bob": b}[step.from]
		if _, err := c.Send(ctxT(t), step.to, fmt.Sprintf("h%d", i), fmt.Sprintf("%s to %s %d", step.from, step.to, i)); err != nil {
			t.Fatal(err)
		}
		// One at a time, so alice's inbox order is the order sent.
		waitFor(t, 5*time.Second, "alice's copy", func() bool { return aliceIn.len() == i+1 })
	}
	// alice's inbox: 1 2 3 (bob) 4 (carol) 5 6 7 8; her conversation with
	// bob is every entry but 4.
	var h msgs
	s.mustAPI(200, "GET", "/v1/conversations/bob/messages", tok["alice"], nil, &h)
	if want := []string{"1", "2", "3", "5", "6", "7", "8"}; !slices.Equal(h.seqs(), want) || h.More {
		t.Fatalf("alice's conversation with bob: seqs %v more %v, want %v", h.seqs(), h.More, want)
	}
	for i, m := range h.Messages {
		in := aliceIn.list()
		j := slices.IndexFunc(in, func(x client.Msg) bool { return x.MsgID == m.MsgID })
		if j < 0 || strconv.FormatUint(in[j].Seq, 10) != m.Seq || m.Conv != "bob" || in[j].Body != m.Body {
			t.Fatalf("history[%d] = %+v does not match the inbox", i, m)
		}
	}
	page := func(query string, want []string, more bool) {
		t.Helper()
		var h msgs
		s.mustAPI(200, "GET", "/v1/conversations/bob/messages?"+query, tok["alice"], nil, &h)
		if !slices.Equal(h.seqs(), want) || h.More != more {
			t.Fatalf("?%s: seqs %v more %v, want %v more %v", query, h.seqs(), h.More, want, more)
		}
	}
	page("limit=3", []string{"6", "7", "8"}, true)
	page("limit=3&before_seq=6", []string{"2", "3", "5"}, true)
	page("limit=3&before_seq=2", []string{"1"}, false)
	page("limit=2&after_seq=2", []string{"3", "5"}, true)
	page("limit=2&after_seq=6", []string{"7", "8"}, false)
	checkError(t, s.api("GET", "/v1/conversations/bob/messages?before_seq=5&after_seq=1", tok["alice"], nil), 400, "INVALID_ARGUMENT")
	checkError(t, s.api("GET", "/v1/conversations/bob/messages?limit=x", tok["alice"], nil), 400, "INVALID_ARGUMENT")
	checkError(t, s.api("GET", "/v1/conversations/bob/messages", "", nil), 401, "UNAUTHENTICATED")
	// carol's side of her conversation with alice.
	s.mustAPI(200, "GET", "/v1/conversations/alice/messages", tok["carol"], nil, &h)
	if len(h.Messages) != 1 || h.Messages[0].From != "alice" || h.Messages[0].Seq != "1" {
		t.Fatalf("carol's conversation with alice %+v", h)
	}

	// A group's timeline, for members only.
	gid := s.createGroup(tok["alice"], "pair", "bob")
	raw := rawDial(t, s.url(), tok["alice"])
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("g%d", i)
		raw.sendGroup(gid, id, "group "+id)
		if f := raw.outcome(id); f.Type != "ack" {
			t.Fatalf("%s: %+v", id, f)
		}
	}
	waitFor(t, 5*time.Second, "group messages stored", func() bool { return aliceIn.len() == 11 })
	for _, path := range []string{"/v1/conversations/g/" + gid + "/messages", "/v1/conversations/g%2F" + gid + "/messages"} {
		s.mustAPI(200, "GET", path, tok["bob"], nil, &h)
		if !slices.Equal(h.seqs(), []string{"1", "2", "3"}) || h.Messages[0].Conv != "g/"+gid || h.Messages[2].ID != "g3" {
			t.Fatalf("GET %s: %+v", path, h)
		}
	}
	s.mustAPI(200, "GET", "/v1/conversations/g/"+gid+"/messages?limit=2", tok["alice"], nil, &h)
	if !slices.Equal(h.seqs(), []string{"2", "3"}) || !h.More {
		t.Fatalf("group page: %+v", h)
	}
	checkError(t, s.api("GET", "/v1/conversations/g/"+gid+"/messages", tok["carol"], nil), 403, "PERMISSION_DENIED")
	checkError(t, s.api("GET", "/v1/conversations/g/0123456789abcdef/messages", tok["carol"], nil), 403, "PERMISSION_DENIED")

	// Sync over HTTP is the WebSocket's sync.
	s.mustAPI(200, "GET", "/v1/sync?after=8&limit=2", tok["alice"], nil, &h)
	if !slices.Equal(h.seqs(), []string{"9", "10"}) || !h.More || h.Last != "10" || h.Messages[0].Conv != "g/"+gid {
		t.Fatalf("sync: %+v", h)
	}
}

// proxy is a TCP proxy that the test can cut.
type proxy struct {
	t      *testing.T
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	p := &proxy{t: t, target: target, addr: freePort(t)}
	p.listen()
	t.Cleanup(p.cut)
	return p
}

// listen accepts connections on p.addr, again after a cut.
func (p *proxy) listen() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("proxy listen: %v", err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

// cut closes every connection and refuses new ones.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestSocialOutageKeepsMessagesFlowing runs a shard and an edge whose
// social service sits behind a proxy, cuts the proxy, and checks that
// group messages (on cached membership) and direct messages still reach
// everyone, that nothing acked is lost, and that the breaker opened.
func TestSocialOutageKeepsMessagesFlowing(t *testing.T) {
	up := startServer(t) // the services: accounts, social, the HTTP API
	tok := up.users("alice", "bob", "carol")
	gid := up.createGroup(tok["alice"], "resilient", "bob", "carol")
	social := startProxy(t, up.grpc[1])

	kafkaAddr := freePort(t)
	common := []string{"--social", social.addr, "--service-token-file", filepath.Join(up.dataDir, "service.token"),
		"--keys", filepath.Join(up.dataDir, "keys.json")}
	sh := &server{t: t, dataDir: t.TempDir(), http: freePort(t), plane: freePort(t), shardOnly: true,
		args: append([]string{"--kafka-port", kafkaAddr[strings.LastIndex(kafkaAddr, ":")+1:]}, common...)}
	sh.start()
	t.Cleanup(sh.stop)
	ed := &server{t: t, dataDir: t.TempDir(), ws: freePort(t), http: freePort(t), edgeOnly: true,
		args: append([]string{"--kafka", kafkaAddr, "--shards", sh.plane, "--store-dsn", filepath.Join(sh.dataDir, "inbox.db")}, common...)}
	ed.start()
	t.Cleanup(ed.stop)

	names := []string{"alice", "bob", "carol"}
	raws := map[string]*rawConn{}
	inboxes := map[string]*inbox{}
	for _, u := range names {
		raws[u] = rawDial(t, ed.url(), tok[u])
		_, inboxes[u] = ed.dialToken(tok[u], client.Options{})
	}
	waitFor(t, 10*time.Second, "sessions registered", func() bool { return sh.metric("surge_online_sessions") == 6 })

	// want[user] is the msg ids the user must hold, from acked sends.
	want := map[string][]string{}
	send := func(from, id string, frame map[string]string) {
		t.Helper()
		frame["type"], frame["id"], frame["body"] = "send", id, from+" "+id
		raws[from].write(frame)
		f := raws[from].outcome(id)
		if f.Type != "ack" {
			t.Fatalf("send %s by %s: %+v", id, from, f)
		}
		to := []string{from, frame["to"]}
		if frame["group"] != "" {
			to = names
		}
		for _, u := range to {
			want[u] = append(want[u], f.MsgID)
		}
	}
	check := func(when string) {
		t.Helper()
		for _, u := range names {
			in := inboxes[u]
			waitFor(t, 15*time.Second, u+"'s messages "+when, func() bool { return in.len() >= len(want[u]) })
		}
		time.Sleep(200 * time.Millisecond)
		for _, u := range names {
			got := inboxes[u].list()
			var ids []string
			for i, m := range got {
				if m.Seq != uint64(i+1) {
					t.Fatalf("%s[%d] has seq %d %s", u, i, m.Seq, when)
				}
				ids = append(ids, m.MsgID)
			}
			slices.Sort(ids)
			exp := slices.Clone(want[u])
			slices.Sort(exp)
			if !slices.Equal(ids, exp) {
				t.Fatalf("%s holds %d messages %s, want the %d acked", u, len(ids), when, len(exp))
			}
		}
	}

	// Warm the caches: the group's membership and alice's DMs to bob.
	send("alice", "g0", map[string]string{"group": gid})
	send("alice", "d0", map[string]string{"to": "bob"})
	check("before the outage")

	social.cut()
	for i := 1; i <= 5; i++ {
		send("alice", fmt.Sprintf("ga%d", i), map[string]string{"group": gid})
		send("bob", fmt.Sprintf("gb%d", i), map[string]string{"group": gid})
	}
	send("alice", "d1", map[string]string{"to": "bob"}) // a cached answer
	// Pairs never asked about: the check is skipped, the message flows.
	send("carol", "d2", map[string]string{"to": "alice"})
	send("carol", "d3", map[string]string{"to": "bob"})
	send("bob", "d4", map[string]string{"to": "carol"})
	check("during the outage")

	if n := sh.metricSum("surge_shard_degraded_total"); n < 3 {
		t.Fatalf("surge_shard_degraded_total = %v, want at least the 3 unchecked direct messages", n)
	}
	if n := sh.metricSum("surge_grpc_client_requests_total", `method="surge.social.v1.Social/CheckDirect"`, `code="Unavailable"`); n == 0 {
		t.Fatal("the shard's failed CheckDirect calls are not counted")
	}
	if n := sh.metricSum("surge_grpc_client_breaker_state", `method="surge.social.v1.Social/CheckDirect"`); n != 2 {
		t.Fatalf("shard's CheckDirect breaker state %v, want 2 (open)", n)
	}

	// A group the shard never saw cannot be checked: its send is acked,
	// held until the service is back, and then delivered.
	gid2 := up.createGroup(tok["bob"], "newcomer", "alice")
	raws["bob"].sendGroup(gid2, "n1", "hello new group")
	if f := raws["bob"].outcome("n1"); f.Type != "ack" {
		t.Fatalf("send to an unseen group during the outage: %+v", f)
	}
	start := time.Now()
	social.listen()
	for _, u := range []string{"alice", "bob"} {
		in := inboxes[u]
		waitFor(t, 20*time.Second, u+"'s message to the new group", func() bool {
			return slices.ContainsFunc(in.list(), func(m client.Msg) bool { return m.ID == "n1" && m.Conv == "g/"+gid2 })
		})
	}
	t.Logf("held message delivered %v after the service came back", time.Since(start))
}
