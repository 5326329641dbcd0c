package message_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/surgechat/surge/internal/grpcx"
	"github.com/surgechat/surge/internal/kafka"
	"github.com/surgechat/surge/internal/socialcache"
	"github.com/surgechat/surge/internal/store"
	"github.com/surgechat/surge/internal/store/storetest"
	"github.com/surgechat/surge/internal/wire"
	"github.com/surgechat/surge/router"
	"github.com/surgechat/surge/services/message"
	"github.com/surgechat/surge/services/message/messagepb"
)

const topic = "surge.test"

// groups is a socialcache.Source that knows group members only.
type groups map[string][]string

func (g groups) Membership(_ context.Context, id string) (socialcache.Membership, error) {
	m, ok := g[id]
	return socialcache.Membership{Version: 1, Members: slices.Clone(m), Exists: ok}, nil
}

func (g groups) CheckDirect(context.Context, string, string) (socialcache.Direct, error) {
	return socialcache.Direct{Allowed: true}, nil
}

func (g groups) FriendIDs(context.Context, string) ([]string, error) { return nil, nil }

// env is a message service over a real store and a real (embedded) broker.
type env struct {
	svc     *message.Service
	st      store.Store
	ring    *router.Ring
	brokers []string
}

// broker starts an embedded Kafka with the test topic, closed at the end.
func broker(t *testing.T) []string {
	t.Helper()
	k, err := kafka.StartEmbedded("", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafka.EnsureTopic(ctx, k.Addrs(), topic, 16); err != nil {
		t.Fatal(err)
	}
	return k.Addrs()
}

func newEnv(t *testing.T, h storetest.Harness, social socialcache.Source) *env {
	t.Helper()
	e := &env{st: h.Open(t, h.NewDSNs(t, 1)...), ring: router.NewRing(16), brokers: broker(t)}
	prod, err := kgo.NewClient(kafka.ProducerOptions(e.brokers)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	cfg := message.Config{Store: e.st, Ring: e.ring, Producer: prod, Topic: topic}
	if social != nil {
		cfg.Social = socialcache.New(social, socialcache.Config{})
	}
	e.svc, err = message.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// harnesses runs f on SQLite, and on MariaDB when SURGE_TEST_MYSQL_DSN is set.
func harnesses(t *testing.T, f func(t *testing.T, h storetest.Harness)) {
	t.Run("sqlite", func(t *testing.T) { f(t, storetest.SQLite()) })
	t.Run("mysql", func(t *testing.T) { f(t, storetest.MySQL(t)) })
}

func as(user string, roles ...string) context.Context {
	return grpcx.WithPrincipal(context.Background(), grpcx.Principal{User: user, Roles: roles})
}

var asService = grpcx.WithPrincipal(context.Background(), grpcx.Principal{Service: true, Roles: []string{grpcx.RoleService}})

// fill appends n messages to owner's inbox, conversation conv(i) for the
// i-th, and returns them as stored.
func (e *env) fill(t *testing.T, owner string, n int, conv func(i int) string) []store.Message {
	t.Helper()
	msgs := make([]store.Message, n)
	for i := range msgs {
		c := conv(i)
		msgs[i] = store.Message{Owner: owner, ID: wire.NewMsgID(c, owner, fmt.Sprint(i)), Sender: c,
			ClientMsgID: fmt.Sprint(i), Conv: c, Body: []byte(fmt.Sprintf("body %d", i)), SentAt: time.Now().UnixMicro()}
	}
	// Small inboxes are stored one message a transaction, so that their
	// times differ; large ones in one.
	chunk := 1
	if n > 100 {
		chunk = n
	}
	var out []store.Message
	for len(msgs) > 0 {
		k := min(chunk, len(msgs))
		got, err := e.st.Append(context.Background(), e.ring.Partition(owner), msgs[:k])
		if err != nil || len(got) != k {
			t.Fatalf("append %d to %s: %d stored, %v", k, owner, len(got), err)
		}
		out, msgs = append(out, got...), msgs[k:]
	}
	return out
}

func seqsOf[M interface{ GetSeq() uint64 }](ms []M) []uint64 {
	out := make([]uint64, len(ms))
	for i, m := range ms {
		out[i] = m.GetSeq()
	}
	return out
}

func storedSeqs(ms []store.Message) []uint64 {
	out := make([]uint64, len(ms))
	for i := range ms {
		out[i] = ms[i].Seq
	}
	return out
}

func wantCode(t *testing.T, err error, code codes.Code) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("err %v, want %s", err, code)
	}
}

func TestHistory(t *testing.T) {
	harnesses(t, func(t *testing.T, h storetest.Harness) {
		e := newEnv(t, h, groups{"team": {"alice", "bob"}})
		all := e.fill(t, "alice", 30, func(i int) string {
			if i%3 == 2 {
				return "carol"
			}
			return "bob"
		})
		var bob []store.Message
		for _, m := range all {
			if m.Conv == "bob" {
				bob = append(bob, m)
			}
		}
		hist := func(req *messagepb.HistoryRequest) *messagepb.HistoryResponse {
			t.Helper()
			resp, err := e.svc.History(as("alice", "user"), req)
			if err != nil {
				t.Fatalf("History(%v): %v", req, err)
			}
			return resp
		}
		// The whole conversation, and nothing of the other.
		resp := hist(&messagepb.HistoryRequest{Conv: "bob"})
		if !slices.Equal(seqsOf(resp.Messages), storedSeqs(bob)) || resp.More {
			t.Fatalf("conversation with bob: %v more %v", seqsOf(resp.Messages), resp.More)
		}
		if m := resp.Messages[0]; m.Conv != "bob" || m.From != "bob" || m.Id != "0" || m.Body != "body 0" ||
			m.MsgId != string(wire.AppendMsgID(nil, bob[0].ID)) || m.StoredAt != bob[0].StoredAt || m.SentAt != bob[0].SentAt {
			t.Fatalf("first message %+v, stored %+v", m, bob[0])
		}
		// Backwards from the newest, page by page.
		var back []uint64
		req := &messagepb.HistoryRequest{Conv: "bob", Limit: 6}
		for pages := 0; ; pages++ {
			resp := hist(req)
			back = append(seqsOf(resp.Messages), back...)
			if !resp.More {
				if pages != 3 { // 20 messages: 6, 6, 6, 2
					t.Fatalf("%d pages backwards", pages+1)
				}
				break
			}
			req.BeforeSeq = resp.Messages[0].Seq
		}
		if !slices.Equal(back, storedSeqs(bob)) {
			t.Fatalf("paged backwards %v, want %v", back, storedSeqs(bob))
		}
		// Forwards from the first.
		fwd := []uint64{bob[0].Seq}
		req = &messagepb.HistoryRequest{Conv: "bob", Limit: 7, AfterSeq: bob[0].Seq}
		for {
			resp := hist(req)
			fwd = append(fwd, seqsOf(resp.Messages)...)
			if !resp.More {
				break
			}
			req.AfterSeq = resp.Messages[len(resp.Messages)-1].Seq
		}
		if !slices.Equal(fwd, storedSeqs(bob)) {
			t.Fatalf("paged forwards %v, want %v", fwd, storedSeqs(bob))
		}
		// By time: since is inclusive and reads forwards, until exclusive.
		since := bob[5].StoredAt
		if since == bob[0].StoredAt {
			t.Fatalf("messages stored apart share the time %d", since)
		}
		var want []uint64
		for _, m := range bob {
			if m.StoredAt >= since {
				want = append(want, m.Seq)
			}
		}
		resp = hist(&messagepb.HistoryRequest{Conv: "bob", Since: since, Limit: 500})
		if !slices.Equal(seqsOf(resp.Messages), want) {
			t.Fatalf("since %d: %v, want %v", since, seqsOf(resp.Messages), want)
		}
		want = want[:0]
		for _, m := range bob {
			if m.StoredAt < since {
				want = append(want, m.Seq)
			}
		}
		resp = hist(&messagepb.HistoryRequest{Conv: "bob", Until: since, Limit: 500})
		if !slices.Equal(seqsOf(resp.Messages), want) {
			t.Fatalf("until %d: %v, want %v", since, seqsOf(resp.Messages), want)
		}

		// A group's timeline, for members.
		tl := e.fill(t, "g/team", 12, func(int) string { return "g/team" })
		resp, err := e.svc.History(as("bob", "user"), &messagepb.HistoryRequest{Conv: "g/team", Limit: 5})
		if err != nil || !slices.Equal(seqsOf(resp.Messages), storedSeqs(tl[7:])) || !resp.More {
			t.Fatalf("group page: %v, %v", resp, err)
		}
		_, err = e.svc.History(as("carol", "user"), &messagepb.HistoryRequest{Conv: "g/team"})
		wantCode(t, err, codes.PermissionDenied)
		_, err = e.svc.History(as("carol", "user"), &messagepb.HistoryRequest{Conv: "g/nosuch"})
		wantCode(t, err, codes.PermissionDenied)

		// Malformed requests and callers.
		for _, req := range []*messagepb.HistoryRequest{
			{Conv: ""}, {Conv: "bad id"}, {Conv: "g/"}, {Conv: "g/bad id"},
			{Conv: "bob", BeforeSeq: 5, AfterSeq: 1},
		} {
			_, err := e.svc.History(as("alice", "user"), req)
			wantCode(t, err, codes.InvalidArgument)
		}
		_, err = e.svc.History(context.Background(), &messagepb.HistoryRequest{Conv: "bob"})
		wantCode(t, err, codes.Unauthenticated)
		_, err = e.svc.History(asService, &messagepb.HistoryRequest{Conv: "bob"})
		wantCode(t, err, codes.Unauthenticated)
	})
}

func TestHistoryLimits(t *testing.T) {
	e := newEnv(t, storetest.SQLite(), nil)
	e.fill(t, "dave", 520, func(int) string { return "erin" })
	for _, c := range []struct {
		limit int32
		want  int
	}{{0, 50}, {-1, 50}, {7, 7}, {500, 500}, {1000, 500}} {
		resp, err := e.svc.History(as("dave"), &messagepb.HistoryRequest{Conv: "erin", Limit: c.limit})
		if err != nil || len(resp.Messages) != c.want || !resp.More || resp.Messages[len(resp.Messages)-1].Seq != 520 {
			t.Fatalf("limit %d: %d messages, err %v; want the newest %d", c.limit, len(resp.GetMessages()), err, c.want)
		}
	}
	// Without a social service there is no group history.
	_, err := e.svc.History(as("dave"), &messagepb.HistoryRequest{Conv: "g/team"})
	wantCode(t, err, codes.Unavailable)
}

func TestSync(t *testing.T) {
	harnesses(t, func(t *testing.T, h storetest.Harness) {
		e := newEnv(t, h, nil)
		e.fill(t, "alice", 30, func(int) string { return "bob" })
		f := func(after uint64, limit int32, first, n int, last uint64, more bool) {
			t.Helper()
			resp, err := e.svc.Sync(as("alice", "user"), &messagepb.SyncRequest{After: after, Limit: limit})
			if err != nil {
				t.Fatal(err)
			}
			got := seqsOf(resp.Messages)
			if len(got) != n || (n > 0 && got[0] != uint64(first)) || resp.Last != last || resp.More != more {
				t.Fatalf("Sync(after %d, limit %d) = %v last %d more %v", after, limit, got, resp.Last, resp.More)
			}
			for i, s := range got {
				if s != uint64(first+i) {
					t.Fatalf("Sync(after %d): not consecutive: %v", after, got)
				}
			}
		}
		f(0, 10, 1, 10, 10, true)
		f(10, 10, 11, 10, 20, true)
		f(20, 10, 21, 10, 30, false)
		f(25, 0, 26, 5, 30, false)
		f(30, 10, 0, 0, 30, false)
		f(0, 0, 1, 30, 30, false)
		f(0, 30, 1, 30, 30, false)
		// Another user's inbox is their own.
		resp, err := e.svc.Sync(as("bob", "user"), &messagepb.SyncRequest{})
		if err != nil || len(resp.Messages) != 0 || resp.Last != 0 {
			t.Fatalf("bob's sync: %v, %v", resp, err)
		}
		_, err = e.svc.Sync(context.Background(), &messagepb.SyncRequest{})
		wantCode(t, err, codes.Unauthenticated)
	})
}

func TestPublishValidation(t *testing.T) {
	e := newEnv(t, storetest.SQLite(), nil)
	op := as("ops", "user", "operator")
	ok := &messagepb.PublishRequest{Target: &messagepb.PublishRequest_User{User: "bob"}, Body: "hi", Id: "p1"}
	_, err := e.svc.Publish(context.Background(), ok)
	wantCode(t, err, codes.Unauthenticated)
	_, err = e.svc.Publish(as("alice", "user"), ok)
	wantCode(t, err, codes.PermissionDenied)
	for _, ctx := range []context.Context{op, asService} {
		if _, err := e.svc.Publish(ctx, ok); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	user := func(u string) *messagepb.PublishRequest_User { return &messagepb.PublishRequest_User{User: u} }
	for name, req := range map[string]*messagepb.PublishRequest{
		"no target":       {Body: "x", Id: "p"},
		"bad from":        {Target: user("bob"), Body: "x", Id: "p", From: "not valid"},
		"body too large":  {Target: user("bob"), Body: strings.Repeat("x", 4097), Id: "p"},
		"no id for user":  {Target: user("bob"), Body: "x"},
		"no id for group": {Target: &messagepb.PublishRequest_Group{Group: "team"}, Body: "x"},
		"bad id":          {Target: user("bob"), Body: "x", Id: "has space"},
		"bad user":        {Target: user("bad/user"), Body: "x", Id: "p"},
		"empty user":      {Target: user(""), Body: "x", Id: "p"},
		"bad group":       {Target: &messagepb.PublishRequest_Group{Group: "no good"}, Body: "x", Id: "p"},
		"bad topic":       {Target: &messagepb.PublishRequest_Topic{Topic: ""}, Body: "x"},
	} {
		if _, err := e.svc.Publish(op, req); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: err %v, want InvalidArgument", name, err)
		}
	}
	if _, err := e.svc.Publish(op, &messagepb.PublishRequest{Target: user("bob"), Body: strings.Repeat("x", 4096), Id: "max"}); err != nil {
		t.Fatalf("a body of exactly 4 KiB: %v", err)
	}
	// Without a social service no group can be checked.
	_, err = e.svc.Publish(op, &messagepb.PublishRequest{Target: &messagepb.PublishRequest_Group{Group: "team"}, Body: "x", Id: "g"})
	wantCode(t, err, codes.Unavailable)
}

// consume reads n records of the test topic from the start.
func consume(t *testing.T, brokers []string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d records, want %d", len(out), n)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	if len(out) != n {
		t.Fatalf("consumed %d records, want %d", len(out), n)
	}
	return out
}

func TestPublishProducesRecords(t *testing.T) {
	e := newEnv(t, storetest.SQLite(), groups{"team": {"alice", "bob"}})
	op := as("ops", "user", "operator")
	// A group that does not exist is refused before anything is produced.
	_, err := e.svc.Publish(op, &messagepb.PublishRequest{Target: &messagepb.PublishRequest_Group{Group: "nosuch"}, Body: "x", Id: "n1"})
	wantCode(t, err, codes.NotFound)
	before := time.Now().UnixMicro()
	pub := func(req *messagepb.PublishRequest) string {
		t.Helper()
		resp, err := e.svc.Publish(op, req)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.MsgId) != 32 {
			t.Fatalf("msg_id %q", resp.MsgId)
		}
		return resp.MsgId
	}
	toUser := pub(&messagepb.PublishRequest{Target: &messagepb.PublishRequest_User{User: "bob"}, Body: "welcome", Id: "w1"})
	again := pub(&messagepb.PublishRequest{Target: &messagepb.PublishRequest_User{User: "bob"}, Body: "welcome", Id: "w1"})
	toGroup := pub(&messagepb.PublishRequest{Target: &messagepb.PublishRequest_Group{Group: "team"}, Body: "all hands", Id: "g1", From: "ops-bot"})
	toTopic := pub(&messagepb.PublishRequest{Target: &messagepb.PublishRequest_Topic{Topic: "news"}, Body: "flash"})
	if toUser != again {
		t.Fatalf("a repeated publish got msg_id %s, first %s", again, toUser)
	}
	if want := string(wire.AppendMsgID(nil, wire.NewMsgID("system", "bob", "w1"))); toUser != want {
		t.Fatalf("msg_id %s, want %s (sender system, owner bob, id w1)", toUser, want)
	}

	recs := consume(t, e.brokers, 4)
	byKey := map[string][]wire.Record{}
	for _, kr := range recs {
		if want := e.ring.Partition(string(kr.Key)); kr.Partition != want {
			t.Fatalf("record keyed %s on partition %d, the ring says %d", kr.Key, kr.Partition, want)
		}
		var r wire.Record
		if err := wire.DecodeRecord(kr.Value, &r); err != nil {
			t.Fatal(err)
		}
		r.Body = slices.Clone(r.Body)
		r.Owners = slices.Clone(r.Owners)
		if r.SentAt < before || r.SentAt > time.Now().UnixMicro() {
			t.Fatalf("record %s sent_at %d not now", kr.Key, r.SentAt)
		}
		byKey[string(kr.Key)] = append(byKey[string(kr.Key)], r)
	}
	id := func(r wire.Record) string { return string(wire.AppendMsgID(nil, r.ID)) }

	u := byKey["bob"]
	if len(u) != 2 || u[0].Kind != wire.KindAppend || !slices.Equal(u[0].Owners, []string{"bob"}) || u[0].Conv != "system" ||
		u[0].Sender != "system" || u[0].ClientMsgID != "w1" || string(u[0].Body) != "welcome" || id(u[0]) != toUser || id(u[1]) != toUser {
		t.Fatalf("user records %+v", u)
	}
	g := byKey["g/team"]
	if len(g) != 1 || g[0].Kind != wire.KindGroupSend || g[0].Group != "team" || !g[0].Trusted || g[0].Sender != "ops-bot" ||
		g[0].ClientMsgID != "g1" || string(g[0].Body) != "all hands" || id(g[0]) != toGroup {
		t.Fatalf("group records %+v", g)
	}
	tp := byKey["t/news"]
	if len(tp) != 1 || tp[0].Kind != wire.KindTopic || tp[0].Topic != "news" || tp[0].Sender != "system" ||
		string(tp[0].Body) != "flash" || id(tp[0]) != toTopic {
		t.Fatalf("topic records %+v", tp)
	}
}
