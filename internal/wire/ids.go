package wire

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/surgechat/surge/internal/store"
)

// MaxIDLen bounds user ids and client message ids.
const MaxIDLen = 64

// ValidID reports whether s may be used as a user id or a client message id:
// 1 to 64 bytes of ASCII letters, digits and "_.-@".
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > MaxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '_' || c == '.' || c == '-' || c == '@':
		default:
			return false
		}
	}
	return true
}

// NewMsgID derives the id of a message from who sent it, where to, and the
// sender's client message id. A retried send therefore carries the same id
// and is stored once.
func NewMsgID(sender, to, clientMsgID string) store.MsgID {
	// Valid ids fit this stack buffer, so a send hashes without allocating.
	var buf [3*MaxIDLen + 2 + 2]byte // to may be "g/" + a group id
	b := append(buf[:0], sender...)
	b = append(b, 0)
	b = append(b, to...)
	b = append(b, 0)
	b = append(b, clientMsgID...)
	sum := sha256.Sum256(b)
	return store.MsgID(sum[:store.MsgIDLen])
}

// AppendMsgID appends the 32-character hex form of id to dst.
func AppendMsgID(dst []byte, id store.MsgID) []byte {
	var buf [2 * store.MsgIDLen]byte
	hex.Encode(buf[:], id[:])
	return append(dst, buf[:]...)
}

// ParseMsgID parses the hex form of a message id.
func ParseMsgID(s string) (store.MsgID, bool) {
	var id store.MsgID
	if len(s) != 2*store.MsgIDLen {
		return id, false
	}
	_, err := hex.Decode(id[:], []byte(s))
	return id, err == nil
}
