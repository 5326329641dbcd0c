package ws

import (
	"bytes"
	"encoding/base64"
	"strings"
)

// MaxHandshakeBytes bounds the upgrade request's header block, request line
// and final blank line included. A longer block fails with 431.
const MaxHandshakeBytes = 8 << 10

// UpgradeRequest holds what the edge needs from a WebSocket upgrade request.
// Every string shares one allocation made per successful parse.
type UpgradeRequest struct {
	Path     string // request-target path as sent, not percent-decoded
	RawQuery string // after the '?', without it; "" when there is none

	Key           string // Sec-WebSocket-Key, validated
	Authorization string // "" when absent
	Origin        string // "" when absent
	// Protocol is Sec-WebSocket-Protocol, a comma list of subprotocols the
	// client offers; repeated headers are joined with ", ". "" when absent.
	Protocol string
	Host     string
}

// Offers reports whether the client listed protocol in
// Sec-WebSocket-Protocol. Subprotocol names are compared case-sensitively.
func (r *UpgradeRequest) Offers(protocol string) bool {
	for rest := r.Protocol; rest != ""; {
		var tok string
		tok, rest, _ = strings.Cut(rest, ",")
		if strings.Trim(tok, " \t") == protocol {
			return true
		}
	}
	return false
}

var crlfcrlf = []byte("\r\n\r\n")

// ParseUpgrade parses an HTTP/1.1 GET upgrade request from the start of buf.
// It returns n == 0 and a nil error while the header block is incomplete
// (no blank line yet); otherwise n is the length of the header block, which
// the caller discards, and any bytes after it are the client's first frames.
// A rejected request returns an *HTTPError to answer with before closing.
// buf is only read, never kept.
func ParseUpgrade(buf []byte) (req UpgradeRequest, n int, err error) {
	window := buf
	if len(window) > MaxHandshakeBytes {
		window = window[:MaxHandshakeBytes]
	}
	end := bytes.Index(window, crlfcrlf)
	if end < 0 {
		if len(buf) >= MaxHandshakeBytes {
			return req, 0, errHeaderTooLarge
		}
		// Fail a request that cannot be a GET as soon as it shows.
		if k := min(len(buf), 4); string(buf[:k]) != "GET "[:k] {
			return req, 0, errNotGet
		}
		return req, 0, nil
	}
	var h upgradeHeaders
	if err := h.parse(buf[:end+2]); err != nil {
		return req, 0, err
	}
	return h.request(), end + 4, nil
}

// upgradeHeaders holds views into the request while it is checked, so that
// only an accepted request allocates.
type upgradeHeaders struct {
	block []byte // header lines, each ending in CRLF, request line excluded

	path, query, key, auth, origin, host []byte
	proto                                []byte // first Sec-WebSocket-Protocol
	protoCount, protoLen                 int    // all of them, joined with ", "

	upgrade, connection, version bool
	hosts, versions              int
}

// parse checks the request line and header lines of head, which ends with
// the CRLF of its last line.
func (h *upgradeHeaders) parse(head []byte) error {
	i := bytes.Index(head, crlfcrlf[:2])
	if err := h.parseRequestLine(head[:i]); err != nil {
		return err
	}
	h.block = head[i+2:]
	for rest := h.block; len(rest) > 0; {
		var line []byte
		line, rest = cutLine(rest)
		name, value, err := splitHeader(line)
		if err != nil {
			return err
		}
		if err := h.header(name, value); err != nil {
			return err
		}
	}
	switch {
	case h.hosts != 1:
		return errHost
	case !h.upgrade:
		return errUpgrade
	case !h.connection:
		return errConnection
	case !h.version:
		return errVersion
	case !validKey(h.key):
		return errKey
	}
	return nil
}

// parseRequestLine accepts "GET <target> HTTP/1.1", target in origin form
// ("/path?query") or absolute form ("http://host/path?query").
func (h *upgradeHeaders) parseRequestLine(line []byte) error {
	rest, ok := bytes.CutPrefix(line, []byte("GET "))
	if !ok {
		return errNotGet
	}
	target, version, ok := bytes.Cut(rest, []byte(" "))
	if !ok || len(target) == 0 {
		return errRequestLine
	}
	if string(version) != "HTTP/1.1" {
		return errHTTPVersion
	}
	for _, c := range target {
		if c <= ' ' || c == 0x7f {
			return errRequestLine
		}
	}
	if target[0] != '/' {
		// Absolute form: drop "scheme://authority".
		_, after, ok := bytes.Cut(target, []byte("://"))
		if !ok {
			return errRequestLine
		}
		slash := bytes.IndexByte(after, '/')
		if slash < 0 {
			target = []byte("/")
		} else {
			target = after[slash:]
		}
	}
	h.path, h.query, _ = bytes.Cut(target, []byte("?"))
	return nil
}

// header records one header line.
func (h *upgradeHeaders) header(name, value []byte) error {
	switch {
	case foldEqual(name, "Host"):
		h.hosts++
		h.host = value
	case foldEqual(name, "Upgrade"):
		h.upgrade = h.upgrade || hasToken(value, "websocket")
	case foldEqual(name, "Connection"):
		h.connection = h.connection || hasToken(value, "upgrade")
	case foldEqual(name, "Sec-WebSocket-Version"):
		h.versions++
		h.version = h.versions == 1 && string(value) == "13"
	case foldEqual(name, "Sec-WebSocket-Key"):
		if h.key != nil {
			return errKey
		}
		h.key = value
	case foldEqual(name, "Sec-WebSocket-Protocol"):
		if h.protoCount == 0 {
			h.proto = value
		} else {
			h.protoLen += len(", ")
		}
		h.protoCount++
		h.protoLen += len(value)
	case foldEqual(name, "Authorization"):
		if h.auth != nil {
			return errDuplicate
		}
		h.auth = value
	case foldEqual(name, "Origin"):
		if h.origin != nil {
			return errDuplicate
		}
		h.origin = value
	case foldEqual(name, "Content-Length"):
		if string(value) != "0" {
			return errBody
		}
	case foldEqual(name, "Transfer-Encoding"):
		return errBody
	}
	return nil
}

// request copies the fields into one string and slices it.
func (h *upgradeHeaders) request() UpgradeRequest {
	var b strings.Builder
	b.Grow(len(h.path) + len(h.query) + len(h.key) + len(h.auth) +
		len(h.origin) + h.protoLen + len(h.host))
	b.Write(h.path)
	b.Write(h.query)
	b.Write(h.key)
	b.Write(h.auth)
	b.Write(h.origin)
	b.Write(h.host)
	if h.protoCount == 1 {
		b.Write(h.proto)
	} else if h.protoCount > 1 {
		h.joinProtocols(&b)
	}
	s := b.String()
	var req UpgradeRequest
	req.Path, s = s[:len(h.path)], s[len(h.path):]
	req.RawQuery, s = s[:len(h.query)], s[len(h.query):]
	req.Key, s = s[:len(h.key)], s[len(h.key):]
	req.Authorization, s = s[:len(h.auth)], s[len(h.auth):]
	req.Origin, s = s[:len(h.origin)], s[len(h.origin):]
	req.Host, s = s[:len(h.host)], s[len(h.host):]
	req.Protocol = s
	return req
}

// joinProtocols writes every Sec-WebSocket-Protocol value, joined by ", ".
func (h *upgradeHeaders) joinProtocols(b *strings.Builder) {
	first := true
	for rest := h.block; len(rest) > 0; {
		var line []byte
		line, rest = cutLine(rest)
		name, value, _ := splitHeader(line)
		if !foldEqual(name, "Sec-WebSocket-Protocol") {
			continue
		}
		if !first {
			b.WriteString(", ")
		}
		first = false
		b.Write(value)
	}
}

// cutLine splits off the first line of b, which ends with CRLF.
func cutLine(b []byte) (line, rest []byte) {
	i := bytes.Index(b, crlfcrlf[:2])
	return b[:i], b[i+2:]
}

// splitHeader splits "Name: value", trimming the value's optional
// whitespace. It rejects folded lines, names that are not tokens and values
// with control characters, so no other parser can read the line differently.
func splitHeader(line []byte) (name, value []byte, err error) {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return nil, nil, errHeaderLine
	}
	name = line[:colon]
	for _, c := range name {
		if !isTokenChar(c) {
			return nil, nil, errHeaderLine
		}
	}
	value = bytes.Trim(line[colon+1:], " \t")
	for _, c := range value {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return nil, nil, errHeaderLine
		}
	}
	return name, value, nil
}

// isTokenChar reports whether c may appear in an HTTP token (RFC 9110 5.6.2).
func isTokenChar(c byte) bool {
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// hasToken reports whether the comma list v holds token, ignoring case.
func hasToken(v []byte, token string) bool {
	for len(v) > 0 {
		var tok []byte
		tok, v, _ = bytes.Cut(v, []byte(","))
		if foldEqual(bytes.Trim(tok, " \t"), token) {
			return true
		}
	}
	return false
}

// foldEqual reports whether b equals the ASCII string s, ignoring case.
func foldEqual(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// validKey reports whether key is base64 for 16 bytes (RFC 6455 4.2.1).
func validKey(key []byte) bool {
	if len(key) != 24 {
		return false
	}
	var raw [18]byte
	n, err := base64.StdEncoding.Decode(raw[:], key)
	return err == nil && n == 16
}
