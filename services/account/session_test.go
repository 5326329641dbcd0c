package account

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/surgechat/surge/services/account/accountpb"
)

func TestServiceName(t *testing.T) {
	if ServiceName != accountpb.Account_ServiceDesc.ServiceName {
		t.Fatalf("ServiceName %q, generated code says %q", ServiceName, accountpb.Account_ServiceDesc.ServiceName)
	}
}

func TestRegister(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		ctx := ctxT(t)
		u, err := e.client.Register(ctx, &accountpb.RegisterRequest{Username: "Alice", Password: testPassword, DisplayName: " Alice A. "})
		if err != nil {
			t.Fatal(err)
		}
		if u.Id != "alice" || u.DisplayName != "Alice A." || !slices.Equal(u.Roles, []string{"user"}) || u.CreatedAt != e.clock.Now().UnixMilli() {
			t.Fatalf("registered %v", u)
		}

		f := func(name, username, password, display string, code codes.Code, msg string) {
			t.Helper()
			_, err := e.client.Register(ctx, &accountpb.RegisterRequest{Username: username, Password: password, DisplayName: display})
			if code == codes.OK {
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				return
			}
			wantCode(t, err, code, msg)
		}
		for _, bad := range []struct{ name, username, msg string }{
			{"empty", "", "username is required"},
			{"short", "ab", "3 to 32 characters"},
			{"long", "a" + strings.Repeat("b", 32), "3 to 32 characters"},
			{"digit first", "1bob", "start with a letter"},
			{"underscore first", "_bob", "start with a letter"},
			{"space", "bo b", "only letters a-z"},
			{"at", "bob@x", "only letters a-z"},
			{"unicode", "bøb", "only letters a-z"},
			{"slash", "bob/x", "only letters a-z"},
		} {
			f(bad.name, bad.username, testPassword, "", codes.InvalidArgument, bad.msg)
		}
		f("shortest", "abc", testPassword, "", codes.OK, "")
		f("longest", "a"+strings.Repeat("b", 31), testPassword, "", codes.OK, "")
		f("all symbols", "b0_.-z", testPassword, "", codes.OK, "")

		f("short password", "carol", "123456789", "", codes.InvalidArgument, "at least 10 characters")
		f("long password", "carol", strings.Repeat("p", 129), "", codes.InvalidArgument, "at most 128 characters")
		f("display name", "carol", testPassword, strings.Repeat("é", 65), codes.InvalidArgument, "display_name must be at most 64")
		f("display control", "carol", testPassword, "a\nb", codes.InvalidArgument, "control characters")
		f("ten runes", "carol", "éééééééééé", strings.Repeat("é", 64), codes.OK, "")

		f("duplicate", "alice", testPassword, "", codes.AlreadyExists, `username "alice" is taken`)
		f("duplicate case", "ALICE", testPassword, "", codes.AlreadyExists, `username "alice" is taken`)
	})
}

func TestRegisterOperators(t *testing.T) {
	forEachDriver(t, func(c *Config) { c.Operators = []string{"Root"} }, func(t *testing.T, e *env) {
		if u := e.register("root"); !slices.Equal(u.Roles, []string{"operator", "user"}) {
			t.Fatalf("root's roles %v", u.Roles)
		}
		if u := e.register("bob"); !slices.Equal(u.Roles, []string{"user"}) {
			t.Fatalf("bob's roles %v", u.Roles)
		}
	})
}

func TestLogin(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		ctx := ctxT(t)
		e.register("alice")
		tok, err := e.client.Login(ctx, &accountpb.LoginRequest{Username: "ALICE", Password: testPassword})
		if err != nil {
			t.Fatal(err)
		}
		now := e.clock.Now()
		if tok.User.GetId() != "alice" || tok.AccessToken == "" || tok.RefreshToken == "" ||
			tok.AccessExpiresAt != now.Add(DefaultAccessTTL).UnixMilli() ||
			tok.RefreshExpiresAt != now.Add(DefaultRefreshTTL).UnixMilli() {
			t.Fatalf("tokens %v", tok)
		}

		_, err = e.client.Login(ctx, &accountpb.LoginRequest{Username: "alice", Password: testPassword + "x"})
		wantCode(t, err, codes.Unauthenticated, "invalid username or password")
		wrong := status.Convert(err).Message()
		_, err = e.client.Login(ctx, &accountpb.LoginRequest{Username: "nobody", Password: testPassword})
		wantCode(t, err, codes.Unauthenticated, "invalid username or password")
		if unknown := status.Convert(err).Message(); unknown != wrong {
			t.Fatalf("unknown user says %q, wrong password %q: must not differ", unknown, wrong)
		}
		_, err = e.client.Login(ctx, &accountpb.LoginRequest{Username: "no such name!", Password: testPassword})
		wantCode(t, err, codes.Unauthenticated, wrong)
		_, err = e.client.Login(ctx, &accountpb.LoginRequest{Username: "alice"})
		wantCode(t, err, codes.InvalidArgument, "username and password are required")
	})
}

func TestLoginRehash(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		ctx := ctxT(t)
		e.register("alice")
		weaker := Argon2Params{Memory: 32, Time: 1, Threads: 1}
		old, err := hashPassword(testPassword, weaker)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.svc.db.setPasswordHash(ctx, "alice", mustUser(t, e, "alice").PasswordHash, old); err != nil {
			t.Fatal(err)
		}
		e.login("alice")
		h, err := parsePHC(mustUser(t, e, "alice").PasswordHash)
		if err != nil || h.params != testArgon2 {
			t.Fatalf("after login the hash has %+v (%v), want %+v", h.params, err, testArgon2)
		}
		e.login("alice")
	})
}

func mustUser(t *testing.T, e *env, id string) userRow {
	t.Helper()
	u, err := e.svc.db.user(ctxT(t), id)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestThrottleAccount(t *testing.T) {
	mutate := func(c *Config) {
		c.Throttle = ThrottleConfig{AccountFailures: 2, AddressFailures: -1, Window: time.Minute}
	}
	forEachDriver(t, mutate, func(t *testing.T, e *env) {
		ctx := ctxT(t)
		e.register("alice")
		fail := func() {
			t.Helper()
			_, err := e.client.Login(ctx, &accountpb.LoginRequest{Username: "alice", Password: "wrong password"})
			wantCode(t, err, codes.Unauthenticated, "invalid username or password")
		}
		// A success clears the account's count.
		fail()
		e.login("alice")
		fail()
		fail()
		// Now even the right password is refused until the window ends.
		_, err := e.client.Login(ctx, &accountpb.LoginRequest{Username: "alice", Password: testPassword})
		wantCode(t, err, codes.ResourceExhausted, "too many failed login attempts for this account; retry in 60 seconds")
		var retry *errdetails.RetryInfo
		for _, d := range status.Convert(err).Details() {
			if r, ok := d.(*errdetails.RetryInfo); ok {
				retry = r
			}
		}
		if retry == nil || retry.RetryDelay.AsDuration() != time.Minute {
			t.Fatalf("RetryInfo %v, want 60s", retry)
		}
		// Other accounts are not affected.
		e.register("bob")
		e.login("bob")

		e.clock.Advance(59 * time.Second)
		_, err = e.client.Login(ctx, &accountpb.LoginRequest{Username: "alice", Password: testPassword})
		wantCode(t, err, codes.ResourceExhausted, "retry in 1 seconds")
		e.clock.Advance(time.Second)
		e.login("alice")
	})
}

func TestThrottleAddress(t *testing.T) {
	mutate := func(c *Config) {
		c.Throttle = ThrottleConfig{AccountFailures: -1, AddressFailures: 3, Window: time.Minute}
		c.TrustForwardedFor = true
	}
	forEachDriver(t, mutate, func(t *testing.T, e *env) {
		ctx := ctxT(t)
		e.register("alice")
		attacker := from(ctx, "203.0.113.7, 10.0.0.1")
		for _, name := range []string{"alice", "bob", "carol"} {
			_, err := e.client.Login(attacker, &accountpb.LoginRequest{Username: name, Password: "wrong password"})
			wantCode(t, err, codes.Unauthenticated, "invalid username or password")
		}
		_, err := e.client.Login(attacker, &accountpb.LoginRequest{Username: "alice", Password: testPassword})
		wantCode(t, err, codes.ResourceExhausted, "too many failed login attempts from this address; retry in 60 seconds")
		// The account itself is not locked: another address logs in.
		if _, err := e.client.Login(from(ctx, "198.51.100.1"), &accountpb.LoginRequest{Username: "alice", Password: testPassword}); err != nil {
			t.Fatal(err)
		}
		// IPv6 addresses count per /64.
		for _, a := range []string{"2001:db8::1", "2001:db8::2", "2001:db8::3"} {
			_, err := e.client.Login(from(ctx, a), &accountpb.LoginRequest{Username: "alice", Password: "wrong password"})
			wantCode(t, err, codes.Unauthenticated, "invalid username or password")
		}
		_, err = e.client.Login(from(ctx, "2001:db8::4"), &accountpb.LoginRequest{Username: "alice", Password: testPassword})
		wantCode(t, err, codes.ResourceExhausted, "from this address")
		e.clock.Advance(time.Minute)
		if _, err := e.client.Login(attacker, &accountpb.LoginRequest{Username: "alice", Password: testPassword}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestThrottleIgnoresUntrustedForwardedFor(t *testing.T) {
	mutate := func(c *Config) {
		c.Throttle = ThrottleConfig{AccountFailures: -1, AddressFailures: 2, Window: time.Minute}
	}
	forEachDriver(t, mutate, func(t *testing.T, e *env) {
		ctx := ctxT(t)
		for _, a := range []string{"203.0.113.1", "203.0.113.2"} {
			_, err := e.client.Login(from(ctx, a), &accountpb.LoginRequest{Username: "alice", Password: "wrong password"})
			wantCode(t, err, codes.Unauthenticated, "invalid username or password")
		}
		// Both counted against the peer, 127.0.0.1.
		_, err := e.client.Login(from(ctx, "203.0.113.3"), &accountpb.LoginRequest{Username: "alice", Password: "wrong password"})
		wantCode(t, err, codes.ResourceExhausted, "from this address")
	})
}

// jwtParts decodes a JWT's header and claims without verifying it.
func jwtParts(t *testing.T, tok string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWT", tok)
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	return header, claims
}

func TestAccessToken(t *testing.T) {
	forEachDriver(t, func(c *Config) { c.AccessTTL = 5 * time.Minute }, func(t *testing.T, e *env) {
		e.register("alice")
		tok := e.login("alice")
		c, err := e.keys.Verify(tok.AccessToken, e.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if c.Subject != "alice" || !slices.Equal(c.Roles, []string{"user"}) {
			t.Fatalf("claims %+v", c)
		}
		if got := c.ExpiresAt.Time; !got.Equal(e.clock.Now().Add(5 * time.Minute).Truncate(time.Second)) {
			t.Fatalf("exp %v", got)
		}
		if h, _ := jwtParts(t, tok.AccessToken); h["kid"] != "k1" || h["alg"] != "HS256" {
			t.Fatalf("header %v", h)
		}
		// The token works on the service itself.
		if u, err := e.client.GetProfile(ctxT(t), &accountpb.GetProfileRequest{}, as(tok.AccessToken)); err != nil || u.Id != "alice" {
			t.Fatalf("GetProfile: %v, %v", u, err)
		}
	})
}

func TestRefreshRotates(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		e.register("alice")
		t1 := e.login("alice")
		e.clock.Advance(time.Second)
		t2, err := e.refresh(t1.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		if t2.RefreshToken == t1.RefreshToken || t2.AccessToken == t1.AccessToken || t2.User.GetId() != "alice" ||
			t2.RefreshExpiresAt != e.clock.Now().Add(DefaultRefreshTTL).UnixMilli() {
			t.Fatalf("refresh gave %v", t2)
		}
		if _, err := e.keys.Verify(t2.AccessToken, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		t3, err := e.refresh(t2.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.refresh(t3.RefreshToken); err != nil {
			t.Fatal(err)
		}

		_, err = e.refresh("")
		wantCode(t, err, codes.InvalidArgument, "refresh_token is required")
		_, err = e.refresh("not a token")
		wantCode(t, err, codes.Unauthenticated, "refresh token is not valid")
		_, err = e.refresh(strings.Repeat("A", 43)) // well-formed, never issued
		wantCode(t, err, codes.Unauthenticated, "refresh token is not valid")
	})
}

func TestRefreshReuseRevokesFamily(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		e.register("alice")
		other := e.login("alice") // another login: must survive
		t1 := e.login("alice")
		t2, err := e.refresh(t1.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.refresh(t1.RefreshToken) // the thief, or the victim, comes back
		wantCode(t, err, codes.Unauthenticated, "already used")
		_, err = e.refresh(t2.RefreshToken) // the newer token is dead too
		wantCode(t, err, codes.Unauthenticated, "revoked")
		_, err = e.refresh(t1.RefreshToken)
		wantCode(t, err, codes.Unauthenticated, "revoked")
		if _, err := e.refresh(other.RefreshToken); err != nil {
			t.Fatalf("the other login's token: %v", err)
		}
	})
}

func TestRefreshExpired(t *testing.T) {
	forEachDriver(t, func(c *Config) { c.RefreshTTL = time.Hour }, func(t *testing.T, e *env) {
		e.register("alice")
		t1 := e.login("alice")
		t2 := e.login("alice")
		e.clock.Advance(time.Hour - time.Millisecond)
		if _, err := e.refresh(t1.RefreshToken); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Millisecond)
		_, err := e.refresh(t2.RefreshToken)
		wantCode(t, err, codes.Unauthenticated, "refresh token has expired")

		// Expired rows are deleted by the cleanup.
		e.clock.Advance(time.Hour)
		if err := e.svc.cleanup(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		_, err = e.refresh(t2.RefreshToken)
		wantCode(t, err, codes.Unauthenticated, "not valid")
		var n int
		if err := e.svc.db.R.QueryRowContext(ctxT(t), "SELECT COUNT(*) FROM refresh_tokens").Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d refresh tokens left (%v), want 0", n, err)
		}
	})
}

func TestLogout(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		ctx := ctxT(t)
		e.register("alice")
		e.register("bob")
		t1 := e.login("alice")
		t2 := e.login("alice")
		bob := e.login("bob")
		t1b, err := e.refresh(t1.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}

		_, err = e.client.Logout(ctx, &accountpb.LogoutRequest{}, as(t1b.AccessToken))
		wantCode(t, err, codes.InvalidArgument, "set refresh_token, or all_sessions")
		_, err = e.client.Logout(ctx, &accountpb.LogoutRequest{RefreshToken: bob.RefreshToken}, as(t1b.AccessToken))
		wantCode(t, err, codes.NotFound, "refresh token not found")
		_, err = e.client.Logout(ctx, &accountpb.LogoutRequest{RefreshToken: "junk"}, as(t1b.AccessToken))
		wantCode(t, err, codes.NotFound, "refresh token not found")

		// Logging out with the first token of a login ends the login.
		if _, err := e.client.Logout(ctx, &accountpb.LogoutRequest{RefreshToken: t1.RefreshToken}, as(t1b.AccessToken)); err != nil {
			t.Fatal(err)
		}
		_, err = e.refresh(t1b.RefreshToken)
		wantCode(t, err, codes.Unauthenticated, "revoked")
		// Logging out again is fine.
		if _, err := e.client.Logout(ctx, &accountpb.LogoutRequest{RefreshToken: t1b.RefreshToken}, as(t1b.AccessToken)); err != nil {
			t.Fatal(err)
		}
		// The other login and the other user are untouched.
		t2b, err := e.refresh(t2.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		if bob, err = e.refresh(bob.RefreshToken); err != nil {
			t.Fatal(err)
		}

		// all_sessions ends every login.
		t3 := e.login("alice")
		if _, err := e.client.Logout(ctx, &accountpb.LogoutRequest{AllSessions: true}, as(t3.AccessToken)); err != nil {
			t.Fatal(err)
		}
		for _, tok := range []string{t2b.RefreshToken, t3.RefreshToken, t2.RefreshToken} {
			_, err = e.refresh(tok)
			wantCode(t, err, codes.Unauthenticated, "revoked")
		}
		if _, err := e.refresh(bob.RefreshToken); err != nil {
			t.Fatalf("bob: %v", err)
		}
	})
}

func TestCallsNeedAccessToken(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		ctx := ctxT(t)
		e.register("alice")
		expired, err := e.keys.Issue("alice", []string{"user"}, time.Minute, time.Now().Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			opts []grpc.CallOption
			msg  string
		}{
			{"none", nil, "missing token"},
			{"expired", []grpc.CallOption{as(expired)}, "token expired"},
			{"garbage", []grpc.CallOption{as("garbage")}, "invalid token"},
		} {
			opts := tc.opts
			_, err := e.client.GetProfile(ctx, &accountpb.GetProfileRequest{}, opts...)
			wantCode(t, err, codes.Unauthenticated, tc.msg)
			_, err = e.client.UpdateProfile(ctx, &accountpb.UpdateProfileRequest{}, opts...)
			wantCode(t, err, codes.Unauthenticated, tc.msg)
			_, err = e.client.Logout(ctx, &accountpb.LogoutRequest{AllSessions: true}, opts...)
			wantCode(t, err, codes.Unauthenticated, tc.msg)
			_, err = e.client.SetRoles(ctx, &accountpb.SetRolesRequest{UserId: "alice"}, opts...)
			wantCode(t, err, codes.Unauthenticated, tc.msg)
		}
	})
}
