package ws

import (
	"math/rand/v2"
	"testing"
	"unicode/utf8"
)

// canContinue is the reference for utf8Stream: p is the start of valid
// UTF-8 when it is valid or a few continuation bytes make it so. The bytes
// tried cover the narrowed second-byte ranges of E0, ED, F0 and F4.
func canContinue(p []byte) bool {
	if utf8.Valid(p) {
		return true
	}
	conts := []byte{0x80, 0x90, 0xA0, 0xBF}
	var try func(q []byte, left int) bool
	try = func(q []byte, left int) bool {
		if left == 0 {
			return false
		}
		for _, c := range conts {
			next := append(q[:len(q):len(q)], c)
			if utf8.Valid(next) || try(next, left-1) {
				return true
			}
		}
		return false
	}
	return try(p, 3)
}

func TestUTF8Stream(t *testing.T) {
	f := func(pieces ...string) {
		t.Helper()
		var s utf8Stream
		var seen []byte
		for i, p := range pieces {
			seen = append(seen, p...)
			if got, want := s.write([]byte(p)), canContinue(seen); got != want {
				t.Fatalf("piece %d of %q: write = %v, want %v", i, pieces, got, want)
			}
			if !canContinue(seen) {
				return
			}
		}
		if got, want := s.done(), utf8.Valid(seen); got != want {
			t.Fatalf("%q: done = %v, want %v", pieces, got, want)
		}
	}
	f("")
	f("plain ascii")
	f("\xe2", "\x82", "\xac")
	f("\xf0\x9f", "", "\x98\x80", "tail")
	f("a\xf0", "\x9f\x98", "\x80")
	f("\xe2\x82")     // ends mid code point
	f("\xed", "\xa0") // surrogate, caught on its second byte
	f("\xe0", "\x80") // overlong
	f("\xf4", "\x90") // above U+10FFFF
	f("\xf0", "\x80") // overlong four-byte form
	f("\xc1\xbf")     // overlong two-byte form
	f("\xe2", "A")    // not a continuation
	f("ok\x80")       // stray continuation
	f("\xe2\x82\xac\xe2\x82", "\xac")
}

// TestUTF8StreamRandom compares utf8Stream with the reference on random
// byte strings split at random points, drawn from bytes that matter to
// UTF-8.
func TestUTF8StreamRandom(t *testing.T) {
	alphabet := []byte{'a', 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xdf,
		0xe0, 0xe1, 0xed, 0xef, 0xf0, 0xf1, 0xf4, 0xf5, 0xff}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		var s utf8Stream
		var seen []byte
		ok := true
		for range 1 + rng.IntN(4) {
			piece := make([]byte, rng.IntN(5))
			for i := range piece {
				piece[i] = alphabet[rng.IntN(len(alphabet))]
			}
			seen = append(seen, piece...)
			got, want := s.write(piece), canContinue(seen)
			if got != want {
				t.Fatalf("after % x: write = %v, want %v", seen, got, want)
			}
			if !got {
				ok = false
				break
			}
		}
		if ok && s.done() != utf8.Valid(seen) {
			t.Fatalf("% x: done disagrees with utf8.Valid", seen)
		}
	}
}
