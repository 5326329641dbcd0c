package wire

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/surgechat/surge/internal/store"
)

// Kind says what a Kafka record asks its shard to do.
type Kind uint8

// Record kinds.
const (
	// KindSend is a direct message as accepted by an edge, keyed by the
	// recipient: the shard appends it to To's inbox, then produces a
	// KindAppend to the sender's partition for the sender's own inbox.
	KindSend Kind = 1
	// KindAppend appends one message to the inboxes of Owners, who all
	// live on the record's partition.
	KindAppend Kind = 2
	// KindConnect registers session Session of User on edge Edge.
	KindConnect Kind = 3
	// KindDisconnect removes it.
	KindDisconnect Kind = 4
	// KindLease renews every session that edge Edge holds on the record's
	// partition for TTL milliseconds.
	KindLease Kind = 5
)

func (k Kind) String() string {
	switch k {
	case KindSend:
		return "send"
	case KindAppend:
		return "append"
	case KindConnect:
		return "connect"
	case KindDisconnect:
		return "disconnect"
	case KindLease:
		return "lease"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

const recordVersion = 1

// Record is the value of a Kafka record. Which fields are used depends on
// Kind; the rest stay zero.
type Record struct {
	Kind        Kind
	ID          store.MsgID // send, append
	Sender      string      // send, append
	ClientMsgID string      // send, append
	To          string      // send: recipient
	Owners      []string    // append: inbox owners
	Conv        string      // append: conversation as the owners see it
	Body        []byte      // send, append
	SentAt      int64       // send, append: unix microseconds
	User        string      // connect, disconnect
	Edge        string      // connect, disconnect, lease
	Session     uint64      // connect, disconnect
	TTLMillis   int64       // lease
}

// ErrBadRecord is wrapped by DecodeRecord errors.
var ErrBadRecord = errors.New("wire: malformed record")

// AppendRecord appends the binary encoding of r to dst.
func AppendRecord(dst []byte, r *Record) []byte {
	dst = append(dst, recordVersion, byte(r.Kind))
	switch r.Kind {
	case KindSend, KindAppend:
		dst = append(dst, r.ID[:]...)
		dst = appendStr(dst, r.Sender)
		dst = appendStr(dst, r.ClientMsgID)
		dst = appendStr(dst, r.To)
		dst = binary.AppendUvarint(dst, uint64(len(r.Owners)))
		for _, o := range r.Owners {
			dst = appendStr(dst, o)
		}
		dst = appendStr(dst, r.Conv)
		dst = binary.AppendUvarint(dst, uint64(len(r.Body)))
		dst = append(dst, r.Body...)
		dst = binary.AppendVarint(dst, r.SentAt)
	case KindConnect, KindDisconnect:
		dst = appendStr(dst, r.User)
		dst = appendStr(dst, r.Edge)
		dst = binary.AppendUvarint(dst, r.Session)
	case KindLease:
		dst = appendStr(dst, r.Edge)
		dst = binary.AppendVarint(dst, r.TTLMillis)
	}
	return dst
}

// DecodeRecord decodes data into r, reusing r.Owners. r.Body aliases data.
func DecodeRecord(data []byte, r *Record) error {
	owners := r.Owners[:0]
	*r = Record{}
	d := decoder{b: data}
	if v := d.byte(); v != recordVersion {
		return fmt.Errorf("%w: version %d", ErrBadRecord, v)
	}
	r.Kind = Kind(d.byte())
	switch r.Kind {
	case KindSend, KindAppend:
		copy(r.ID[:], d.bytes(store.MsgIDLen))
		r.Sender = d.str()
		r.ClientMsgID = d.str()
		r.To = d.str()
		n := d.uvarint()
		if n > uint64(len(d.b)) {
			d.fail()
		}
		for i := uint64(0); i < n && d.err == nil; i++ {
			owners = append(owners, d.str())
		}
		r.Owners = owners
		r.Conv = d.str()
		r.Body = d.bytes(int(d.uvarint()))
		r.SentAt = d.varint()
	case KindConnect, KindDisconnect:
		r.User = d.str()
		r.Edge = d.str()
		r.Session = d.uvarint()
	case KindLease:
		r.Edge = d.str()
		r.TTLMillis = d.varint()
	default:
		return fmt.Errorf("%w: kind %d", ErrBadRecord, r.Kind)
	}
	if d.err != nil {
		return fmt.Errorf("%w: %s truncated", ErrBadRecord, r.Kind)
	}
	return nil
}

func appendStr(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = ErrBadRecord
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bytes(n int) []byte {
	if n < 0 || n > len(d.b) {
		d.fail()
		return nil
	}
	b := d.b[:n]
	d.b = d.b[n:]
	return b
}

func (d *decoder) str() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	return string(d.bytes(int(n)))
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}
