package ws

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// testKey is the masking key of RFC 6455 5.7's examples.
var testKey = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// Bits of a frame's first byte.
const (
	finBit  = 0x80
	rsv1Bit = 0x40
	rsv2Bit = 0x20
	rsv3Bit = 0x10
)

// appendClientFrame appends a client frame with first byte b0 and the
// shortest length encoding, masked with testKey.
func appendClientFrame(dst []byte, b0 byte, payload []byte) []byte {
	switch n := len(payload); {
	case n <= 125:
		dst = append(dst, b0, 0x80|byte(n))
	case n <= 0xffff:
		dst = append(dst, b0, 0x80|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, b0, 0x80|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	dst = append(dst, testKey[:]...)
	start := len(dst)
	dst = append(dst, payload...)
	maskBytes(testKey, dst[start:])
	return dst
}

// frame is a final masked client frame.
func frame(op Opcode, payload string) []byte {
	return appendClientFrame(nil, finBit|byte(op), []byte(payload))
}

// fragment is a non-final masked client frame.
func fragment(op Opcode, payload string) []byte {
	return appendClientFrame(nil, byte(op), []byte(payload))
}

// closeFrame is a masked client close frame with code and reason.
func closeFrame(code uint16, reason string) []byte {
	return frame(OpClose, string([]byte{byte(code >> 8), byte(code)})+reason)
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// decode feeds stream to r in chunks of the given sizes (the rest in one
// chunk), the way the edge does: inbound bytes accumulate, Next runs until
// it consumes nothing, consumed bytes are discarded. It renders what came
// out as `op:"payload"` per message and `!code` for a failure, and checks
// Next's accounting on the way.
func decode(t testing.TB, r *Reader, stream []byte, chunks []int) string {
	t.Helper()
	var out []string
	var pending []byte
	fed := 0
	for fed < len(stream) {
		size := len(stream) - fed
		if len(chunks) > 0 {
			size, chunks = min(chunks[0], size), chunks[1:]
		}
		pending = append(pending, stream[fed:fed+size]...)
		fed += size
		drained := false // the last call returned no message and no error
		for {
			m, n, err := r.Next(pending)
			switch {
			case n < 0 || n > len(pending):
				t.Fatalf("Next consumed %d of %d bytes", n, len(pending))
			case m.Op != 0 && n == 0:
				t.Fatalf("Next returned a %v message without consuming it", m.Op)
			case drained && (n != 0 || m.Op != 0):
				t.Fatalf("Next consumed %d bytes after asking for more input", n)
			}
			drained = m.Op == 0 && err == nil
			if m.Op != 0 {
				out = append(out, fmt.Sprintf("%s:%q", m.Op, m.Payload))
			}
			pending = pending[n:]
			if err != nil {
				var ce *CloseError
				if !errors.As(err, &ce) {
					t.Fatalf("Next error %v is not a *CloseError", err)
				}
				return strings.Join(append(out, fmt.Sprintf("!%d", ce.Code)), " ")
			}
			if n == 0 {
				break
			}
		}
	}
	return strings.Join(out, " ")
}

// chunkings are the ways a test feeds a stream: whole, a byte at a time,
// and a few random splits.
func chunkings(size int, seed uint64) [][]int {
	ones := make([]int, size)
	for i := range ones {
		ones[i] = 1
	}
	all := [][]int{nil, ones}
	rng := rand.New(rand.NewPCG(seed, 1))
	for range 8 {
		var split []int
		for left := size; left > 0; {
			c := 1 + rng.IntN(min(left, 1+rng.IntN(64)))
			split = append(split, c)
			left -= c
		}
		all = append(all, split)
	}
	return all
}
