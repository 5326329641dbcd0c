package ws

import "strconv"

// HTTPError is a failed upgrade request. The edge answers it with
// AppendResponse and closes the connection.
type HTTPError struct {
	Status int    // HTTP status code to answer with
	Reason string // short explanation, sent as the response body
	// Header holds extra response header lines ("Name: value", no CRLF).
	Header []string
}

func (e *HTTPError) Error() string {
	return "ws: upgrade: " + strconv.Itoa(e.Status) + " " + e.Reason
}

// AppendResponse appends the complete HTTP response for e to dst.
func (e *HTTPError) AppendResponse(dst []byte) []byte {
	return AppendHTTPError(dst, e.Status, e.Reason, e.Header...)
}

// Upgrade failures. Each is returned as is, so a rejected request allocates
// nothing.
var (
	errHeaderTooLarge = &HTTPError{Status: 431, Reason: "request header block too large"}
	errNotGet         = &HTTPError{Status: 405, Reason: "method must be GET", Header: []string{"Allow: GET"}}
	errRequestLine    = &HTTPError{Status: 400, Reason: "malformed request line"}
	errHTTPVersion    = &HTTPError{Status: 400, Reason: "HTTP/1.1 required"}
	errHeaderLine     = &HTTPError{Status: 400, Reason: "malformed header line"}
	errHost           = &HTTPError{Status: 400, Reason: "missing or repeated Host"}
	errDuplicate      = &HTTPError{Status: 400, Reason: "repeated Authorization or Origin"}
	errBody           = &HTTPError{Status: 400, Reason: "upgrade request must not have a body"}
	errUpgrade        = &HTTPError{Status: 400, Reason: "Upgrade: websocket required"}
	errConnection     = &HTTPError{Status: 400, Reason: "Connection: upgrade required"}
	errVersion        = &HTTPError{Status: 426, Reason: "Sec-WebSocket-Version 13 required", Header: []string{"Sec-WebSocket-Version: 13"}}
	errKey            = &HTTPError{Status: 400, Reason: "missing or invalid Sec-WebSocket-Key"}
)

// CloseError is a connection the peer broke: the edge sends a close frame
// with Code and Reason (AppendClose) and closes the connection.
type CloseError struct {
	Code   uint16
	Reason string // at most 123 bytes, so it fits a close frame
}

func (e *CloseError) Error() string {
	return "ws: close " + strconv.Itoa(int(e.Code)) + ": " + e.Reason
}

// Is reports whether target is a *CloseError with the same Code, so
// errors.Is(err, ErrProtocol) matches every protocol failure whatever its
// Reason.
func (e *CloseError) Is(target error) bool {
	t, ok := target.(*CloseError)
	return ok && t.Code == e.Code
}

// Sentinels for errors.Is; Reader returns more specific values with the
// same codes.
var (
	ErrProtocol    = &CloseError{Code: CloseProtocolError, Reason: "protocol error"}
	ErrInvalidUTF8 = &CloseError{Code: CloseInvalidPayload, Reason: "invalid UTF-8 in text message"}
	ErrTooBig      = &CloseError{Code: CloseMessageTooBig, Reason: "message too big"}
)

// Frame failures, each a fixed value so failing allocates nothing.
var (
	errReservedBits    = &CloseError{Code: CloseProtocolError, Reason: "reserved bits set"}
	errOpcode          = &CloseError{Code: CloseProtocolError, Reason: "unknown opcode"}
	errUnmasked        = &CloseError{Code: CloseProtocolError, Reason: "client frame not masked"}
	errControlFragment = &CloseError{Code: CloseProtocolError, Reason: "fragmented control frame"}
	errControlTooLong  = &CloseError{Code: CloseProtocolError, Reason: "control frame over 125 bytes"}
	errLengthMSB       = &CloseError{Code: CloseProtocolError, Reason: "frame length has its top bit set"}
	errStrayContinue   = &CloseError{Code: CloseProtocolError, Reason: "continuation frame without a message"}
	errUnfinished      = &CloseError{Code: CloseProtocolError, Reason: "data frame inside a fragmented message"}
	errCloseLength     = &CloseError{Code: CloseProtocolError, Reason: "close payload of one byte"}
	errCloseCode       = &CloseError{Code: CloseProtocolError, Reason: "invalid close code"}
	errCloseReasonUTF8 = &CloseError{Code: CloseInvalidPayload, Reason: "invalid UTF-8 in close reason"}
)
