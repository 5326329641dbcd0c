package gateway

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// TestStatusMapping: every gRPC code a service returns becomes one HTTP
// status and one code name, with the service's message.
func TestStatusMapping(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		code   codes.Code
		status int
		name   string
	}{
		{codes.Canceled, 499, "CANCELLED"},
		{codes.Unknown, 500, "UNKNOWN"},
		{codes.InvalidArgument, 400, "INVALID_ARGUMENT"},
		{codes.DeadlineExceeded, 504, "DEADLINE_EXCEEDED"},
		{codes.NotFound, 404, "NOT_FOUND"},
		{codes.AlreadyExists, 409, "ALREADY_EXISTS"},
		{codes.PermissionDenied, 403, "PERMISSION_DENIED"},
		{codes.ResourceExhausted, 429, "RESOURCE_EXHAUSTED"},
		{codes.FailedPrecondition, 400, "FAILED_PRECONDITION"},
		{codes.Aborted, 409, "ABORTED"},
		{codes.OutOfRange, 400, "OUT_OF_RANGE"},
		{codes.Unimplemented, 501, "UNIMPLEMENTED"},
		{codes.Internal, 500, "INTERNAL"},
		{codes.Unavailable, 503, "UNAVAILABLE"},
		{codes.DataLoss, 500, "DATA_LOSS"},
		{codes.Unauthenticated, 401, "UNAUTHENTICATED"},
	}
	if len(tests) != len(statusOf)-1 { // all but OK
		t.Fatalf("%d codes tested, %d mapped", len(tests), len(statusOf)-1)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := fmt.Sprintf("the service says %s", tc.code)
			e.b.set(nil, status.Error(tc.code, msg))
			resp, body := e.do(t, "GET", "/v1/groups/g1", "")
			checkError(t, resp, body, tc.status, tc.name, msg)
			if got := resp.Header.Get("WWW-Authenticate"); (tc.status == 401) != (got != "") {
				t.Fatalf("WWW-Authenticate %q on %d", got, tc.status)
			}
			if got := resp.Header.Get("Retry-After"); got != "" {
				t.Fatalf("Retry-After %q without a delay in the status", got)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	e := newEnv(t, nil)
	withInfo, _ := status.New(codes.ResourceExhausted, "too many failed login attempts for this account; retry in 15 seconds").
		WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(14500 * time.Millisecond)})
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"RetryInfo wins, rounded up", withInfo.Err(), "15"},
		{"seconds in the message", status.Error(codes.ResourceExhausted, "slow down; retry in 7 seconds"), "7"},
		{"minutes in the message", status.Error(codes.ResourceExhausted, "Retry after 2 minutes."), "120"},
		{"Go duration in the message", status.Error(codes.Unavailable, "draining; retry after 1m30s"), "90"},
		{"no delay", status.Error(codes.ResourceExhausted, "quota used up"), ""},
		{"not a retryable code", status.Error(codes.NotFound, "retry in 5 seconds"), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.b.set(nil, tc.err)
			resp, _ := e.do(t, "POST", "/v1/auth/login", `{"username":"alice","password":"x"}`)
			if got := resp.Header.Get("Retry-After"); got != tc.want {
				t.Fatalf("Retry-After %q, want %q", got, tc.want)
			}
		})
	}
}

// TestTimeout: a service slower than Config.Timeout gets 504.
func TestTimeout(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Timeout = 50 * time.Millisecond })
	e.b.mu.Lock()
	e.b.block = true
	e.b.mu.Unlock()
	resp, body := e.do(t, "GET", "/v1/me", "")
	checkError(t, resp, body, 504, "DEADLINE_EXCEEDED", "")
}

func TestFromRPCPlainErrors(t *testing.T) {
	tests := []struct {
		err    error
		status int
		code   string
	}{
		{context.DeadlineExceeded, 504, "DEADLINE_EXCEEDED"},
		{fmt.Errorf("call: %w", context.Canceled), 499, "CANCELLED"},
		{errors.New("dial tcp: connection refused"), 500, "UNKNOWN"},
		{status.Error(codes.Code(99), "from the future"), 500, "UNKNOWN"},
	}
	for _, tc := range tests {
		e := fromRPC(tc.err)
		if e.status != tc.status || e.code != tc.code {
			t.Errorf("fromRPC(%v) = %d %s, want %d %s", tc.err, e.status, e.code, tc.status, tc.code)
		}
	}
	if e := fromRPC(errors.New("secret detail")); e.msg != "internal error" {
		t.Errorf("a plain error's text reached the client: %q", e.msg)
	}
}
