package grpcx

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestDeadlinerExpired: a call whose deadline has passed never reaches its
// handler.
func TestDeadlinerExpired(t *testing.T) {
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	d := deadliner{timeout: time.Second}
	ran := false
	_, err := d.unary(ctx, nil, &grpc.UnaryServerInfo{FullMethod: "/a.B/C"}, func(context.Context, any) (any, error) {
		ran = true
		return nil, nil
	})
	if status.Code(err) != codes.DeadlineExceeded || ran {
		t.Errorf("unary: %v, handler ran %v", err, ran)
	}
	err = d.stream(nil, fakeStream{ctx: ctx}, &grpc.StreamServerInfo{FullMethod: "/a.B/C"}, func(any, grpc.ServerStream) error {
		ran = true
		return nil
	})
	if status.Code(err) != codes.DeadlineExceeded || ran {
		t.Errorf("stream: %v, handler ran %v", err, ran)
	}
}

// fakeStream is a ServerStream with only a context.
type fakeStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (f fakeStream) Context() context.Context { return f.ctx }

func TestBackoffCeiling(t *testing.T) {
	r := &retrier{cfg: RetryConfig{BaseDelay: 10 * time.Millisecond, MaxDelay: 70 * time.Millisecond}}
	f := func(attempt int, want time.Duration) {
		t.Helper()
		if got := r.ceiling(attempt); got != want {
			t.Errorf("ceiling(%d) = %v, want %v", attempt, got, want)
		}
	}
	f(1, 10*time.Millisecond)
	f(2, 20*time.Millisecond)
	f(3, 40*time.Millisecond)
	f(4, 70*time.Millisecond)
	f(1000, 70*time.Millisecond)

	// A wait that would pass the deadline is not taken.
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	r.cfg.BaseDelay, r.cfg.MaxDelay = time.Hour, time.Hour
	start := time.Now()
	if r.backoff(ctx, 1) && ctx.Err() == nil {
		t.Error("backoff waited past the deadline")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("backoff took %v", d)
	}
}

func TestCodeOf(t *testing.T) {
	f := func(err error, want codes.Code) {
		t.Helper()
		if got := codeOf(err); got != want {
			t.Errorf("codeOf(%v) = %v, want %v", err, got, want)
		}
	}
	f(nil, codes.OK)
	f(status.Error(codes.NotFound, "x"), codes.NotFound)
	f(context.DeadlineExceeded, codes.DeadlineExceeded)
	f(context.Canceled, codes.Canceled)
	f(errors.New("plain"), codes.Unknown)
	f(&openError{target: "t", method: "/a.B/C"}, codes.Unavailable)
}

func TestLabels(t *testing.T) {
	if got, want := serverLabels("/surge.account.v1.Account/Login"), `service="surge.account.v1.Account",method="Login"`; got != want {
		t.Errorf("serverLabels = %s, want %s", got, want)
	}
	if got, want := clientLabels(`dns:///a"b\c`)("/s.S/M"), `target="dns:///a\"b\\c",method="s.S/M"`; got != want {
		t.Errorf("clientLabels = %s, want %s", got, want)
	}
}
