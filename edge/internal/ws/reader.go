package ws

import (
	"encoding/binary"
	"unicode/utf8"
)

// DefaultMaxMessage is the message size limit of a Reader whose MaxMessage
// is 0.
const DefaultMaxMessage = 64 << 10

// maxRetainedFragments bounds the assembly buffer a Reader keeps between
// fragmented messages, so one large message does not pin memory for the
// life of the connection.
const maxRetainedFragments = 4 << 10

// Message is a data message or a control frame read by Reader.Next.
type Message struct {
	// Op is OpText, OpBinary, OpClose, OpPing or OpPong, or 0 when Next
	// needs more input.
	Op Opcode
	// Payload is unmasked. See Reader.Next for how long it stays valid.
	Payload []byte
}

// Reader decodes the frames a client sends on one connection. It never
// blocks: Next consumes what is complete and leaves the rest. The zero value
// is ready to use; it is not safe for concurrent use.
type Reader struct {
	// MaxMessage is the largest data message in bytes, fragments assembled.
	// 0 means DefaultMaxMessage. A frame that would exceed it fails from its
	// header, before its payload is buffered.
	MaxMessage int

	fragOp Opcode // opcode of the fragmented message being assembled, or 0
	frag   []byte // its payload so far; reused across messages
	text   utf8Stream
	closed bool  // a close frame was returned
	err    error // the failure that ended the connection
}

// Next decodes complete frames from the start of buf and returns n, the
// bytes consumed, which the caller discards before the next call. It stops
// at the first complete data message or control frame and returns it as m;
// m.Op == 0 means more input is needed (n may still be positive, for example
// after a non-final fragment). The caller calls Next until n == 0.
//
// Next unmasks consumed frames in place. The Payload of a control frame or
// an unfragmented message aliases buf and is valid until the caller discards
// those bytes; an assembled fragmented message lives in the Reader and is
// valid until the next call.
//
// A violation returns a *CloseError whose Code and Reason the edge sends in
// a close frame before closing; the Reader then returns that error on every
// call. After a close frame Next consumes nothing more: a peer may send
// nothing after it.
func (r *Reader) Next(buf []byte) (m Message, n int, err error) {
	if r.err != nil || r.closed {
		return Message{}, 0, r.err
	}
	if r.fragOp == 0 && cap(r.frag) > maxRetainedFragments {
		r.frag = nil
	}
	for {
		h, err := r.header(buf[n:])
		if err != nil {
			r.err = err
			return Message{}, n, err
		}
		if h.end == 0 || h.end > len(buf)-n {
			return Message{}, n, nil
		}
		payload := buf[n+h.hlen : n+h.end]
		maskBytes(h.key, payload)
		n += h.end
		m, err := r.frame(h, payload)
		if err != nil {
			r.err = err
			return Message{}, n, err
		}
		if m.Op != 0 {
			return m, n, nil
		}
	}
}

// Reset readies r for a new connection, keeping MaxMessage and a small
// assembly buffer.
func (r *Reader) Reset() {
	frag := r.frag[:0]
	if cap(frag) > maxRetainedFragments {
		frag = nil
	}
	*r = Reader{MaxMessage: r.MaxMessage, frag: frag}
}

// frameHeader is a parsed client frame header.
type frameHeader struct {
	op   Opcode
	fin  bool
	key  [4]byte
	hlen int // header length, masking key included
	end  int // header and payload length; 0 while the header is incomplete
}

// header parses the frame header at the start of b and checks every rule
// that needs no payload, each as soon as the bytes it needs are in b: a
// frame fails before its payload arrives.
func (r *Reader) header(b []byte) (frameHeader, error) {
	var h frameHeader
	if len(b) < 2 {
		return h, nil
	}
	b0, b1 := b[0], b[1]
	if b0&0x70 != 0 {
		return h, errReservedBits
	}
	h.fin = b0&0x80 != 0
	h.op = Opcode(b0 & 0x0F)
	switch h.op {
	case OpText, OpBinary:
		if r.fragOp != 0 {
			return h, errUnfinished
		}
	case OpContinuation:
		if r.fragOp == 0 {
			return h, errStrayContinue
		}
	case OpClose, OpPing, OpPong:
		if !h.fin {
			return h, errControlFragment
		}
		if b1&0x7F > MaxControlPayload {
			return h, errControlTooLong
		}
	default:
		return h, errOpcode
	}
	if b1&0x80 == 0 {
		return h, errUnmasked
	}

	hlen, length := 2, uint64(b1&0x7F)
	switch length {
	case 126:
		hlen = 4
		if len(b) < hlen {
			return frameHeader{}, nil
		}
		length = uint64(binary.BigEndian.Uint16(b[2:]))
	case 127:
		hlen = 10
		if len(b) < hlen {
			return frameHeader{}, nil
		}
		length = binary.BigEndian.Uint64(b[2:])
		if length>>63 != 0 {
			return h, errLengthMSB
		}
	}
	if !h.op.IsControl() {
		room := r.limit()
		if h.op == OpContinuation {
			room -= len(r.frag)
		}
		if length > uint64(room) {
			return h, ErrTooBig
		}
	}
	if len(b) < hlen+4 {
		return frameHeader{}, nil
	}
	copy(h.key[:], b[hlen:])
	h.hlen = hlen + 4
	h.end = h.hlen + int(length)
	return h, nil
}

// limit is the effective MaxMessage.
func (r *Reader) limit() int {
	if r.MaxMessage > 0 {
		return r.MaxMessage
	}
	return DefaultMaxMessage
}

// frame applies a complete, unmasked frame whose header passed r.header,
// and returns the message it completes, if any.
func (r *Reader) frame(h frameHeader, payload []byte) (Message, error) {
	switch {
	case h.op.IsControl():
		if h.op == OpClose {
			if err := checkClosePayload(payload); err != nil {
				return Message{}, err
			}
			r.closed = true
		}
		return Message{Op: h.op, Payload: payload}, nil

	case h.op != OpContinuation && h.fin:
		if h.op == OpText && !utf8.Valid(payload) {
			return Message{}, ErrInvalidUTF8
		}
		return Message{Op: h.op, Payload: payload}, nil

	case h.op != OpContinuation: // first fragment
		r.fragOp = h.op
		r.frag = append(r.frag[:0], payload...)
		r.text = utf8Stream{}
	default:
		r.frag = append(r.frag, payload...)
	}

	if r.fragOp == OpText && !r.text.write(payload) {
		return Message{}, ErrInvalidUTF8
	}
	if !h.fin {
		return Message{}, nil
	}
	op := r.fragOp
	r.fragOp = 0
	if op == OpText && !r.text.done() {
		return Message{}, ErrInvalidUTF8
	}
	return Message{Op: op, Payload: r.frag}, nil
}
