package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/surgechat/surge/internal/store"
)

func TestAppendStringMatchesJSON(t *testing.T) {
	f := func(in string) {
		t.Helper()
		got := AppendString(nil, in)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q encoded as %s: not JSON: %v", in, got, err)
		}
		std, _ := json.Marshal(in) // the standard library's view of the same string
		var want string
		_ = json.Unmarshal(std, &want)
		if back != want {
			t.Fatalf("%q round-tripped to %q", in, back)
		}
	}
	f("")
	f("plain")
	f(`quote " backslash \ slash /`)
	f("controls \x00\x01\x1f\t\n\r")
	f("unicode ünïcödé 日本 🎉")
	f("separators \u2028 \u2029")
	f("invalid \xff\xfe utf8")
	f("<script>&amp;</script>")
}

func TestFramesAreJSON(t *testing.T) {
	id := NewMsgID("alice", "bob", "c1")
	m := store.Message{Owner: "bob", Seq: 7, ID: id, Sender: "alice", ClientMsgID: "c1", Conv: "alice",
		Body: []byte("hi \"there\"\n"), SentAt: 1700000000000000, StoredAt: 1700000000000100}
	f := func(frame []byte, want map[string]any) {
		t.Helper()
		var got map[string]any
		if err := json.Unmarshal(frame, &got); err != nil {
			t.Fatalf("%s: %v", frame, err)
		}
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("%s: %s = %v, want %v", frame, k, got[k], v)
			}
		}
	}
	hex := string(AppendMsgID(nil, id))
	f(AppendMsg(nil, &m), map[string]any{"type": "msg", "seq": 7.0, "msg_id": hex, "conv": "alice", "from": "alice",
		"id": "c1", "body": "hi \"there\"\n", "sent_at": 1700000000000000.0, "stored_at": 1700000000000100.0})
	f(AppendAck(nil, "c1", id), map[string]any{"type": "ack", "id": "c1", "msg_id": hex})
	f(AppendError(nil, "c1", CodeTooLarge, "big"), map[string]any{"type": "error", "id": "c1", "code": "too_large", "reason": "big"})
	f(AppendError(nil, "", CodeBadFrame, "x"), map[string]any{"type": "error", "code": "bad_frame"})
	f(AppendHello(nil, "alice", 255, 30), map[string]any{"type": "hello", "user": "alice", "session": "ff", "heartbeat": 30.0})
	f(AppendSynced(nil, "s", 3, 9, true), map[string]any{"type": "synced", "id": "s", "after": 3.0, "last": 9.0, "more": true})
	f(AppendPong(nil, "p1", 5), map[string]any{"type": "pong", "id": "p1", "ts": 5.0})
}

func TestDecodeRequest(t *testing.T) {
	var r Request
	if err := DecodeRequest([]byte(`{"type":"send","id":"a","to":"b","body":"c"}`), &r); err != nil || r.To != "b" {
		t.Fatalf("send: %v %+v", err, r)
	}
	for _, bad := range []string{``, `null`, `[]`, `{}`, `{"type":""}`, `{"type":1}`, `not json`} {
		if err := DecodeRequest([]byte(bad), &r); !errors.Is(err, ErrBadFrame) {
			t.Fatalf("%q: %v, want ErrBadFrame", bad, err)
		}
	}
}

func TestMsgID(t *testing.T) {
	a := NewMsgID("alice", "bob", "1")
	if a != NewMsgID("alice", "bob", "1") {
		t.Fatal("not deterministic")
	}
	for _, other := range []store.MsgID{NewMsgID("alice", "bob", "2"), NewMsgID("alice", "carol", "1"),
		NewMsgID("bob", "alice", "1"), NewMsgID("alic", "ebob", "1")} {
		if other == a {
			t.Fatal("distinct inputs share an id")
		}
	}
	back, ok := ParseMsgID(string(AppendMsgID(nil, a)))
	if !ok || back != a {
		t.Fatal("hex round trip failed")
	}
	if _, ok := ParseMsgID("zz"); ok {
		t.Fatal("parsed a bad id")
	}
}

func TestValidID(t *testing.T) {
	f := func(s string, want bool) {
		t.Helper()
		if ValidID(s) != want {
			t.Fatalf("ValidID(%q) = %v", s, !want)
		}
	}
	f("alice", true)
	f("a.b-c_d@e", true)
	f(strings.Repeat("x", 64), true)
	f(strings.Repeat("x", 65), false)
	f("", false)
	f("g/group", false)
	f("has space", false)
	f("ünï", false)
}

func TestRecordRoundTrip(t *testing.T) {
	f := func(r Record) {
		t.Helper()
		enc := AppendRecord(nil, &r)
		var got Record
		if err := DecodeRecord(enc, &got); err != nil {
			t.Fatalf("%+v: %v", r, err)
		}
		if got.Kind != r.Kind || got.ID != r.ID || got.Sender != r.Sender || got.ClientMsgID != r.ClientMsgID ||
			got.To != r.To || got.Conv != r.Conv || !bytes.Equal(got.Body, r.Body) || got.SentAt != r.SentAt ||
			got.User != r.User || got.Edge != r.Edge || got.Session != r.Session || got.TTLMillis != r.TTLMillis ||
			strings.Join(got.Owners, ",") != strings.Join(r.Owners, ",") || got.Group != r.Group ||
			got.Version != r.Version || got.Online != r.Online || got.Code != r.Code || got.Reason != r.Reason ||
			got.Topic != r.Topic || got.Trusted != r.Trusted {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, r)
		}
		for i := range enc {
			if err := DecodeRecord(enc[:i], &got); err == nil {
				t.Fatalf("%s truncated to %d bytes decoded", r.Kind, i)
			}
		}
	}
	id := NewMsgID("a", "b", "c")
	f(Record{Kind: KindSend, ID: id, Sender: "a", ClientMsgID: "c", To: "b", Body: []byte("hello"), SentAt: 42})
	f(Record{Kind: KindAppend, ID: id, Sender: "a", ClientMsgID: "c", Owners: []string{"a", "x"}, Conv: "b", Body: []byte{}, SentAt: -1})
	f(Record{Kind: KindConnect, User: "u", Edge: "edge-1", Session: 1 << 60})
	f(Record{Kind: KindDisconnect, User: "u", Edge: "edge-1", Session: 3})
	f(Record{Kind: KindLease, Edge: "edge-1", TTLMillis: 60000})
	f(Record{Kind: KindGroupSend, ID: id, Sender: "a", ClientMsgID: "c", Group: "team", Body: []byte("hi"), SentAt: 7})
	f(Record{Kind: KindGroupChange, Group: "team", Version: 12})
	f(Record{Kind: KindGroupSend, ID: id, Sender: "ops", ClientMsgID: "c", Group: "team", Body: []byte("hi"), Trusted: true})
	f(Record{Kind: KindTopic, Topic: "news", ID: id, Sender: "system", Body: []byte("flash"), SentAt: 9})
	f(Record{Kind: KindPresence, User: "a", Owners: []string{"b", "c"}, Online: true})
	f(Record{Kind: KindReject, User: "a", ClientMsgID: "c", To: "g/team", ID: id, Code: "not_member", Reason: "not a member"})
}

func FuzzDecodeRecord(f *testing.F) {
	id := NewMsgID("a", "b", "c")
	for _, r := range []Record{
		{Kind: KindSend, ID: id, Sender: "a", ClientMsgID: "c", To: "b", Body: []byte("hello"), SentAt: 42},
		{Kind: KindAppend, ID: id, Owners: []string{"a", "b"}, Conv: "b"},
		{Kind: KindConnect, User: "u", Edge: "e", Session: 9},
		{Kind: KindLease, Edge: "e", TTLMillis: 1},
	} {
		f.Add(AppendRecord(nil, &r))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Record
		if err := DecodeRecord(data, &r); err != nil {
			return
		}
		// Whatever decodes must encode back to a record that decodes the same.
		again := AppendRecord(nil, &r)
		var r2 Record
		if err := DecodeRecord(again, &r2); err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if !bytes.Equal(AppendRecord(nil, &r2), again) {
			t.Fatal("encoding is not stable")
		}
	})
}
