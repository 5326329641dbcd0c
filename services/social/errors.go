package social

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Client-visible errors are gRPC statuses with a stable code and a short
// message; the comment at the top of each RPC's file lists them. Any other
// error (the database's) is logged, at most once a second, and answered as
// Internal "internal error", without its text.

// errf returns a status error with code and a formatted message.
func errf(code codes.Code, format string, args ...any) error {
	return status.Error(code, fmt.Sprintf(format, args...))
}

// Messages of errors that several RPCs return.
var (
	errNoSuchGroup = status.Error(codes.NotFound, "no such group")
	errBlocked     = status.Error(codes.FailedPrecondition, "blocked")
)

// rpcErr turns err into what an RPC returns: status errors as they are,
// the context's errors as Canceled or DeadlineExceeded, anything else as
// Internal (logged and counted).
func (s *Service) rpcErr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	}
	s.internalErrors.Inc()
	if s.errLog.allow(time.Now()) {
		method, _ := grpc.Method(ctx)
		s.log.Error("rpc failed", "method", method, "err", err, "suppressed", s.errLog.suppressed.Swap(0))
	}
	return status.Error(codes.Internal, "internal error")
}

// logLimit lets one log line through per second and counts the rest.
type logLimit struct {
	next       atomic.Int64 // unix nanoseconds before which lines are suppressed
	suppressed atomic.Int64 // lines suppressed since the last one let through
}

func (l *logLimit) allow(now time.Time) bool {
	n := l.next.Load()
	if now.UnixNano() < n || !l.next.CompareAndSwap(n, now.Add(time.Second).UnixNano()) {
		l.suppressed.Add(1)
		return false
	}
	return true
}
