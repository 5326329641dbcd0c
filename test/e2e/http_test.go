package e2e

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/surgechat/surge/client"
	"github.com/surgechat/surge/internal/auth"
)

// user is the API's User.
type user struct {
	ID          string   `json:"id"`
	DisplayName string   `json:"display_name"`
	Bio         string   `json:"bio"`
	AvatarURL   string   `json:"avatar_url"`
	Roles       []string `json:"roles"`
	CreatedAt   string   `json:"created_at"`
}

// checkError checks an error answer: status, JSON body with code, and the
// headers every error carries.
func checkError(t *testing.T, r apiResult, status int, code string) {
	t.Helper()
	if r.Status != status || r.errCode() != code {
		t.Fatalf("HTTP %d %s, want %d %s", r.Status, r.Body, status, code)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error Content-Type %q", ct)
	}
	if status == 401 && r.Header.Get("WWW-Authenticate") != `Bearer realm="surge"` {
		t.Fatalf("401 without WWW-Authenticate: %v", r.Header)
	}
}

// TestHTTPAccounts registers, logs in, reads and changes profiles, and
// uses the access token on the WebSocket.
func TestHTTPAccounts(t *testing.T) {
	s := startServer(t)
	var u user
	s.mustAPI(201, "POST", "/v1/accounts", "", map[string]string{
		"username": "alice", "password": password("alice"), "display_name": "Alice"}, &u)
	if u.ID != "alice" || u.DisplayName != "Alice" || len(u.Roles) != 1 || u.Roles[0] != "user" || u.CreatedAt == "" {
		t.Fatalf("registered %+v", u)
	}
	s.register("bob")
	s.register("carol")
	checkError(t, s.api("POST", "/v1/accounts", "", map[string]string{"username": "alice", "password": password("x")}), 409, "ALREADY_EXISTS")
	checkError(t, s.api("POST", "/v1/accounts", "", map[string]string{"username": "dave", "password": "short"}), 400, "INVALID_ARGUMENT")
	checkError(t, s.api("POST", "/v1/accounts", "", map[string]string{"usernme": "dave"}), 400, "INVALID_ARGUMENT")
	// The sender of server-side publishes cannot be registered and posed as.
	checkError(t, s.api("POST", "/v1/accounts", "", map[string]string{"username": "system", "password": password("system")}), 400, "INVALID_ARGUMENT")
	checkError(t, s.api("POST", "/v1/auth/login", "", map[string]string{"username": "alice", "password": "wrong-password-1"}), 401, "UNAUTHENTICATED")
	checkError(t, s.api("POST", "/v1/auth/login", "", map[string]string{"username": "nobody", "password": "wrong-password-1"}), 401, "UNAUTHENTICATED")

	tk := s.login("alice")
	s.mustAPI(200, "GET", "/v1/me", tk.Access, nil, &u)
	if u.ID != "alice" || u.DisplayName != "Alice" {
		t.Fatalf("GET /v1/me: %+v", u)
	}
	s.mustAPI(200, "PATCH", "/v1/me", tk.Access, map[string]string{"bio": "walks", "avatar_url": "https://cdn.example.com/a.png"}, &u)
	if u.Bio != "walks" || u.AvatarURL != "https://cdn.example.com/a.png" || u.DisplayName != "Alice" {
		t.Fatalf("PATCH /v1/me: %+v", u)
	}
	s.mustAPI(200, "PATCH", "/v1/me", tk.Access, map[string]string{"display_name": ""}, &u)
	if u.DisplayName != "" || u.Bio != "walks" {
		t.Fatalf("PATCH clearing display_name: %+v", u)
	}
	checkError(t, s.api("PATCH", "/v1/me", tk.Access, map[string]string{"avatar_url": "ftp://x"}), 400, "INVALID_ARGUMENT")
	s.mustAPI(200, "GET", "/v1/users/bob", tk.Access, nil, &u)
	if u.ID != "bob" {
		t.Fatalf("GET /v1/users/bob: %+v", u)
	}
	checkError(t, s.api("GET", "/v1/users/nobody", tk.Access, nil), 404, "NOT_FOUND")
	checkError(t, s.api("PUT", "/v1/users/bob/roles", tk.Access, map[string]any{"roles": []string{"operator"}}), 403, "PERMISSION_DENIED")

	// The access token opens the WebSocket as alice.
	c, _ := s.dialToken(tk.Access, client.Options{})
	if c.User() != "alice" {
		t.Fatalf("WebSocket user %q", c.User())
	}
	// The gateway's own errors are JSON too.
	checkError(t, s.api("GET", "/v1/nope", tk.Access, nil), 404, "NOT_FOUND")
	r := s.api("DELETE", "/v1/me", tk.Access, nil)
	checkError(t, r, 405, "METHOD_NOT_ALLOWED")
	if !strings.Contains(r.Header.Get("Allow"), "PATCH") {
		t.Fatalf("405 Allow: %q", r.Header.Get("Allow"))
	}
}

// TestHTTPTokens covers refresh rotation, logout, and bad, expired and
// missing access tokens on the API and the WebSocket.
func TestHTTPTokens(t *testing.T) {
	s := startServer(t)
	s.register("alice")
	first := s.login("alice")

	var second tokens
	s.mustAPI(200, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": first.Refresh}, &second)
	if second.Refresh == "" || second.Refresh == first.Refresh || second.Access == "" {
		t.Fatalf("refresh gave %+v", second)
	}
	s.mustAPI(200, "GET", "/v1/me", second.Access, nil, nil)
	// The old refresh token is spent; presenting it again revokes the
	// whole login, the rotated token included.
	checkError(t, s.api("POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": first.Refresh}), 401, "UNAUTHENTICATED")
	checkError(t, s.api("POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": second.Refresh}), 401, "UNAUTHENTICATED")

	// Logout revokes a refresh token; the access token stays valid until it
	// expires.
	third := s.login("alice")
	checkError(t, s.api("POST", "/v1/auth/logout", third.Access, map[string]string{}), 400, "INVALID_ARGUMENT")
	s.mustAPI(204, "POST", "/v1/auth/logout", third.Access, map[string]string{"refresh_token": third.Refresh}, nil)
	checkError(t, s.api("POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": third.Refresh}), 401, "UNAUTHENTICATED")
	s.mustAPI(200, "GET", "/v1/me", third.Access, nil, nil)
	// all_sessions revokes every login.
	a, b := s.login("alice"), s.login("alice")
	s.mustAPI(204, "POST", "/v1/auth/logout", a.Access, map[string]any{"all_sessions": true}, nil)
	checkError(t, s.api("POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": a.Refresh}), 401, "UNAUTHENTICATED")
	checkError(t, s.api("POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": b.Refresh}), 401, "UNAUTHENTICATED")

	// An access token signed by this deployment's keys but long expired.
	keys, err := auth.LoadOrCreateKeyring(filepath.Join(s.dataDir, "keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	expired, err := keys.Issue("alice", []string{"user"}, time.Minute, time.Now().Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{
		"none": "", "garbage": "garbage", "expired": expired,
		"tampered": third.Access[:len(third.Access)-3] + "abc",
		"refresh":  third.Refresh, // a refresh token is not an access token
	} {
		r := s.api("GET", "/v1/me", tok, nil)
		if r.Status != 401 {
			t.Fatalf("%s token: HTTP %d %s, want 401", name, r.Status, r.Body)
		}
		checkError(t, r, 401, "UNAUTHENTICATED")
		if name == "none" {
			continue
		}
		_, err := client.Dial(ctxT(t), s.url(), tok, client.Options{})
		var de *client.DialError
		if !errors.As(err, &de) || de.Status != 401 {
			t.Fatalf("%s token on the WebSocket: %v, want HTTP 401", name, err)
		}
	}
	if r := s.api("GET", "/v1/me", expired, nil); !strings.Contains(string(r.Body), "expired") {
		t.Fatalf("expired token answer does not say so: %s", r.Body)
	}
}

// TestHTTPFriendsAndGroups: friend requests, the friend list, and a
// group's life: create, list, add and remove members, roles, disband.
func TestHTTPFriendsAndGroups(t *testing.T) {
	s := startServer(t)
	tok := s.users("alice", "bob", "carol", "dave")

	var fr struct{ From, To, Message string }
	s.mustAPI(201, "POST", "/v1/friends/requests", tok["alice"], map[string]string{"to": "bob", "message": "hi"}, &fr)
	if fr.From != "alice" || fr.To != "bob" || fr.Message != "hi" {
		t.Fatalf("friend request %+v", fr)
	}
	var reqs struct{ Incoming, Outgoing []struct{ From, To string } }
	s.mustAPI(200, "GET", "/v1/friends/requests", tok["bob"], nil, &reqs)
	if len(reqs.Incoming) != 1 || reqs.Incoming[0].From != "alice" || len(reqs.Outgoing) != 0 {
		t.Fatalf("bob's requests %+v", reqs)
	}
	checkError(t, s.api("POST", "/v1/friends/requests/carol/accept", tok["bob"], nil), 404, "NOT_FOUND")
	var f struct{ User, Since string }
	s.mustAPI(200, "POST", "/v1/friends/requests/alice/accept", tok["bob"], nil, &f)
	if f.User != "alice" || f.Since == "" {
		t.Fatalf("accept: %+v", f)
	}
	checkError(t, s.api("POST", "/v1/friends/requests", tok["alice"], map[string]string{"to": "bob"}), 409, "ALREADY_EXISTS")
	s.mustAPI(201, "POST", "/v1/friends/requests", tok["carol"], map[string]string{"to": "alice"}, nil)
	s.mustAPI(200, "POST", "/v1/friends/requests/carol/accept", tok["alice"], nil, nil)
	var fl struct {
		Friends       []struct{ User string } `json:"friends"`
		NextPageToken string                  `json:"next_page_token"`
	}
	s.mustAPI(200, "GET", "/v1/friends?page_size=1", tok["alice"], nil, &fl)
	if len(fl.Friends) != 1 || fl.Friends[0].User != "bob" || fl.NextPageToken == "" {
		t.Fatalf("alice's first page of friends %+v", fl)
	}
	s.mustAPI(200, "GET", "/v1/friends?page_size=1&page_token="+fl.NextPageToken, tok["alice"], nil, &fl)
	if len(fl.Friends) != 1 || fl.Friends[0].User != "carol" || fl.NextPageToken != "" {
		t.Fatalf("alice's second page of friends %+v", fl)
	}
	s.mustAPI(200, "GET", "/v1/friends", tok["bob"], nil, &fl)
	if len(fl.Friends) != 1 || fl.Friends[0].User != "alice" {
		t.Fatalf("bob's friends %+v", fl)
	}
	checkError(t, s.api("GET", "/v1/friends?pagesize=1", tok["bob"], nil), 400, "INVALID_ARGUMENT")

	// A group with bob and carol.
	var g group
	s.mustAPI(201, "POST", "/v1/groups", tok["alice"], map[string]any{"name": "Hikers", "members": []string{"bob", "carol"}}, &g)
	if g.Owner != "alice" || g.MemberCount != 3 || g.MyRole != "owner" || g.Version == "" {
		t.Fatalf("created %+v", g)
	}
	gid := g.ID
	type member struct{ User, Role string }
	members := func(token string) []member {
		t.Helper()
		var ms struct{ Members []member }
		s.mustAPI(200, "GET", "/v1/groups/"+gid+"/members", token, nil, &ms)
		return ms.Members
	}
	if ms := members(tok["bob"]); len(ms) != 3 || ms[0] != (member{"alice", "owner"}) || ms[1] != (member{"bob", "member"}) || ms[2] != (member{"carol", "member"}) {
		t.Fatalf("members %+v", ms)
	}
	var mine struct{ Groups []group }
	s.mustAPI(200, "GET", "/v1/groups", tok["carol"], nil, &mine)
	if len(mine.Groups) != 1 || mine.Groups[0].ID != gid || mine.Groups[0].MyRole != "member" {
		t.Fatalf("carol's groups %+v", mine)
	}
	// Not a member, not found: group ids cannot be probed.
	checkError(t, s.api("GET", "/v1/groups/"+gid, tok["dave"], nil), 404, "NOT_FOUND")
	checkError(t, s.api("GET", "/v1/groups/0123456789abcdef", tok["alice"], nil), 404, "NOT_FOUND")
	checkError(t, s.api("POST", "/v1/groups/0123456789abcdef/members", tok["alice"], map[string]any{"users": []string{"dave"}}), 404, "NOT_FOUND")

	before := g.Version
	s.mustAPI(200, "POST", "/v1/groups/"+gid+"/members", tok["alice"], map[string]any{"users": []string{"dave"}}, &g)
	if g.MemberCount != 4 || g.Version == before {
		t.Fatalf("after adding dave %+v (version before %s)", g, before)
	}
	checkError(t, s.api("POST", "/v1/groups/"+gid+"/members", tok["bob"], map[string]any{"users": []string{"dave"}}), 403, "PERMISSION_DENIED")
	s.mustAPI(204, "DELETE", "/v1/groups/"+gid+"/members/carol", tok["alice"], nil, nil)
	if ms := members(tok["alice"]); len(ms) != 3 || ms[2].User != "dave" {
		t.Fatalf("members after removing carol %+v", ms)
	}
	var m member
	s.mustAPI(200, "PUT", "/v1/groups/"+gid+"/members/bob/role", tok["alice"], map[string]string{"role": "admin"}, &m)
	if m != (member{"bob", "admin"}) {
		t.Fatalf("set role: %+v", m)
	}
	// An admin removes plain members but may not disband; nor may a member.
	s.mustAPI(204, "DELETE", "/v1/groups/"+gid+"/members/dave", tok["bob"], nil, nil)
	checkError(t, s.api("DELETE", "/v1/groups/"+gid, tok["bob"], nil), 403, "PERMISSION_DENIED")
	s.mustAPI(200, "POST", "/v1/groups/"+gid+"/members", tok["bob"], map[string]any{"users": []string{"dave"}}, nil)
	checkError(t, s.api("DELETE", "/v1/groups/"+gid, tok["dave"], nil), 403, "PERMISSION_DENIED")
	// The owner must hand over before leaving.
	checkError(t, s.api("POST", "/v1/groups/"+gid+"/leave", tok["alice"], nil), 400, "FAILED_PRECONDITION")
	s.mustAPI(204, "POST", "/v1/groups/"+gid+"/leave", tok["dave"], nil, nil)
	s.mustAPI(204, "DELETE", "/v1/groups/"+gid, tok["alice"], nil, nil)
	checkError(t, s.api("GET", "/v1/groups/"+gid, tok["alice"], nil), 404, "NOT_FOUND")
	checkError(t, s.api("DELETE", "/v1/groups/"+gid, tok["alice"], nil), 404, "NOT_FOUND")
}
