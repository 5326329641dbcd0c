package ws

import (
	"crypto/sha1"
	"encoding/base64"
	"strconv"
)

// acceptGUID is the value RFC 6455 4.2.2 appends to the client's key.
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AppendAccept appends the 101 Switching Protocols response to an upgrade
// request with Sec-WebSocket-Key key to dst. protocol is the subprotocol the
// server picked from those the client offered; "" sends no
// Sec-WebSocket-Protocol line.
func AppendAccept(dst []byte, key, protocol string) []byte {
	dst = append(dst, "HTTP/1.1 101 Switching Protocols\r\n"+
		"Upgrade: websocket\r\n"+
		"Connection: Upgrade\r\n"+
		"Sec-WebSocket-Accept: "...)
	dst = appendAcceptKey(dst, key)
	if protocol != "" {
		dst = append(dst, "\r\nSec-WebSocket-Protocol: "...)
		dst = append(dst, protocol...)
	}
	return append(dst, "\r\n\r\n"...)
}

// appendAcceptKey appends base64(SHA-1(key + acceptGUID)).
func appendAcceptKey(dst []byte, key string) []byte {
	var in [24 + len(acceptGUID)]byte
	b := append(in[:0], key...)
	b = append(b, acceptGUID...)
	sum := sha1.Sum(b)
	return base64.StdEncoding.AppendEncode(dst, sum[:])
}

// AppendHTTPError appends a complete HTTP/1.1 response with status to dst:
// a text/plain body of reason and a newline, and Connection: close.
// extraHeaders are whole header lines ("Name: value", no CRLF).
func AppendHTTPError(dst []byte, status int, reason string, extraHeaders ...string) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	dst = append(dst, statusText(status)...)
	dst = append(dst, "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(reason)+1), 10)
	dst = append(dst, "\r\nConnection: close\r\n"...)
	for _, h := range extraHeaders {
		dst = append(dst, h...)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "\r\n"...)
	dst = append(dst, reason...)
	return append(dst, '\n')
}

// statusText is the reason phrase for the statuses an upgrade is likely to
// be answered with; others get an empty phrase, which HTTP allows.
func statusText(status int) string {
	switch status {
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 408:
		return "Request Timeout"
	case 426:
		return "Upgrade Required"
	case 429:
		return "Too Many Requests"
	case 431:
		return "Request Header Fields Too Large"
	case 500:
		return "Internal Server Error"
	case 503:
		return "Service Unavailable"
	}
	return ""
}
