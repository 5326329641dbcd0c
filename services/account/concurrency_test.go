package account

import (
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/surgechat/surge/services/account/accountpb"
)

// parallel runs f n times at once and returns the codes it ended with.
func parallel(n int, f func(i int) error) map[codes.Code]int {
	var mu sync.Mutex
	got := map[codes.Code]int{}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c := status.Code(f(i))
			mu.Lock()
			got[c]++
			mu.Unlock()
		})
	}
	wg.Wait()
	return got
}

// TestConcurrentRefresh: of several refreshes racing with one token,
// exactly one wins; the rest are reuse, which revokes the winner's login.
func TestConcurrentRefresh(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		e.register("alice")
		tok := e.login("alice")
		var mu sync.Mutex
		var won *accountpb.Tokens
		got := parallel(8, func(int) error {
			next, err := e.refresh(tok.RefreshToken)
			if err == nil {
				mu.Lock()
				won = next
				mu.Unlock()
			}
			return err
		})
		if got[codes.OK] != 1 || got[codes.Unauthenticated] != 7 {
			t.Fatalf("codes %v, want 1 OK and 7 Unauthenticated", got)
		}
		_, err := e.refresh(won.RefreshToken)
		wantCode(t, err, codes.Unauthenticated, "revoked")
	})
}

func TestConcurrentRegister(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		got := parallel(8, func(i int) error {
			name := "alice"
			if i%2 == 1 {
				name = "ALICE"
			}
			_, err := e.client.Register(ctxT(t), &accountpb.RegisterRequest{Username: name, Password: testPassword})
			return err
		})
		if got[codes.OK] != 1 || got[codes.AlreadyExists] != 7 {
			t.Fatalf("codes %v, want 1 OK and 7 AlreadyExists", got)
		}
	})
}

// TestConcurrentLoginThrottle: attempts count when they start, so a burst
// of guesses gets no more tries than the limit.
func TestConcurrentLoginThrottle(t *testing.T) {
	mutate := func(c *Config) {
		c.Throttle = ThrottleConfig{AccountFailures: 3, AddressFailures: -1, Window: time.Minute}
	}
	forEachDriver(t, mutate, func(t *testing.T, e *env) {
		e.register("alice")
		got := parallel(12, func(int) error {
			_, err := e.client.Login(ctxT(t), &accountpb.LoginRequest{Username: "alice", Password: "wrong password"})
			return err
		})
		if got[codes.Unauthenticated] != 3 || got[codes.ResourceExhausted] != 9 {
			t.Fatalf("codes %v, want 3 Unauthenticated and 9 ResourceExhausted", got)
		}
	})
}
