package ws

import "unicode/utf8"

// utf8Stream validates a text message fed in pieces (its fragments), so a
// code point may be split across pieces, and fails on the first piece that
// cannot be the start of valid UTF-8. The zero value is a fresh stream.
type utf8Stream struct {
	pending [utf8.UTFMax]byte // start of a code point cut by a piece's end
	n       int               // bytes in pending
}

// write validates the next piece of the stream.
func (s *utf8Stream) write(p []byte) bool {
	if s.n > 0 {
		size := seqLen(s.pending[0])
		for s.n < size && len(p) > 0 {
			s.pending[s.n] = p[0]
			s.n++
			p = p[1:]
		}
		if s.n < size {
			return validPrefix(s.pending[:s.n])
		}
		if !utf8.Valid(s.pending[:size]) {
			return false
		}
		s.n = 0
	}
	cut := incompleteTail(p)
	if !utf8.Valid(p[:cut]) || !validPrefix(p[cut:]) {
		return false
	}
	s.n = copy(s.pending[:], p[cut:])
	return true
}

// done reports whether the stream ended on a code point boundary, and makes
// s a fresh stream.
func (s *utf8Stream) done() bool {
	ok := s.n == 0
	s.n = 0
	return ok
}

// incompleteTail returns the index where p's last code point starts if p
// ends in the middle of that code point, else len(p). Invalid bytes are left
// for utf8.Valid to reject.
func incompleteTail(p []byte) int {
	for k := 1; k <= utf8.UTFMax-1 && k <= len(p); k++ {
		c := p[len(p)-k]
		if c < 0x80 {
			break // ASCII: whatever follows is invalid or nothing
		}
		if c >= 0xC0 { // a leading byte
			if seqLen(c) > k {
				return len(p) - k
			}
			break
		}
	}
	return len(p)
}

// seqLen is the length of the sequence leading byte c starts, 1 for bytes
// that cannot lead one.
func seqLen(c byte) int {
	switch {
	case c >= 0xC2 && c <= 0xDF:
		return 2
	case c >= 0xE0 && c <= 0xEF:
		return 3
	case c >= 0xF0 && c <= 0xF4:
		return 4
	}
	return 1
}

// validPrefix reports whether p, shorter than a code point, can be extended
// to a valid one: it rejects overlong forms, surrogates and code points above
// U+10FFFF from their second byte (the ranges of RFC 3629 section 4).
func validPrefix(p []byte) bool {
	if len(p) == 0 {
		return true
	}
	if len(p) >= seqLen(p[0]) {
		return false // a whole sequence or an invalid leading byte
	}
	lo, hi := byte(0x80), byte(0xBF)
	switch p[0] {
	case 0xE0:
		lo = 0xA0
	case 0xED:
		hi = 0x9F
	case 0xF0:
		lo = 0x90
	case 0xF4:
		hi = 0x8F
	}
	for i, c := range p[1:] {
		if i > 0 {
			lo, hi = 0x80, 0xBF
		}
		if c < lo || c > hi {
			return false
		}
	}
	return true
}
