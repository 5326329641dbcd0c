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
	// KindGroupSend is a group message as accepted by an edge, keyed by
	// the group ("g/<id>"): the shard checks that Sender is a member,
	// appends it to the group's timeline and fans it out to the members'
	// partitions as KindAppend records.
	KindGroupSend Kind = 6
	// KindGroupChange says that Group's membership changed to Version:
	// the group's shard drops what it cached.
	KindGroupChange Kind = 7
	// KindPresence tells Owners, all on the record's partition, that User
	// came online (Online) or went offline. It is pushed, never stored.
	KindPresence Kind = 8
	// KindReject tells User that the message ID (ClientMsgID, to To) was
	// accepted by an edge but refused by its shard, with Code and Reason.
	// It is pushed, never stored.
	KindReject Kind = 9
	// KindTopic is a live push to every session subscribed to Topic,
	// carried to all edges by the shard that consumes it. Never stored.
	KindTopic Kind = 10
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
	case KindGroupSend:
		return "group_send"
	case KindGroupChange:
		return "group_change"
	case KindPresence:
		return "presence"
	case KindReject:
		return "reject"
	case KindTopic:
		return "topic"
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
	Group       string      // group_send, group_change: the group's id (without "g/")
	Version     int64       // group_change
	Online      bool        // presence
	Code        string      // reject: an error code of the client protocol
	Reason      string      // reject
	Topic       string      // topic
	Trusted     bool        // group_send: published by an operator or a service; no membership check
}

// ErrBadRecord is wrapped by DecodeRecord errors.
var ErrBadRecord = errors.New("wire: malformed record")

// AppendRecord appends the binary encoding of r to dst.
func AppendRecord(dst []byte, r *Record) []byte {
	dst = append(dst, recordVersion, byte(r.Kind))
	switch r.Kind {
	case KindSend, KindAppend, KindGroupSend:
		dst = append(dst, r.ID[:]...)
		dst = appendStr(dst, r.Sender)
		dst = appendStr(dst, r.ClientMsgID)
		dst = appendStr(dst, r.To)
		dst = appendOwners(dst, r.Owners)
		dst = appendStr(dst, r.Conv)
		dst = binary.AppendUvarint(dst, uint64(len(r.Body)))
		dst = append(dst, r.Body...)
		dst = binary.AppendVarint(dst, r.SentAt)
		dst = appendStr(dst, r.Group)
		dst = append(dst, boolByte(r.Trusted))
	case KindTopic:
		dst = appendStr(dst, r.Topic)
		dst = append(dst, r.ID[:]...)
		dst = appendStr(dst, r.Sender)
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
	case KindGroupChange:
		dst = appendStr(dst, r.Group)
		dst = binary.AppendVarint(dst, r.Version)
	case KindPresence:
		dst = appendStr(dst, r.User)
		dst = appendOwners(dst, r.Owners)
		dst = append(dst, boolByte(r.Online))
	case KindReject:
		dst = appendStr(dst, r.User)
		dst = appendStr(dst, r.ClientMsgID)
		dst = appendStr(dst, r.To)
		dst = append(dst, r.ID[:]...)
		dst = appendStr(dst, r.Code)
		dst = appendStr(dst, r.Reason)
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
	case KindSend, KindAppend, KindGroupSend:
		copy(r.ID[:], d.bytes(store.MsgIDLen))
		r.Sender = d.str()
		r.ClientMsgID = d.str()
		r.To = d.str()
		r.Owners = d.owners(owners)
		r.Conv = d.str()
		r.Body = d.bytes(int(d.uvarint()))
		r.SentAt = d.varint()
		r.Group = d.str()
		r.Trusted = d.byte() == 1
	case KindTopic:
		r.Topic = d.str()
		copy(r.ID[:], d.bytes(store.MsgIDLen))
		r.Sender = d.str()
		r.Body = d.bytes(int(d.uvarint()))
		r.SentAt = d.varint()
	case KindConnect, KindDisconnect:
		r.User = d.str()
		r.Edge = d.str()
		r.Session = d.uvarint()
	case KindLease:
		r.Edge = d.str()
		r.TTLMillis = d.varint()
	case KindGroupChange:
		r.Group = d.str()
		r.Version = d.varint()
	case KindPresence:
		r.User = d.str()
		r.Owners = d.owners(owners)
		r.Online = d.byte() == 1
	case KindReject:
		r.User = d.str()
		r.ClientMsgID = d.str()
		r.To = d.str()
		copy(r.ID[:], d.bytes(store.MsgIDLen))
		r.Code = d.str()
		r.Reason = d.str()
	default:
		return fmt.Errorf("%w: kind %d", ErrBadRecord, r.Kind)
	}
	if d.err != nil {
		return fmt.Errorf("%w: %s truncated", ErrBadRecord, r.Kind)
	}
	return nil
}

func appendOwners(dst []byte, owners []string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(owners)))
	for _, o := range owners {
		dst = appendStr(dst, o)
	}
	return dst
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

func (d *decoder) owners(dst []string) []string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		dst = append(dst, d.str())
	}
	return dst
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
