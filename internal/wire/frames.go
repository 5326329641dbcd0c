package wire

import (
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"

	"github.com/surgechat/surge/internal/store"
)

// Frame types a client sends.
const (
	TypeSend        = "send"        // send a direct message
	TypeSync        = "sync"        // ask for inbox entries after a sequence
	TypePing        = "ping"        // application-level heartbeat
	TypePresence    = "presence"    // ask which users are online (also a server frame)
	TypeSubscribe   = "subscribe"   // receive a topic's pushes on this connection
	TypeUnsubscribe = "unsubscribe" // stop them
)

// Frame types the server sends.
const (
	TypeHello  = "hello"  // first frame on every connection
	TypeAck    = "ack"    // a send is durable
	TypeError  = "error"  // a request failed
	TypeMsg    = "msg"    // one inbox entry, pushed or synced
	TypeSynced = "synced" // end of a sync reply
	TypePong   = "pong"   // reply to ping
	TypeTopic  = "topic"  // a live push to a subscribed topic, never stored

	TypeSubscribed   = "subscribed"   // reply to subscribe
	TypeUnsubscribed = "unsubscribed" // reply to unsubscribe
)

// Error codes, stable and documented in docs/PROTOCOL.md.
const (
	CodeBadFrame     = "bad_frame"     // not a JSON object, or an unknown type
	CodeBadRequest   = "bad_request"   // a field is missing or malformed
	CodeBadRecipient = "bad_recipient" // "to" is not a valid user id
	CodeTooLarge     = "too_large"     // body exceeds the limit
	CodeRateLimited  = "rate_limited"  // the connection sends faster than allowed
	CodeUnavailable  = "unavailable"   // the message could not be made durable; retry with the same id
	CodeInternal     = "internal"      // a server fault
	CodeNotMember    = "not_member"    // group send by a non-member (or the group is gone)
	CodeBlocked      = "blocked"       // direct message between users who blocked one another
	CodeNotFriends   = "not_friends"   // direct message outside friends, where only friends may write
)

// Request is a frame sent by a client. Unused fields stay zero.
type Request struct {
	Type  string   `json:"type"`
	ID    string   `json:"id,omitempty"`    // send: client message id; sync, ping: echoed back
	To    string   `json:"to,omitempty"`    // send: recipient user id
	Group string   `json:"group,omitempty"` // send: recipient group id, instead of to
	Body  string   `json:"body,omitempty"`  // send: message text
	After uint64   `json:"after,omitempty"` // sync: last sequence the client has
	Limit int      `json:"limit,omitempty"` // sync: at most this many entries (default and cap set by the server)
	Users []string `json:"users,omitempty"` // presence: who to ask about
	Topic string   `json:"topic,omitempty"` // subscribe, unsubscribe
}

// ErrBadFrame is returned by DecodeRequest for input that is not a request.
var ErrBadFrame = errors.New("wire: not a request frame")

// DecodeRequest parses a client frame into r, which it resets first.
func DecodeRequest(data []byte, r *Request) error {
	*r = Request{}
	if err := json.Unmarshal(data, r); err != nil || r.Type == "" {
		return ErrBadFrame
	}
	return nil
}

// AppendHello appends the hello frame.
func AppendHello(dst []byte, user string, session uint64, heartbeatSec int) []byte {
	dst = append(dst, `{"type":"hello","user":`...)
	dst = AppendString(dst, user)
	dst = append(dst, `,"session":"`...)
	dst = strconv.AppendUint(dst, session, 16)
	dst = append(dst, `","heartbeat":`...)
	dst = strconv.AppendInt(dst, int64(heartbeatSec), 10)
	return append(dst, '}')
}

// AppendAck appends the ack of a send.
func AppendAck(dst []byte, clientMsgID string, id store.MsgID) []byte {
	dst = append(dst, `{"type":"ack","id":`...)
	dst = AppendString(dst, clientMsgID)
	dst = append(dst, `,"msg_id":"`...)
	dst = AppendMsgID(dst, id)
	return append(dst, `"}`...)
}

// AppendError appends an error frame. id is the request's id, or empty.
func AppendError(dst []byte, id, code, reason string) []byte {
	dst = append(dst, `{"type":"error"`...)
	if id != "" {
		dst = append(dst, `,"id":`...)
		dst = AppendString(dst, id)
	}
	dst = append(dst, `,"code":`...)
	dst = AppendString(dst, code)
	dst = append(dst, `,"reason":`...)
	dst = AppendString(dst, reason)
	return append(dst, '}')
}

// AppendMsg appends an inbox entry.
func AppendMsg(dst []byte, m *store.Message) []byte {
	dst = append(dst, `{"type":"msg","seq":`...)
	dst = strconv.AppendUint(dst, m.Seq, 10)
	dst = append(dst, `,"msg_id":"`...)
	dst = AppendMsgID(dst, m.ID)
	dst = append(dst, `","conv":`...)
	dst = AppendString(dst, m.Conv)
	dst = append(dst, `,"from":`...)
	dst = AppendString(dst, m.Sender)
	dst = append(dst, `,"id":`...)
	dst = AppendString(dst, m.ClientMsgID)
	dst = append(dst, `,"body":`...)
	dst = appendStringBytes(dst, m.Body)
	dst = append(dst, `,"sent_at":`...)
	dst = strconv.AppendInt(dst, m.SentAt, 10)
	dst = append(dst, `,"stored_at":`...)
	dst = strconv.AppendInt(dst, m.StoredAt, 10)
	return append(dst, '}')
}

// AppendSynced appends the end of a sync reply: the entries after "after"
// up to "last" were sent; more is true when the client should sync again
// from last.
func AppendSynced(dst []byte, id string, after, last uint64, more bool) []byte {
	dst = append(dst, `{"type":"synced"`...)
	if id != "" {
		dst = append(dst, `,"id":`...)
		dst = AppendString(dst, id)
	}
	dst = append(dst, `,"after":`...)
	dst = strconv.AppendUint(dst, after, 10)
	dst = append(dst, `,"last":`...)
	dst = strconv.AppendUint(dst, last, 10)
	dst = append(dst, `,"more":`...)
	dst = strconv.AppendBool(dst, more)
	return append(dst, '}')
}

// AppendPresence appends a friend's presence change.
func AppendPresence(dst []byte, user string, online bool) []byte {
	dst = append(dst, `{"type":"presence","user":`...)
	dst = AppendString(dst, user)
	dst = append(dst, `,"online":`...)
	dst = strconv.AppendBool(dst, online)
	return append(dst, '}')
}

// AppendPresenceReply appends the answer to a presence query: which of
// the asked users are online.
func AppendPresenceReply(dst []byte, id string, users []string, online []bool) []byte {
	dst = append(dst, `{"type":"presence"`...)
	if id != "" {
		dst = append(dst, `,"id":`...)
		dst = AppendString(dst, id)
	}
	dst = append(dst, `,"online":{`...)
	for i, u := range users {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendString(dst, u)
		dst = append(dst, ':')
		dst = strconv.AppendBool(dst, online[i])
	}
	return append(dst, "}}"...)
}

// AppendSubscribed appends the reply to subscribe or unsubscribe (typ).
func AppendSubscribed(dst []byte, typ, id, topic string) []byte {
	dst = append(dst, `{"type":`...)
	dst = AppendString(dst, typ)
	if id != "" {
		dst = append(dst, `,"id":`...)
		dst = AppendString(dst, id)
	}
	dst = append(dst, `,"topic":`...)
	dst = AppendString(dst, topic)
	return append(dst, '}')
}

// AppendTopic appends a topic push.
func AppendTopic(dst []byte, topic, from string, id store.MsgID, body []byte, sentAt int64) []byte {
	dst = append(dst, `{"type":"topic","topic":`...)
	dst = AppendString(dst, topic)
	dst = append(dst, `,"from":`...)
	dst = AppendString(dst, from)
	dst = append(dst, `,"msg_id":"`...)
	dst = AppendMsgID(dst, id)
	dst = append(dst, `","body":`...)
	dst = appendStringBytes(dst, body)
	dst = append(dst, `,"sent_at":`...)
	dst = strconv.AppendInt(dst, sentAt, 10)
	return append(dst, '}')
}

// AppendPong appends the reply to an application ping.
func AppendPong(dst []byte, id string, nowMicros int64) []byte {
	dst = append(dst, `{"type":"pong"`...)
	if id != "" {
		dst = append(dst, `,"id":`...)
		dst = AppendString(dst, id)
	}
	dst = append(dst, `,"ts":`...)
	dst = strconv.AppendInt(dst, nowMicros, 10)
	return append(dst, '}')
}

// AppendString appends s as a JSON string.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = appendEscape(dst, c)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\u202`...)
			dst = append(dst, hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func appendStringBytes(dst, b []byte) []byte {
	// The conversion does not allocate: AppendString does not retain s.
	return AppendString(dst, unsafeString(b))
}

const hexDigits = "0123456789abcdef"

func appendEscape(dst []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(dst, '\\', c)
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	return append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
}
