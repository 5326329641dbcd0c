package ws

import (
	"errors"
	"strings"
	"testing"
)

// upgrade builds a request from a request line and header lines.
func upgrade(requestLine string, headers ...string) string {
	return requestLine + "\r\n" + strings.Join(headers, "\r\n") + "\r\n\r\n"
}

// goodHeaders are the headers of a minimal valid upgrade.
var goodHeaders = []string{
	"Host: chat.example",
	"Upgrade: websocket",
	"Connection: Upgrade",
	"Sec-WebSocket-Version: 13",
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
}

func TestParseUpgrade(t *testing.T) {
	f := func(request string, want UpgradeRequest) {
		t.Helper()
		// Trailing bytes are the client's first frames and are not consumed.
		buf := []byte(request + "\x81\x85")
		got, n, err := ParseUpgrade(buf)
		if err != nil || n != len(request) {
			t.Fatalf("ParseUpgrade: n=%d err=%v, want n=%d", n, err, len(request))
		}
		if got != want {
			t.Fatalf("got\n%+v\nwant\n%+v", got, want)
		}
		// Every strict prefix of the header block is incomplete.
		for i := range len(request) {
			if _, n, err := ParseUpgrade(buf[:i]); n != 0 || err != nil {
				t.Fatalf("prefix %d: n=%d err=%v", i, n, err)
			}
		}
	}
	key := "dGhlIHNhbXBsZSBub25jZQ=="

	f(upgrade("GET /ws HTTP/1.1", goodHeaders...),
		UpgradeRequest{Path: "/ws", Key: key, Host: "chat.example"})
	f(upgrade("GET /ws?token=abc&v=2 HTTP/1.1",
		"host:   h:8080  ",
		"UPGRADE: WebSocket",
		"connection: keep-alive, Upgrade",
		"sec-websocket-version: 13",
		"SEC-WEBSOCKET-KEY: "+key,
		"Origin: https://app.example",
		"Authorization: Bearer t0k3n",
		"Sec-WebSocket-Protocol: surge.v1, surge.v2",
		"User-Agent: test",
		"Content-Length: 0",
	), UpgradeRequest{
		Path: "/ws", RawQuery: "token=abc&v=2", Key: key, Authorization: "Bearer t0k3n",
		Origin: "https://app.example", Protocol: "surge.v1, surge.v2", Host: "h:8080",
	})
	f(upgrade("GET /%7Ews? HTTP/1.1", append(goodHeaders,
		"Sec-WebSocket-Protocol: a",
		"Sec-WebSocket-Protocol: b, c")...,
	), UpgradeRequest{Path: "/%7Ews", Key: key, Protocol: "a, b, c", Host: "chat.example"})
	f(upgrade("GET ws://chat.example/live?x=1 HTTP/1.1", goodHeaders...),
		UpgradeRequest{Path: "/live", RawQuery: "x=1", Key: key, Host: "chat.example"})
	f(upgrade("GET http://chat.example HTTP/1.1", goodHeaders...),
		UpgradeRequest{Path: "/", Key: key, Host: "chat.example"})
	f(upgrade("GET / HTTP/1.1", append(goodHeaders, "Connection: close", "Upgrade: h2c")...),
		UpgradeRequest{Path: "/", Key: key, Host: "chat.example"})
}

func TestParseUpgradeErrors(t *testing.T) {
	f := func(request string, status int) {
		t.Helper()
		_, n, err := ParseUpgrade([]byte(request))
		var he *HTTPError
		if !errors.As(err, &he) || he.Status != status || n != 0 {
			t.Fatalf("n=%d err=%v, want status %d", n, err, status)
		}
	}
	without := func(name string, extra ...string) []string {
		var hs []string
		for _, h := range goodHeaders {
			if !strings.HasPrefix(h, name+":") {
				hs = append(hs, h)
			}
		}
		return append(hs, extra...)
	}

	// Size.
	f(strings.Repeat("GET /"+strings.Repeat("a", 100)+" HTTP/1.1\r\n", 100), 431)
	f(upgrade("GET / HTTP/1.1", append(goodHeaders, "X-Pad: "+strings.Repeat("p", MaxHandshakeBytes))...), 431)

	// Method, checked as soon as the first bytes arrive.
	f(upgrade("POST / HTTP/1.1", goodHeaders...), 405)
	f(upgrade("get / HTTP/1.1", goodHeaders...), 405)
	f("PUT", 405)
	f("\x16\x03\x01", 405) // a TLS ClientHello

	// Request line and header syntax.
	f(upgrade("GET  HTTP/1.1", goodHeaders...), 400)
	f(upgrade("GET /", goodHeaders...), 400)
	f(upgrade("GET / HTTP/1.0", goodHeaders...), 400)
	f(upgrade("GET / x HTTP/1.1", goodHeaders...), 400)
	f(upgrade("GET relative HTTP/1.1", goodHeaders...), 400)
	f(upgrade("GET / HTTP/1.1", append(goodHeaders, "NoColon")...), 400)
	f(upgrade("GET / HTTP/1.1", append(goodHeaders, ": empty name")...), 400)
	f(upgrade("GET / HTTP/1.1", append(goodHeaders, "Bad Name: x")...), 400)
	f(upgrade("GET / HTTP/1.1", append(goodHeaders, " folded")...), 400)
	f(upgrade("GET / HTTP/1.1", append(goodHeaders, "X: a\nB: c")...), 400)
	f(upgrade("GET / HTTP/1.1", append(goodHeaders, "X: a\x00")...), 400)

	// Headers a WebSocket upgrade needs.
	f(upgrade("GET / HTTP/1.1", without("Host")...), 400)
	f(upgrade("GET / HTTP/1.1", without("Host", "Host: a", "Host: b")...), 400)
	f(upgrade("GET / HTTP/1.1", without("Upgrade")...), 400)
	f(upgrade("GET / HTTP/1.1", without("Upgrade", "Upgrade: websockets")...), 400)
	f(upgrade("GET / HTTP/1.1", without("Connection")...), 400)
	f(upgrade("GET / HTTP/1.1", without("Connection", "Connection: keep-alive")...), 400)
	f(upgrade("GET / HTTP/1.1", without("Sec-WebSocket-Version")...), 426)
	f(upgrade("GET / HTTP/1.1", without("Sec-WebSocket-Version", "Sec-WebSocket-Version: 8")...), 426)
	f(upgrade("GET / HTTP/1.1", append(goodHeaders, "Sec-WebSocket-Version: 8")...), 426)
	f(upgrade("GET / HTTP/1.1", without("Sec-WebSocket-Key")...), 400)
	f(upgrade("GET / HTTP/1.1", without("Sec-WebSocket-Key", "Sec-WebSocket-Key: c2hvcnQ=")...), 400)
	f(upgrade("GET / HTTP/1.1", without("Sec-WebSocket-Key", "Sec-WebSocket-Key: not base64 at all!!!!!!")...), 400)
	f(upgrade("GET / HTTP/1.1", without("Sec-WebSocket-Key", "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAAAAAA=")...), 400)
	f(upgrade("GET / HTTP/1.1", append(goodHeaders, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==")...), 400)
	f(upgrade("GET / HTTP/1.1", append(goodHeaders, "Origin: a", "Origin: b")...), 400)
	f(upgrade("GET / HTTP/1.1", append(goodHeaders, "Content-Length: 5")...), 400)
	f(upgrade("GET / HTTP/1.1", append(goodHeaders, "Transfer-Encoding: chunked")...), 400)

	// The order of checks: the method before the headers, the version
	// before the key.
	f(upgrade("POST / HTTP/1.1"), 405)
	f(upgrade("GET / HTTP/1.1", "Host: h", "Upgrade: websocket", "Connection: upgrade"), 426)
}

func TestParseUpgradeLimit(t *testing.T) {
	// A header block of exactly MaxHandshakeBytes is accepted.
	request := upgrade("GET / HTTP/1.1", goodHeaders...)
	pad := "X-Pad: " + strings.Repeat("p", MaxHandshakeBytes-len(request)-len("X-Pad: \r\n"))
	request = upgrade("GET / HTTP/1.1", append(goodHeaders, pad)...)
	if len(request) != MaxHandshakeBytes {
		t.Fatalf("test request is %d bytes", len(request))
	}
	if _, n, err := ParseUpgrade([]byte(request)); n != len(request) || err != nil {
		t.Fatalf("n=%d err=%v", n, err)
	}
	// An incomplete block just under the limit waits for more.
	if _, n, err := ParseUpgrade([]byte(request[:MaxHandshakeBytes-1])); n != 0 || err != nil {
		t.Fatalf("n=%d err=%v", n, err)
	}
}

func TestParseUpgradeAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	request := []byte(upgrade("GET /ws?t=1 HTTP/1.1", append(goodHeaders,
		"Origin: https://o", "Authorization: Bearer x", "Sec-WebSocket-Protocol: p")...))
	allocs := testing.AllocsPerRun(100, func() {
		if _, _, err := ParseUpgrade(request); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 {
		t.Fatalf("%v allocations per request, want at most 1", allocs)
	}
	bad := []byte(upgrade("GET / HTTP/1.1", "Host: h"))
	if allocs := testing.AllocsPerRun(100, func() { _, _, _ = ParseUpgrade(bad) }); allocs != 0 {
		t.Fatalf("%v allocations per rejected request, want 0", allocs)
	}
}

func TestUpgradeRequestOffers(t *testing.T) {
	f := func(header, protocol string, want bool) {
		t.Helper()
		r := UpgradeRequest{Protocol: header}
		if got := r.Offers(protocol); got != want {
			t.Fatalf("%q offers %q: got %v", header, protocol, got)
		}
	}
	f("surge.v1, surge.v2", "surge.v2", true)
	f("surge.v1,surge.v2", "surge.v1", true)
	f("surge.v1", "Surge.v1", false)
	f("surge.v10", "surge.v1", false)
	f("", "surge.v1", false)
}

func TestAppendAccept(t *testing.T) {
	f := func(key, protocol, want string) {
		t.Helper()
		got := AppendAccept([]byte("prefix|"), key, protocol)
		if string(got) != "prefix|"+want {
			t.Fatalf("got\n%q\nwant\n%q", got, want)
		}
	}
	// The example of RFC 6455 1.3.
	f("dGhlIHNhbXBsZSBub25jZQ==", "", "HTTP/1.1 101 Switching Protocols\r\n"+
		"Upgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
	f("dGhlIHNhbXBsZSBub25jZQ==", "chat", "HTTP/1.1 101 Switching Protocols\r\n"+
		"Upgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"+
		"Sec-WebSocket-Protocol: chat\r\n\r\n")
}

func TestAppendHTTPError(t *testing.T) {
	f := func(got []byte, want string) {
		t.Helper()
		if string(got) != want {
			t.Fatalf("got\n%q\nwant\n%q", got, want)
		}
	}
	f(AppendHTTPError(nil, 403, "origin not allowed"), "HTTP/1.1 403 Forbidden\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 19\r\nConnection: close\r\n\r\n"+
		"origin not allowed\n")
	f(AppendHTTPError(nil, 599, "", "Retry-After: 5", "X-A: b"), "HTTP/1.1 599 \r\n"+
		"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 1\r\nConnection: close\r\n"+
		"Retry-After: 5\r\nX-A: b\r\n\r\n\n")
	f(errVersion.AppendResponse(nil), "HTTP/1.1 426 Upgrade Required\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 34\r\nConnection: close\r\n"+
		"Sec-WebSocket-Version: 13\r\n\r\n"+
		"Sec-WebSocket-Version 13 required\n")
}
