package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Codes of errors the gateway makes itself, besides the gRPC names.
const (
	codeMethodNotAllowed = "METHOD_NOT_ALLOWED"
	codePayloadTooLarge  = "PAYLOAD_TOO_LARGE"
)

// statusOf maps each gRPC code to its HTTP status and its name in error
// bodies: the mapping of google.rpc.Code (and of grpc-gateway), names
// spelt as in google.rpc.Code. docs/HTTP_API.md has the same table.
var statusOf = map[codes.Code]struct {
	http int
	name string
}{
	codes.OK:                 {http.StatusOK, "OK"},
	codes.Canceled:           {499, "CANCELLED"}, // client closed request
	codes.Unknown:            {http.StatusInternalServerError, "UNKNOWN"},
	codes.InvalidArgument:    {http.StatusBadRequest, "INVALID_ARGUMENT"},
	codes.DeadlineExceeded:   {http.StatusGatewayTimeout, "DEADLINE_EXCEEDED"},
	codes.NotFound:           {http.StatusNotFound, "NOT_FOUND"},
	codes.AlreadyExists:      {http.StatusConflict, "ALREADY_EXISTS"},
	codes.PermissionDenied:   {http.StatusForbidden, "PERMISSION_DENIED"},
	codes.ResourceExhausted:  {http.StatusTooManyRequests, "RESOURCE_EXHAUSTED"},
	codes.FailedPrecondition: {http.StatusBadRequest, "FAILED_PRECONDITION"},
	codes.Aborted:            {http.StatusConflict, "ABORTED"},
	codes.OutOfRange:         {http.StatusBadRequest, "OUT_OF_RANGE"},
	codes.Unimplemented:      {http.StatusNotImplemented, "UNIMPLEMENTED"},
	codes.Internal:           {http.StatusInternalServerError, "INTERNAL"},
	codes.Unavailable:        {http.StatusServiceUnavailable, "UNAVAILABLE"},
	codes.DataLoss:           {http.StatusInternalServerError, "DATA_LOSS"},
	codes.Unauthenticated:    {http.StatusUnauthorized, "UNAUTHENTICATED"},
}

// apiError is what a client sees: an HTTP status and the body
// {"error":{"code":..., "message":...}}.
type apiError struct {
	status     int
	code       string
	msg        string
	retryAfter int // seconds; 0 means no Retry-After header
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

func badRequest(msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "INVALID_ARGUMENT", msg: msg}
}

// fromRPC maps the error of a downstream call to what the client sees.
// Status messages pass through as they are: the services write them for
// clients and keep internal details out of them.
func fromRPC(err error) *apiError {
	st, ok := status.FromError(err)
	if !ok {
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			st = status.New(codes.DeadlineExceeded, "deadline exceeded")
		case errors.Is(err, context.Canceled):
			st = status.New(codes.Canceled, "canceled")
		default:
			st = status.New(codes.Unknown, "internal error")
		}
	}
	s, ok := statusOf[st.Code()]
	if !ok || st.Code() == codes.OK { // a code the table does not know
		s = statusOf[codes.Unknown]
	}
	return &apiError{status: s.http, code: s.name, msg: st.Message(), retryAfter: retryAfter(st)}
}

// retryAfter is the wait, in whole seconds rounded up, that st asks for:
// its RetryInfo detail, else for ResourceExhausted and Unavailable a
// "retry in N seconds" (or "retry after <Go duration>") in its message.
// 0 means none.
func retryAfter(st *status.Status) int {
	var d time.Duration
	for _, det := range st.Details() {
		if ri, ok := det.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			d = ri.GetRetryDelay().AsDuration()
			break
		}
	}
	if d <= 0 && (st.Code() == codes.ResourceExhausted || st.Code() == codes.Unavailable) {
		d = retryInMessage(st.Message())
	}
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}

// retryInMessage finds "retry in|after N [second(s)|minute(s)]" or
// "retry in|after <Go duration>" in msg.
func retryInMessage(msg string) time.Duration {
	for _, key := range []string{"retry in ", "retry after "} {
		i := strings.Index(strings.ToLower(msg), key)
		if i < 0 {
			continue
		}
		words := strings.Fields(msg[i+len(key):])
		if len(words) == 0 {
			return 0
		}
		num := strings.TrimRight(words[0], ".,;)")
		if d, err := time.ParseDuration(num); err == nil {
			return d
		}
		n, err := strconv.Atoi(num)
		if err != nil || n <= 0 {
			return 0
		}
		unit := time.Second
		if len(words) > 1 && strings.HasPrefix(strings.ToLower(words[1]), "minute") {
			unit = time.Minute
		}
		return time.Duration(n) * unit
	}
	return 0
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// writeError writes e and returns its status.
func writeError(w http.ResponseWriter, e *apiError) int {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
	if e.status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="surge"`)
	}
	var b errorBody
	b.Error.Code, b.Error.Message = e.code, e.msg
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // messages quote "<token>" and the like
	_ = enc.Encode(b)        // cannot fail: two strings; ends with a newline
	w.WriteHeader(e.status)
	_, _ = w.Write(buf.Bytes())
	return e.status
}
