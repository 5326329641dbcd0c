package account

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/surgechat/surge/services/account/accountpb"
)

func TestGetProfile(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		ctx := ctxT(t)
		alice := e.register("alice")
		bob := e.register("bob")
		tok := e.login("alice")

		self, err := e.client.GetProfile(ctx, &accountpb.GetProfileRequest{}, as(tok.AccessToken))
		if err != nil || !proto.Equal(self, alice) {
			t.Fatalf("self: %v, %v; want %v", self, err, alice)
		}
		other, err := e.client.GetProfile(ctx, &accountpb.GetProfileRequest{UserId: "Bob"}, as(tok.AccessToken))
		if err != nil || !proto.Equal(other, bob) {
			t.Fatalf("other: %v, %v; want %v", other, err, bob)
		}
		_, err = e.client.GetProfile(ctx, &accountpb.GetProfileRequest{UserId: "carol"}, as(tok.AccessToken))
		wantCode(t, err, codes.NotFound, `user "carol" not found`)
		_, err = e.client.GetProfile(ctx, &accountpb.GetProfileRequest{UserId: "no way"}, as(tok.AccessToken))
		wantCode(t, err, codes.InvalidArgument, "user_id is not a valid user id")

		// A valid token for a user that has no account.
		ghost, err := e.keys.Issue("ghost", []string{"user"}, DefaultAccessTTL, e.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.client.GetProfile(ctx, &accountpb.GetProfileRequest{}, as(ghost))
		wantCode(t, err, codes.NotFound, `user "ghost" not found`)
	})
}

func TestUpdateProfile(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		ctx := ctxT(t)
		e.register("alice")
		tok := as(e.login("alice").AccessToken)

		u, err := e.client.UpdateProfile(ctx, &accountpb.UpdateProfileRequest{
			DisplayName: proto.String(" Alice "),
			Bio:         proto.String("line one\r\nline two\twith a tab"),
			AvatarUrl:   proto.String("https://cdn.example.com/a.png?s=64"),
		}, tok)
		if err != nil {
			t.Fatal(err)
		}
		if u.DisplayName != "Alice" || u.Bio != "line one\r\nline two\twith a tab" || u.AvatarUrl != "https://cdn.example.com/a.png?s=64" {
			t.Fatalf("updated %v", u)
		}
		// Unset fields stay; an empty string clears.
		u, err = e.client.UpdateProfile(ctx, &accountpb.UpdateProfileRequest{AvatarUrl: proto.String("")}, tok)
		if err != nil || u.DisplayName != "Alice" || u.AvatarUrl != "" || u.Bio == "" {
			t.Fatalf("updated %v, %v", u, err)
		}
		if u, err = e.client.UpdateProfile(ctx, &accountpb.UpdateProfileRequest{}, tok); err != nil || u.DisplayName != "Alice" {
			t.Fatalf("empty update: %v, %v", u, err)
		}
		got, err := e.client.GetProfile(ctx, &accountpb.GetProfileRequest{UserId: "alice"}, tok)
		if err != nil || !proto.Equal(got, u) {
			t.Fatalf("GetProfile after update: %v, %v; want %v", got, err, u)
		}

		f := func(req *accountpb.UpdateProfileRequest, msg string) {
			t.Helper()
			_, err := e.client.UpdateProfile(ctx, req, tok)
			wantCode(t, err, codes.InvalidArgument, msg)
		}
		f(&accountpb.UpdateProfileRequest{DisplayName: proto.String(strings.Repeat("x", 65))}, "display_name must be at most 64 characters")
		f(&accountpb.UpdateProfileRequest{DisplayName: proto.String("a\tb")}, "display_name must not contain control characters")
		f(&accountpb.UpdateProfileRequest{Bio: proto.String(strings.Repeat("ü", 513))}, "bio must be at most 512 characters")
		f(&accountpb.UpdateProfileRequest{Bio: proto.String("bell\a")}, "bio must not contain control characters")
		for _, bad := range []string{"ftp://example.com/a.png", "example.com/a.png", "https://", "javascript:alert(1)", "https://u:p@example.com/a.png", "https://example.com/a b.png"} {
			f(&accountpb.UpdateProfileRequest{AvatarUrl: proto.String(bad)}, "avatar_url must")
		}
		f(&accountpb.UpdateProfileRequest{AvatarUrl: proto.String("https://example.com/" + strings.Repeat("a", 493))}, "avatar_url must be at most 512 bytes")
		// Limits are inclusive; a failed update changed nothing.
		u, err = e.client.UpdateProfile(ctx, &accountpb.UpdateProfileRequest{
			DisplayName: proto.String(strings.Repeat("ü", 64)),
			Bio:         proto.String(strings.Repeat("ü", 512)),
			AvatarUrl:   proto.String("http://example.com/" + strings.Repeat("a", 493)),
		}, tok)
		if err != nil {
			t.Fatal(err)
		}
		if len(u.AvatarUrl) != 512 {
			t.Fatalf("avatar_url of %d bytes", len(u.AvatarUrl))
		}
	})
}

func TestSetRoles(t *testing.T) {
	forEachDriver(t, func(c *Config) { c.Operators = []string{"root"} }, func(t *testing.T, e *env) {
		ctx := ctxT(t)
		e.register("root")
		e.register("alice")
		e.register("bob")
		alice := e.login("alice")
		root := as(e.login("root").AccessToken)

		_, err := e.client.SetRoles(ctx, &accountpb.SetRolesRequest{UserId: "bob", Roles: []string{"operator"}}, as(alice.AccessToken))
		wantCode(t, err, codes.PermissionDenied, "requires role operator")

		u, err := e.client.SetRoles(ctx, &accountpb.SetRolesRequest{UserId: "Alice", Roles: []string{"operator", "operator"}}, root)
		if err != nil || !slices.Equal(u.Roles, []string{"operator", "user"}) {
			t.Fatalf("SetRoles: %v, %v", u, err)
		}
		// The new role reaches alice's tokens at her next refresh.
		next, err := e.refresh(alice.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		c, err := e.keys.Verify(next.AccessToken, e.clock.Now())
		if err != nil || !slices.Equal(c.Roles, []string{"operator", "user"}) {
			t.Fatalf("refreshed claims %+v, %v", c, err)
		}
		if _, err := e.client.SetRoles(ctx, &accountpb.SetRolesRequest{UserId: "bob", Roles: []string{"operator"}}, as(next.AccessToken)); err != nil {
			t.Fatalf("alice as operator: %v", err)
		}
		// Roles are replaced; "user" always stays.
		u, err = e.client.SetRoles(ctx, &accountpb.SetRolesRequest{UserId: "bob"}, root)
		if err != nil || !slices.Equal(u.Roles, []string{"user"}) {
			t.Fatalf("SetRoles none: %v, %v", u, err)
		}

		_, err = e.client.SetRoles(ctx, &accountpb.SetRolesRequest{UserId: "bob", Roles: []string{"admin"}}, root)
		wantCode(t, err, codes.InvalidArgument, `unknown role "admin"; roles are operator, user`)
		_, err = e.client.SetRoles(ctx, &accountpb.SetRolesRequest{Roles: []string{"user"}}, root)
		wantCode(t, err, codes.InvalidArgument, "user_id is required")
		_, err = e.client.SetRoles(ctx, &accountpb.SetRolesRequest{UserId: "carol"}, root)
		wantCode(t, err, codes.NotFound, `user "carol" not found`)
		_, err = e.client.SetRoles(ctx, &accountpb.SetRolesRequest{UserId: "root", Roles: []string{"user"}}, root)
		wantCode(t, err, codes.FailedPrecondition, "cannot remove their own operator role")
		if got := mustUser(t, e, "root").Roles; !slices.Equal(got, []string{"operator", "user"}) {
			t.Fatalf("root's roles %v", got)
		}
	})
}

// TestServiceCaller: the service token may read profiles, not act as a
// user.
func TestServiceCaller(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		e.register("alice")
		ctx, svc := ctxT(t), as(serviceToken)
		if u, err := e.client.GetProfile(ctx, &accountpb.GetProfileRequest{UserId: "alice"}, svc); err != nil || u.Id != "alice" {
			t.Fatalf("GetProfile: %v, %v", u, err)
		}
		_, err := e.client.GetProfile(ctx, &accountpb.GetProfileRequest{}, svc)
		wantCode(t, err, codes.PermissionDenied, "needs a user's access token")
		_, err = e.client.UpdateProfile(ctx, &accountpb.UpdateProfileRequest{Bio: proto.String("x")}, svc)
		wantCode(t, err, codes.PermissionDenied, "needs a user's access token")
		_, err = e.client.Logout(ctx, &accountpb.LogoutRequest{AllSessions: true}, svc)
		wantCode(t, err, codes.PermissionDenied, "needs a user's access token")
		_, err = e.client.SetRoles(ctx, &accountpb.SetRolesRequest{UserId: "alice"}, svc)
		wantCode(t, err, codes.PermissionDenied, "requires role operator")
	})
}
