package ws

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzReader feeds arbitrary bytes to a Reader whole and in chunks of
// chunk+1 bytes. Next must never panic or consume more than it was given,
// and both feedings must decode the same messages and fail the same way.
func FuzzReader(f *testing.F) {
	f.Add(frame(OpText, "hello"), uint8(0))
	f.Add(cat(fragment(OpText, "a\xe2"), frame(OpPing, "p"), frame(OpContinuation, "\x82\xac")), uint8(2))
	f.Add(cat(fragment(OpBinary, "x"), frame(OpText, "y")), uint8(1))
	f.Add(closeFrame(1000, "bye"), uint8(3))
	f.Add(closeFrame(1005, ""), uint8(3))
	f.Add(frame(OpBinary, strings.Repeat("b", 300)), uint8(7))
	f.Add([]byte{0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1}, uint8(0))
	f.Add([]byte{0x81, 0x05, 'h', 'e', 'l', 'l', 'o'}, uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		whole := decode(t, &Reader{MaxMessage: 1024}, bytes.Clone(data), nil)
		var chunks []int
		for range len(data)/(int(chunk)+1) + 1 {
			chunks = append(chunks, int(chunk)+1)
		}
		chunked := decode(t, &Reader{MaxMessage: 1024}, bytes.Clone(data), chunks)
		if whole != chunked {
			t.Fatalf("whole:   %s\nchunked: %s", whole, chunked)
		}
	})
}

// FuzzParseUpgrade checks that ParseUpgrade never panics, consumes exactly
// a header block, and decides the same on the block alone.
func FuzzParseUpgrade(f *testing.F) {
	f.Add([]byte(upgrade("GET /ws?x=1 HTTP/1.1", goodHeaders...)))
	f.Add([]byte(upgrade("GET http://h/p HTTP/1.1", append(goodHeaders, "Sec-WebSocket-Protocol: a", "Sec-WebSocket-Protocol: b")...)))
	f.Add([]byte(upgrade("GET / HTTP/1.1", "Host: h", "Upgrade: websocket")))
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Add([]byte("POST"))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, n, err := ParseUpgrade(data)
		if n < 0 || n > len(data) || n > MaxHandshakeBytes {
			t.Fatalf("n = %d of %d bytes", n, len(data))
		}
		if err != nil {
			if n != 0 {
				t.Fatalf("n = %d with error %v", n, err)
			}
			if _, ok := err.(*HTTPError); !ok {
				t.Fatalf("error %v is not an *HTTPError", err)
			}
			return
		}
		if n == 0 {
			if bytes.Contains(data, crlfcrlf) {
				t.Fatal("incomplete with a complete header block")
			}
			return
		}
		if !bytes.HasSuffix(data[:n], crlfcrlf) || bytes.Contains(data[:n-1], crlfcrlf) {
			t.Fatalf("consumed %q, not one header block", data[:n])
		}
		again, n2, err := ParseUpgrade(data[:n])
		if again != req || n2 != n || err != nil {
			t.Fatalf("the header block alone parses differently: %+v %d %v", again, n2, err)
		}
		if !validKey([]byte(req.Key)) || !strings.HasPrefix(req.Path, "/") {
			t.Fatalf("accepted %+v", req)
		}
		_ = AppendAccept(nil, req.Key, req.Protocol)
	})
}
