package store_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/surgechat/surge/internal/store"
	"github.com/surgechat/surge/internal/store/storetest"
)

// BenchmarkAppend appends batches of new 100-byte messages spread over 16
// owners of one partition, one Append per iteration. msgs/s counts stored
// messages; B/s counts body bytes.
func BenchmarkAppend(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchAppend(b, storetest.SQLite()) })
	b.Run("mysql", func(b *testing.B) { benchAppend(b, storetest.MySQL(b)) })
}

func benchAppend(b *testing.B, h storetest.Harness) {
	const owners, bodyLen = 16, 100
	for _, size := range []int{1, 64, 512} {
		b.Run(fmt.Sprint("batch=", size), func(b *testing.B) {
			s := h.Open(b, h.NewDSNs(b, 1)...)
			ctx := context.Background()
			body := bytes.Repeat([]byte("b"), bodyLen)
			msgs := make([]store.Message, size)
			for i := range msgs {
				msgs[i] = store.Message{
					Owner:       fmt.Sprintf("user-%02d", i%owners),
					Sender:      "sender-0001",
					ClientMsgID: "client-msg-0001",
					Conv:        "sender-0001",
					Body:        body,
					SentAt:      1_700_000_000_000_000,
				}
			}
			var next, stored uint64
			b.SetBytes(int64(size * bodyLen))
			b.ReportAllocs()
			for b.Loop() {
				for i := range msgs {
					next++
					binary.BigEndian.PutUint64(msgs[i].ID[:], next)
				}
				out, err := s.Append(ctx, 0, msgs)
				if err != nil {
					b.Fatal(err)
				}
				stored += uint64(len(out))
			}
			if stored != next {
				b.Fatalf("stored %d of %d messages", stored, next)
			}
			b.ReportMetric(float64(stored)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
