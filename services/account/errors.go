package account

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Errors a client sees. Each is a gRPC status whose code says what to do
// and whose message says what was wrong, in words a client developer can
// show or act on; docs/PROTOCOL.md lists them. Messages that carry a value
// are built by the functions below.
var (
	// errBadCredentials is every failed password check, whether the user
	// exists or not, so that Login does not reveal which usernames exist.
	errBadCredentials = status.Error(codes.Unauthenticated, "invalid username or password")
	errLoginRequired  = status.Error(codes.InvalidArgument, "username and password are required")

	errRefreshRequired = status.Error(codes.InvalidArgument, "refresh_token is required")
	errRefreshInvalid  = status.Error(codes.Unauthenticated, "refresh token is not valid; log in again")
	errRefreshExpired  = status.Error(codes.Unauthenticated, "refresh token has expired; log in again")
	errRefreshRevoked  = status.Error(codes.Unauthenticated, "refresh token has been revoked; log in again")
	errRefreshReused   = status.Error(codes.Unauthenticated, "refresh token was already used, so every token of this login has been revoked; log in again")

	errLogoutWhat       = status.Error(codes.InvalidArgument, "set refresh_token, or all_sessions to log out everywhere")
	errLogoutNotFound   = status.Error(codes.NotFound, "refresh token not found among yours")
	errUserIDRequired   = status.Error(codes.InvalidArgument, "user_id is required")
	errSelfDemote       = status.Error(codes.FailedPrecondition, "an operator cannot remove their own operator role; ask another operator")
	errNotAuthenticated = status.Error(codes.Unauthenticated, "this call needs an access token")
	errInternal         = status.Error(codes.Internal, "internal error")
)

func invalidArgument(msg string) error { return status.Error(codes.InvalidArgument, msg) }

func usernameTaken(id string) error {
	return status.Errorf(codes.AlreadyExists, "username %q is taken", id)
}

func userNotFound(id string) error {
	return status.Errorf(codes.NotFound, "user %q not found", id)
}

// throttledError is ResourceExhausted with the wait in the message (whole
// seconds, rounded up) and as a RetryInfo detail, which the HTTP gateway
// can turn into Retry-After.
func throttledError(t *throttled) error {
	secs := int64((t.retry + time.Second - 1) / time.Second)
	secs = max(secs, 1)
	what := "for this account"
	if t.what == "address" {
		what = "from this address"
	}
	st := status.New(codes.ResourceExhausted,
		fmt.Sprintf("too many failed login attempts %s; retry in %d seconds", what, secs))
	if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Duration(secs) * time.Second)}); err == nil {
		st = d
	}
	return st.Err()
}

// internalError logs err and returns what the client sees: the context's
// own code if the call was cancelled or timed out, else Internal without
// details.
func (s *Service) internalError(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		if ctxErr == nil {
			ctxErr = err
		}
		return status.FromContextError(ctxErr).Err()
	}
	s.log.Error("account "+op, "err", err)
	s.m.internalErrors.Inc()
	return errInternal
}
