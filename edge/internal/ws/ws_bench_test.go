package ws

import (
	"strings"
	"testing"
)

// benchmarkReader decodes a stream of masked text frames with payloads of
// size bytes, one message per op, the way the edge does: Next on the
// buffered bytes, then discard what it consumed. The stream is restored
// from a template when used up, because Next unmasks in place.
func benchmarkReader(b *testing.B, size int) {
	payload := []byte(utf8Text(size))
	var template []byte
	for len(template) < 64<<10 {
		template = appendClientFrame(template, finBit|byte(OpText), payload)
	}
	frameLen := len(appendClientFrame(nil, finBit|byte(OpText), payload))
	work := make([]byte, len(template))
	buf := work[:0]
	r := Reader{MaxMessage: 1 << 20}
	b.SetBytes(int64(frameLen))
	b.ReportAllocs()
	for b.Loop() {
		if len(buf) == 0 {
			buf = work[:copy(work, template)]
		}
		m, n, err := r.Next(buf)
		if err != nil || m.Op != OpText {
			b.Fatalf("Next: %v, %v", m.Op, err)
		}
		buf = buf[n:]
	}
}

func BenchmarkReaderText32(b *testing.B)  { benchmarkReader(b, 32) }
func BenchmarkReaderText256(b *testing.B) { benchmarkReader(b, 256) }
func BenchmarkReaderText16K(b *testing.B) { benchmarkReader(b, 16<<10) }

// BenchmarkReaderFragmented decodes a 1 KiB text message sent in four
// fragments, assembled in the Reader's reused buffer.
func BenchmarkReaderFragmented(b *testing.B) {
	text := utf8Text(1 << 10)
	quarter := len(text) / 4
	var template []byte
	for i := range 4 {
		op, b0 := OpText, byte(0)
		if i > 0 {
			op = OpContinuation
		}
		if i == 3 {
			b0 = finBit
		}
		template = appendClientFrame(template, b0|byte(op), []byte(text[i*quarter:(i+1)*quarter]))
	}
	work := make([]byte, len(template))
	var r Reader
	b.SetBytes(int64(len(template)))
	b.ReportAllocs()
	for b.Loop() {
		copy(work, template)
		m, _, err := r.Next(work)
		if err != nil || len(m.Payload) != 4*quarter {
			b.Fatalf("Next: %d bytes, %v", len(m.Payload), err)
		}
	}
}

func benchmarkAppendFrame(b *testing.B, size int) {
	payload := []byte(strings.Repeat("x", size))
	dst := make([]byte, 0, size+MaxServerHeader)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendFrame(dst[:0], OpText, payload)
	}
}

func BenchmarkAppendFrame32(b *testing.B)  { benchmarkAppendFrame(b, 32) }
func BenchmarkAppendFrame16K(b *testing.B) { benchmarkAppendFrame(b, 16<<10) }

// BenchmarkParseUpgrade parses a browser-sized upgrade request; the one
// allocation is the strings of the returned request.
func BenchmarkParseUpgrade(b *testing.B) {
	request := []byte(upgrade("GET /ws?token=abc HTTP/1.1", append(goodHeaders,
		"Origin: https://app.example",
		"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
		"Sec-WebSocket-Protocol: surge.v1",
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0",
		"Accept-Encoding: gzip, deflate, br",
		"Accept-Language: en-US,en;q=0.9",
		"Cache-Control: no-cache",
		"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
	)...))
	b.SetBytes(int64(len(request)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ParseUpgrade(request); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendAccept(b *testing.B) {
	dst := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendAccept(dst[:0], "dGhlIHNhbXBsZSBub25jZQ==", "surge.v1")
	}
}
