package wire

import (
	"testing"

	"github.com/surgechat/surge/internal/store"
)

func BenchmarkAppendMsg(b *testing.B) {
	m := store.Message{Owner: "bob", Seq: 123456, ID: NewMsgID("alice", "bob", "c1"), Sender: "alice",
		ClientMsgID: "client-message-0001", Conv: "alice", Body: make([]byte, 100), SentAt: 1700000000000000, StoredAt: 1700000000000100}
	for i := range m.Body {
		m.Body[i] = 'a' + byte(i%26)
	}
	buf := AppendMsg(nil, &m)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendMsg(buf[:0], &m)
	}
}

func BenchmarkRecordRoundTrip(b *testing.B) {
	r := Record{Kind: KindSend, ID: NewMsgID("alice", "bob", "c1"), Sender: "alice", ClientMsgID: "c1", To: "bob",
		Body: make([]byte, 100), SentAt: 1700000000000000}
	buf := AppendRecord(nil, &r)
	var got Record
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendRecord(buf[:0], &r)
		if err := DecodeRecord(buf, &got); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewMsgID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = NewMsgID("alice", "g/0123456789abcdef", "client-message-0001")
	}
}
