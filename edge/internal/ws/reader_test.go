package ws

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unsafe"
)

func TestReader(t *testing.T) {
	f := func(stream []byte, want string) {
		t.Helper()
		for i, chunks := range chunkings(len(stream), uint64(len(stream))) {
			r := &Reader{MaxMessage: 1 << 20}
			if got := decode(t, r, stream, chunks); got != want {
				t.Fatalf("chunking %d: got\n%s\nwant\n%s", i, got, want)
			}
		}
	}

	// Unfragmented messages and control frames.
	f(frame(OpText, "hello"), `text:"hello"`)
	f(frame(OpBinary, "\x00\xff"), `binary:"\x00\xff"`)
	f(frame(OpText, ""), `text:""`)
	f(cat(frame(OpText, "a"), frame(OpBinary, "b"), frame(OpText, "c")), `text:"a" binary:"b" text:"c"`)
	f(cat(frame(OpPing, "p"), frame(OpPong, ""), frame(OpPing, strings.Repeat("x", 125))),
		`ping:"p" pong:"" ping:"`+strings.Repeat("x", 125)+`"`)
	// 126 bytes take a 16-bit length, 70000 a 64-bit one.
	f(frame(OpText, strings.Repeat("é", 63)), `text:"`+strings.Repeat("é", 63)+`"`)
	long := strings.Repeat("z", 70000)
	f(frame(OpBinary, long), `binary:"`+long+`"`)
	// Lengths need not be minimally encoded.
	f([]byte{0x81, 0x80 | 126, 0, 2, 0, 0, 0, 0, 'h', 'i'}, `text:"hi"`)
	f([]byte{0x81, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 'h', 'i'}, `text:"hi"`)

	// Fragmented messages, with control frames between fragments.
	f(cat(fragment(OpText, "hel"), frame(OpContinuation, "lo")), `text:"hello"`)
	f(cat(fragment(OpBinary, ""), fragment(OpContinuation, ""), frame(OpContinuation, "")), `binary:""`)
	f(cat(fragment(OpText, "a"), frame(OpPing, "1"), fragment(OpContinuation, "b"), frame(OpPong, "2"),
		frame(OpContinuation, "c"), frame(OpText, "d")),
		`ping:"1" pong:"2" text:"abc" text:"d"`)
	f(cat(fragment(OpBinary, "abc"), frame(OpContinuation, "def"), fragment(OpText, "x"), frame(OpContinuation, "y")),
		`binary:"abcdef" text:"xy"`)

	// UTF-8 split across fragments, including empty fragments.
	f(cat(fragment(OpText, "\xe2"), frame(OpContinuation, "\x82\xac")), `text:"€"`)
	f(cat(fragment(OpText, "a\xe2\x82"), frame(OpContinuation, "\xacb")), `text:"a€b"`)
	f(cat(fragment(OpText, "\xf0"), fragment(OpContinuation, ""), fragment(OpContinuation, "\x9f"),
		fragment(OpContinuation, "\x98"), frame(OpContinuation, "\x80")), `text:"😀"`)

	// Close frames: the close is returned and nothing after it is read.
	f(frame(OpClose, ""), `close:""`)
	f(cat(closeFrame(1000, "bye"), frame(OpText, "ignored")), `close:"\x03\xe8bye"`)
	f(cat(fragment(OpText, "a"), closeFrame(1001, "")), `close:"\x03\xe9"`)
	for _, code := range []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999} {
		f(closeFrame(code, "ok"), fmt.Sprintf("close:%q", []byte{byte(code >> 8), byte(code), 'o', 'k'}))
	}

	// Framing violations: 1002.
	f(cat(frame(OpText, "a"), []byte{0x81, 0x02, 'h', 'i'}), `text:"a" !1002`) // unmasked
	for _, rsv := range []byte{rsv1Bit, rsv2Bit, rsv3Bit} {
		f(appendClientFrame(nil, finBit|rsv|byte(OpText), []byte("x")), `!1002`)
	}
	for _, op := range []byte{3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF} {
		f(appendClientFrame(nil, finBit|op, nil), `!1002`)
	}
	f(frame(OpPing, strings.Repeat("x", 126)), `!1002`)
	f(frame(OpClose, strings.Repeat("x", 126)), `!1002`)
	f(fragment(OpPing, ""), `!1002`)
	f(frame(OpContinuation, "x"), `!1002`)
	f(cat(fragment(OpText, "a"), frame(OpText, "b")), `!1002`)
	f(cat(fragment(OpText, "a"), frame(OpBinary, "b")), `!1002`)
	f([]byte{0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1}, `!1002`) // 64-bit length, top bit set

	// Close payloads.
	f(frame(OpClose, "\x03"), `!1002`)
	for _, code := range []uint16{0, 999, 1004, 1005, 1006, 1012, 1015, 1016, 2999, 5000, 65535} {
		f(closeFrame(code, ""), `!1002`)
	}
	f(closeFrame(1000, "\xff"), `!1007`)

	// Invalid UTF-8: 1007, failing on the first fragment that cannot start
	// valid text.
	f(frame(OpText, "\xff"), `!1007`)
	f(frame(OpText, "\xed\xa0\x80"), `!1007`) // surrogate
	f(frame(OpText, "\xc0\xaf"), `!1007`)     // overlong
	f(cat(fragment(OpText, "ok"), frame(OpContinuation, "\xe2\x82")), `!1007`)
	f(cat(fragment(OpText, "\xe2\x82"), frame(OpContinuation, "")), `!1007`)
	f(fragment(OpText, "\xed\xa0"), `!1007`)
	f(fragment(OpText, "\xf4\x90"), `!1007`)
	f(cat(fragment(OpText, "\xe2"), fragment(OpContinuation, "A")), `!1007`)
	f(frame(OpBinary, "\xff"), `binary:"\xff"`)
}

func TestReaderTooBig(t *testing.T) {
	f := func(stream []byte, want string) {
		t.Helper()
		for i, chunks := range chunkings(len(stream), 7) {
			r := &Reader{MaxMessage: 1000}
			if got := decode(t, r, stream, chunks); got != want {
				t.Fatalf("chunking %d: got %s, want %s", i, got, want)
			}
		}
	}
	f(frame(OpBinary, strings.Repeat("x", 1000)), `binary:"`+strings.Repeat("x", 1000)+`"`)
	f(frame(OpBinary, strings.Repeat("x", 1001)), `!1009`)
	f(cat(fragment(OpText, strings.Repeat("x", 600)), frame(OpContinuation, strings.Repeat("x", 400))),
		`text:"`+strings.Repeat("x", 1000)+`"`)
	f(cat(fragment(OpText, strings.Repeat("x", 600)), frame(OpContinuation, strings.Repeat("x", 401))), `!1009`)
	// A new message is not charged for the last assembled one.
	big := strings.Repeat("y", 900)
	f(cat(fragment(OpText, big), frame(OpContinuation, ""), frame(OpText, big)), `text:"`+big+`" text:"`+big+`"`)
	// Control frames are bounded by 125 bytes, not MaxMessage.
	r := &Reader{MaxMessage: 10}
	if got := decode(t, r, frame(OpPing, strings.Repeat("p", 100)), nil); got != `ping:"`+strings.Repeat("p", 100)+`"` {
		t.Fatalf("ping over MaxMessage: got %s", got)
	}
}

// TestReaderTooBigFromHeader checks that an oversized frame fails from its
// header alone, so the edge never buffers its payload.
func TestReaderTooBigFromHeader(t *testing.T) {
	f := func(r *Reader, header []byte) {
		t.Helper()
		m, n, err := r.Next(header)
		if !errors.Is(err, ErrTooBig) || m.Op != 0 || n != 0 {
			t.Fatalf("Next(%x) = %v, %d, %v; want ErrTooBig", header, m.Op, n, err)
		}
	}
	f(&Reader{MaxMessage: 1000}, []byte{0x82, 0x80 | 126, 0x03, 0xe9})
	f(&Reader{}, []byte{0x82, 0x80 | 127, 0, 0, 1, 0, 0, 0, 0, 0}) // 1 TiB, no key yet
	f(&Reader{}, []byte{0x81, 0x80 | 127, 0, 0, 0, 0, 0, 1, 0, 1})

	r := &Reader{MaxMessage: 1000}
	first := fragment(OpBinary, strings.Repeat("x", 600))
	m, n, err := r.Next(first)
	if m.Op != 0 || n != len(first) || err != nil {
		t.Fatalf("first fragment: %v, %d, %v", m.Op, n, err)
	}
	f(r, []byte{0x80, 0x80 | 126, 0x01, 0x91}) // 401 more bytes
}

func TestReaderStopsAfterError(t *testing.T) {
	r := &Reader{}
	bad := []byte{0x81, 0x01, 'x'}
	_, _, err := r.Next(bad)
	if !errors.Is(err, ErrProtocol) {
		t.Fatalf("unmasked frame: %v", err)
	}
	if _, n, again := r.Next(frame(OpText, "later")); n != 0 || again != err {
		t.Fatalf("after failure: n=%d err=%v, want 0, %v", n, again, err)
	}
	r.Reset()
	if m, _, err := r.Next(frame(OpText, "fresh")); err != nil || string(m.Payload) != "fresh" {
		t.Fatalf("after Reset: %q, %v", m.Payload, err)
	}
}

func TestReaderIncomplete(t *testing.T) {
	stream := cat(frame(OpText, "one"), fragment(OpText, "tw"), frame(OpPing, ""), frame(OpContinuation, "o"))
	r := &Reader{}
	// Every strict prefix of the first frame consumes nothing.
	first := len(frame(OpText, "one"))
	for i := range first {
		buf := bytes.Clone(stream[:i])
		if m, n, err := r.Next(buf); m.Op != 0 || n != 0 || err != nil {
			t.Fatalf("prefix %d: %v, %d, %v", i, m.Op, n, err)
		}
	}
	// The non-final fragment is consumed without a message; the ping after
	// it is returned with the fragment's bytes counted.
	buf := bytes.Clone(stream)
	m, n, err := r.Next(buf)
	if m.Op != OpText || n != first || err != nil {
		t.Fatalf("first: %v, %d, %v", m.Op, n, err)
	}
	buf = buf[n:]
	frag := len(fragment(OpText, "tw"))
	m, n, err = r.Next(buf[:frag+1])
	if m.Op != 0 || n != frag || err != nil {
		t.Fatalf("fragment: %v, %d, %v", m.Op, n, err)
	}
	buf = buf[n:]
	m, n, err = r.Next(buf)
	if m.Op != OpPing || n != len(frame(OpPing, "")) || err != nil {
		t.Fatalf("ping: %v, %d, %v", m.Op, n, err)
	}
	buf = buf[n:]
	m, n, err = r.Next(buf)
	if m.Op != OpText || string(m.Payload) != "two" || n != len(buf) || err != nil {
		t.Fatalf("last: %v %q, %d, %v", m.Op, m.Payload, n, err)
	}
}

// TestReaderPayloadAliasing checks the documented ownership: an unfragmented
// payload is unmasked inside buf, an assembled one lives in the Reader.
func TestReaderPayloadAliasing(t *testing.T) {
	inside := func(p, buf []byte) bool {
		start := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
		at := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
		return at >= start && at < start+uintptr(len(buf))
	}
	r := &Reader{}
	buf := frame(OpText, "aliased")
	m, _, _ := r.Next(buf)
	if !inside(m.Payload, buf) {
		t.Fatal("unfragmented payload does not alias buf")
	}
	buf = cat(fragment(OpText, "assem"), frame(OpContinuation, "bled"))
	m, _, _ = r.Next(buf)
	if string(m.Payload) != "assembled" || inside(m.Payload, buf) {
		t.Fatalf("assembled payload %q aliases buf", m.Payload)
	}
}

func TestReaderReleasesLargeAssembly(t *testing.T) {
	r := &Reader{}
	big := strings.Repeat("x", 3*maxRetainedFragments)
	decode(t, r, cat(fragment(OpBinary, big), frame(OpContinuation, big)), nil)
	decode(t, r, frame(OpText, "small"), nil)
	if cap(r.frag) > maxRetainedFragments {
		t.Fatalf("kept a %d-byte assembly buffer", cap(r.frag))
	}
}

func TestReaderZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	var stream []byte
	for range 16 {
		stream = appendClientFrame(stream, finBit|byte(OpText), []byte("steady state message"))
		stream = appendClientFrame(stream, finBit|byte(OpPing), []byte("p"))
	}
	work := make([]byte, len(stream))
	var r Reader
	allocs := testing.AllocsPerRun(100, func() {
		copy(work, stream)
		for buf := work; len(buf) > 0; {
			m, n, err := r.Next(buf)
			if err != nil || m.Op == 0 {
				t.Fatalf("Next: %v, %v", m.Op, err)
			}
			buf = buf[n:]
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per stream, want 0", allocs)
	}
}
