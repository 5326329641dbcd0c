package ws

import (
	"encoding/binary"
	"strconv"
	"unicode/utf8"
)

// Opcode is a frame's opcode (RFC 6455 5.2).
type Opcode uint8

const (
	OpContinuation Opcode = 0x0
	OpText         Opcode = 0x1
	OpBinary       Opcode = 0x2
	OpClose        Opcode = 0x8
	OpPing         Opcode = 0x9
	OpPong         Opcode = 0xA
)

// IsControl reports whether op is a control opcode (close, ping, pong).
func (op Opcode) IsControl() bool { return op&0x8 != 0 }

func (op Opcode) String() string {
	switch op {
	case OpContinuation:
		return "continuation"
	case OpText:
		return "text"
	case OpBinary:
		return "binary"
	case OpClose:
		return "close"
	case OpPing:
		return "ping"
	case OpPong:
		return "pong"
	}
	return "opcode(" + strconv.Itoa(int(op)) + ")"
}

// Close codes (RFC 6455 7.4.1).
const (
	CloseNormal          uint16 = 1000
	CloseGoingAway       uint16 = 1001
	CloseProtocolError   uint16 = 1002
	CloseUnsupportedData uint16 = 1003
	// CloseNoStatus stands for a close frame without a code. It never
	// appears on the wire: AppendClose writes it as an empty payload.
	CloseNoStatus        uint16 = 1005
	CloseInvalidPayload  uint16 = 1007
	ClosePolicyViolation uint16 = 1008
	CloseMessageTooBig   uint16 = 1009
	CloseInternalError   uint16 = 1011
)

const (
	// MaxControlPayload is the largest payload of a close, ping or pong.
	MaxControlPayload = 125
	// MaxCloseReason is the longest reason a close frame can carry.
	MaxCloseReason = MaxControlPayload - 2
	// MaxServerHeader is the longest header AppendFrameHeader writes.
	MaxServerHeader = 10
)

// AppendFrame appends a server frame, FIN set and unmasked, to dst. A
// control frame's payload must be at most MaxControlPayload bytes.
func AppendFrame(dst []byte, op Opcode, payload []byte) []byte {
	dst = AppendFrameHeader(dst, op, len(payload))
	return append(dst, payload...)
}

// AppendFrameHeader appends the header of a server frame carrying length
// payload bytes, FIN set and unmasked, for callers that append the payload
// themselves. It panics if length is negative.
func AppendFrameHeader(dst []byte, op Opcode, length int) []byte {
	b0 := 0x80 | byte(op)
	switch {
	case length < 0:
		panic("ws: negative frame length")
	case length <= 125:
		return append(dst, b0, byte(length))
	case length <= 0xffff:
		return append(dst, b0, 126, byte(length>>8), byte(length))
	}
	dst = append(dst, b0, 127)
	return binary.BigEndian.AppendUint64(dst, uint64(length))
}

// AppendClose appends a close frame with code and reason to dst. Code 0 or
// CloseNoStatus writes a close frame without a payload. A reason longer than
// MaxCloseReason is cut at a UTF-8 boundary so the frame stays valid.
func AppendClose(dst []byte, code uint16, reason string) []byte {
	if code == 0 || code == CloseNoStatus {
		return AppendFrameHeader(dst, OpClose, 0)
	}
	if len(reason) > MaxCloseReason {
		cut := MaxCloseReason
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut]
	}
	dst = AppendFrameHeader(dst, OpClose, 2+len(reason))
	dst = binary.BigEndian.AppendUint16(dst, code)
	return append(dst, reason...)
}

// ParseClose splits the payload of a close message that Reader returned into
// its code and reason. An empty payload gives CloseNoStatus.
func ParseClose(payload []byte) (code uint16, reason []byte) {
	if len(payload) < 2 {
		return CloseNoStatus, nil
	}
	return binary.BigEndian.Uint16(payload), payload[2:]
}

// checkClosePayload enforces RFC 6455 5.5.1 and 7.4 on a received close
// payload: empty, or a code a peer may send followed by UTF-8.
func checkClosePayload(p []byte) error {
	switch {
	case len(p) == 0:
		return nil
	case len(p) == 1:
		return errCloseLength
	case !validCloseCode(binary.BigEndian.Uint16(p)):
		return errCloseCode
	case !utf8.Valid(p[2:]):
		return errCloseReasonUTF8
	}
	return nil
}

// validCloseCode reports whether a peer may send code: the defined codes
// other than those reserved for local use, and the registered and private
// ranges 3000-4999.
func validCloseCode(code uint16) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1011:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// maskBytes XORs b with key, the first byte of b at key[0] (RFC 6455 5.3).
func maskBytes(key [4]byte, b []byte) {
	k32 := uint64(binary.LittleEndian.Uint32(key[:]))
	k64 := k32 | k32<<32
	i := 0
	for ; i+32 <= len(b); i += 32 {
		s := b[i : i+32 : i+32]
		binary.LittleEndian.PutUint64(s[0:], binary.LittleEndian.Uint64(s[0:])^k64)
		binary.LittleEndian.PutUint64(s[8:], binary.LittleEndian.Uint64(s[8:])^k64)
		binary.LittleEndian.PutUint64(s[16:], binary.LittleEndian.Uint64(s[16:])^k64)
		binary.LittleEndian.PutUint64(s[24:], binary.LittleEndian.Uint64(s[24:])^k64)
	}
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], binary.LittleEndian.Uint64(b[i:])^k64)
	}
	for ; i < len(b); i++ {
		b[i] ^= key[i&3]
	}
}
