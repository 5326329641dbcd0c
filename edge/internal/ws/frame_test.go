package ws

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAppendFrameHeader(t *testing.T) {
	f := func(op Opcode, length int, want []byte) {
		t.Helper()
		if got := AppendFrameHeader(nil, op, length); !bytes.Equal(got, want) {
			t.Fatalf("%v %d: got % x, want % x", op, length, got, want)
		}
	}
	f(OpText, 0, []byte{0x81, 0})
	f(OpBinary, 125, []byte{0x82, 125})
	f(OpText, 126, []byte{0x81, 126, 0, 126})
	f(OpBinary, 65535, []byte{0x82, 126, 0xff, 0xff})
	f(OpBinary, 65536, []byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0})
	f(OpPong, 3, []byte{0x8a, 3})
}

func TestAppendFrame(t *testing.T) {
	got := AppendFrame([]byte("x"), OpText, []byte("hi"))
	if want := []byte{'x', 0x81, 2, 'h', 'i'}; !bytes.Equal(got, want) {
		t.Fatalf("got % x, want % x", got, want)
	}
}

func TestAppendClose(t *testing.T) {
	f := func(code uint16, reason string, want []byte) {
		t.Helper()
		got := AppendClose(nil, code, reason)
		if !bytes.Equal(got, want) {
			t.Fatalf("close %d %q: got % x, want % x", code, reason, got, want)
		}
		if len(got)-2 > MaxControlPayload || !utf8.Valid(got[min(4, len(got)):]) {
			t.Fatalf("close %d %q: invalid frame % x", code, reason, got)
		}
	}
	f(1000, "", []byte{0x88, 2, 0x03, 0xe8})
	f(1002, "bad", []byte{0x88, 5, 0x03, 0xea, 'b', 'a', 'd'})
	f(0, "ignored", []byte{0x88, 0})
	f(CloseNoStatus, "", []byte{0x88, 0})
	long := strings.Repeat("r", 200)
	f(1001, long, append([]byte{0x88, 125, 0x03, 0xe9}, long[:MaxCloseReason]...))
	// "é" is two bytes; 62 of them reach byte 124, so the last is dropped
	// whole rather than cut in half.
	accents := strings.Repeat("é", 62)
	f(1001, accents, append([]byte{0x88, 124, 0x03, 0xe9}, accents[:122]...))
}

func TestParseClose(t *testing.T) {
	f := func(payload string, wantCode uint16, wantReason string) {
		t.Helper()
		code, reason := ParseClose([]byte(payload))
		if code != wantCode || string(reason) != wantReason {
			t.Fatalf("%q: got %d %q", payload, code, reason)
		}
	}
	f("", CloseNoStatus, "")
	f("\x03\xe8", 1000, "")
	f("\x0f\xa0bye", 4000, "bye")
}

func TestCloseErrorIs(t *testing.T) {
	if !errors.Is(errUnmasked, ErrProtocol) || errors.Is(errUnmasked, ErrTooBig) {
		t.Fatal("Is does not match on Code")
	}
	if got := errUnmasked.Error(); got != "ws: close 1002: client frame not masked" {
		t.Fatalf("Error() = %q", got)
	}
	for _, e := range []*CloseError{ErrProtocol, ErrInvalidUTF8, ErrTooBig, errUnmasked, errCloseReasonUTF8} {
		if len(e.Reason) > MaxCloseReason {
			t.Fatalf("reason %q does not fit a close frame", e.Reason)
		}
	}
}

func TestMaskBytes(t *testing.T) {
	key := [4]byte{1, 2, 3, 4}
	for n := range 100 {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i * 7)
		}
		want := bytes.Clone(b)
		for i := range want {
			want[i] ^= key[i%4]
		}
		maskBytes(key, b)
		if !bytes.Equal(b, want) {
			t.Fatalf("length %d: got % x, want % x", n, b, want)
		}
	}
}

func TestOpcodeString(t *testing.T) {
	f := func(op Opcode, want string) {
		t.Helper()
		if got := op.String(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	f(OpText, "text")
	f(OpPong, "pong")
	f(Opcode(3), "opcode(3)")
}
