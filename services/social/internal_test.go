package social_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/surgechat/surge/services/social"
	"github.com/surgechat/surge/services/social/socialpb"
)

// TestInternalRPCsAccess: the internal RPCs refuse users and answer
// services and operators.
func TestInternalRPCsAccess(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		id := e.group(t, "alice", nil, []string{"bob"})
		calls := map[string]func(c socialpb.SocialClient) error{
			"GetMembership": func(c socialpb.SocialClient) error {
				_, err := c.GetMembership(bg, &socialpb.GroupRef{GroupId: id})
				return err
			},
			"CheckDirect": func(c socialpb.SocialClient) error {
				_, err := c.CheckDirect(bg, &socialpb.CheckDirectRequest{From: "alice", To: "bob"})
				return err
			},
			"ListFriendIDs": func(c socialpb.SocialClient) error {
				_, err := c.ListFriendIDs(bg, &socialpb.UserRef{User: "alice"})
				return err
			},
		}
		for name, call := range calls {
			t.Run(name, func(t *testing.T) {
				wantCode(t, call(e.as("alice")), codes.PermissionDenied, "services and operators only")
				wantCode(t, call(e.as("bob", "admin")), codes.PermissionDenied, "")
				if err := call(e.service()); err != nil {
					t.Errorf("service: %v", err)
				}
				if err := call(e.as("olga", social.RoleOperator)); err != nil {
					t.Errorf("operator: %v", err)
				}
			})
		}
	})
}

// TestGetMembership: members sorted by id; unknown and disbanded groups do
// not exist, the latter with its last version.
func TestGetMembership(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		m := e.membership(t, "0123456789abcdef")
		if m.Exists || m.Version != 0 || len(m.Members) != 0 || m.GroupId != "0123456789abcdef" {
			t.Errorf("unknown group: %v", m)
		}
		id := e.group(t, "zed", []string{"Bob"}, []string{"carol", "alice", "bob"})
		m = e.membership(t, id)
		// Byte order: upper case first; "Bob" and "bob" are two users.
		if !m.Exists || m.Version != 1 || !slices.Equal(m.Members, []string{"Bob", "alice", "bob", "carol", "zed"}) {
			t.Errorf("membership %v", m)
		}
		_, err := e.service().GetMembership(bg, &socialpb.GroupRef{GroupId: ""})
		wantCode(t, err, codes.InvalidArgument, "group id")
	})
}

// TestListFriendIDs: every friend, sorted, however many.
func TestListFriendIDs(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		for _, u := range []string{"d", "b", "c"} {
			e.befriend(t, u, "a")
		}
		got := must(e.service().ListFriendIDs(bg, &socialpb.UserRef{User: "a"}))(t).Users
		if !slices.Equal(got, []string{"b", "c", "d"}) {
			t.Errorf("a's friends %v", got)
		}
		got = must(e.service().ListFriendIDs(bg, &socialpb.UserRef{User: "nobody"}))(t).Users
		if len(got) != 0 {
			t.Errorf("nobody's friends %v", got)
		}
		_, err := e.service().ListFriendIDs(bg, &socialpb.UserRef{User: "no one"})
		wantCode(t, err, codes.InvalidArgument, "invalid user id")
	})
}

// TestDirectPolicy: "anyone" lets strangers talk, "friends" does not;
// blocks win under both; one may always message oneself.
func TestDirectPolicy(t *testing.T) {
	for _, policy := range []string{social.DirectAnyone, social.DirectFriends} {
		t.Run(policy, func(t *testing.T) {
			forEachDriver(t, func(c *social.Config) { c.DirectPolicy = policy }, func(t *testing.T, e *env) {
				f := func(from, to string, allowed bool, reason string) {
					t.Helper()
					ok, why := e.checkDirect(t, from, to)
					if ok != allowed || why != reason {
						t.Errorf("%s -> %s: %v %q, want %v %q", from, to, ok, why, allowed, reason)
					}
				}
				e.befriend(t, "alice", "bob")
				must(e.as("carol").Block(bg, &socialpb.UserRef{User: "dave"}))(t)
				f("alice", "bob", true, "")
				f("bob", "alice", true, "")
				f("alice", "alice", true, "")
				f("carol", "dave", false, "blocked")
				f("dave", "carol", false, "blocked")
				if policy == social.DirectFriends {
					f("alice", "carol", false, "not_friends")
					f("carol", "alice", false, "not_friends")
				} else {
					f("alice", "carol", true, "")
					f("carol", "alice", true, "")
				}
				_, err := e.service().CheckDirect(bg, &socialpb.CheckDirectRequest{From: "alice", To: ""})
				wantCode(t, err, codes.InvalidArgument, "to:")
			})
		})
	}
}

// TestUserExists: with the hook set, unknown users cannot be asked,
// added, or messaged, and a failing hook fails the call with Unavailable.
func TestUserExists(t *testing.T) {
	known := map[string]bool{"alice": true, "bob": true, "carol": true}
	var broken atomic.Bool
	hook := func(_ context.Context, user string) (bool, error) {
		if broken.Load() {
			return false, errors.New("account service down")
		}
		return known[user], nil
	}
	forEachDriver(t, func(c *social.Config) { c.UserExists, c.DirectNeedsAccount = hook, true }, func(t *testing.T, e *env) {
		broken.Store(false)
		alice := e.as("alice")
		_, err := alice.SendFriendRequest(bg, &socialpb.FriendRequestRequest{To: "ghost"})
		wantCode(t, err, codes.NotFound, "no such user: ghost")
		must(alice.SendFriendRequest(bg, &socialpb.FriendRequestRequest{To: "bob"}))(t)
		_, err = alice.CreateGroup(bg, &socialpb.CreateGroupRequest{Name: "g", Members: []string{"bob", "ghost"}})
		wantCode(t, err, codes.NotFound, "no such user: ghost")
		g := must(alice.CreateGroup(bg, &socialpb.CreateGroupRequest{Name: "g", Members: []string{"bob"}}))(t)
		_, err = alice.AddMembers(bg, &socialpb.AddMembersRequest{GroupId: g.Id, Users: []string{"carol", "ghost"}})
		wantCode(t, err, codes.NotFound, "no such user: ghost")
		if ok, why := e.checkDirect(t, "alice", "ghost"); ok || why != "no_such_user" {
			t.Errorf("CheckDirect to ghost: %v %q", ok, why)
		}
		if ok, why := e.checkDirect(t, "alice", "carol"); !ok {
			t.Errorf("CheckDirect to carol: %q", why)
		}

		broken.Store(true)
		_, err = alice.SendFriendRequest(bg, &socialpb.FriendRequestRequest{To: "carol"})
		wantCode(t, err, codes.Unavailable, "user lookup failed")
		_, err = e.service().CheckDirect(bg, &socialpb.CheckDirectRequest{From: "alice", To: "carol"})
		wantCode(t, err, codes.Unavailable, "user lookup failed")
		// Calls that add no one do not ask.
		must(e.as("bob").AcceptFriendRequest(bg, &socialpb.UserRef{User: "alice"}))(t)
		if got := e.metric("surge_social_user_exists_errors_total"); got != "2" {
			t.Errorf("lookup errors counted: %q, want 2", got)
		}
	})
	// Without DirectNeedsAccount, direct messages reach ids without an
	// account (development tokens, load generators); friends and groups
	// still need one.
	forEachDriver(t, func(c *social.Config) { c.UserExists = hook }, func(t *testing.T, e *env) {
		broken.Store(false)
		if ok, why := e.checkDirect(t, "alice", "ghost"); !ok {
			t.Errorf("CheckDirect to ghost without DirectNeedsAccount: %q", why)
		}
		_, err := e.as("alice").SendFriendRequest(bg, &socialpb.FriendRequestRequest{To: "ghost"})
		wantCode(t, err, codes.NotFound, "no such user: ghost")
	})
}
