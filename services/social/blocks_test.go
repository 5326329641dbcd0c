package social_test

import (
	"slices"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/surgechat/surge/services/social/socialpb"
)

// checkDirect asks the service, as a service, whether from may message to.
func (e *env) checkDirect(t *testing.T, from, to string) (bool, string) {
	t.Helper()
	r := must(e.service().CheckDirect(bg, &socialpb.CheckDirectRequest{From: from, To: to}))(t)
	return r.Allowed, r.Reason
}

// TestBlock: a block ends the friendship and the pending requests both
// ways, stops requests and direct messages both ways, and Unblock lifts
// it without bringing back what it removed.
func TestBlock(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		alice, bob := e.as("alice"), e.as("bob")
		e.befriend(t, "alice", "bob")
		must(alice.SendFriendRequest(bg, &socialpb.FriendRequestRequest{To: "carol"}))(t)
		must(e.as("dave").SendFriendRequest(bg, &socialpb.FriendRequestRequest{To: "alice"}))(t)

		must(alice.Block(bg, &socialpb.UserRef{User: "bob"}))(t)
		must(alice.Block(bg, &socialpb.UserRef{User: "bob"}))(t) // idempotent
		must(alice.Block(bg, &socialpb.UserRef{User: "carol"}))(t)
		must(alice.Block(bg, &socialpb.UserRef{User: "dave"}))(t)

		if got := e.friends(t, "alice"); len(got) != 0 {
			t.Errorf("alice's friends after block: %v", got)
		}
		if got := e.friends(t, "bob"); len(got) != 0 {
			t.Errorf("bob's friends after block: %v", got)
		}
		if r := must(alice.ListFriendRequests(bg, &socialpb.Empty{}))(t); len(r.Incoming)+len(r.Outgoing) != 0 {
			t.Errorf("alice's requests after blocks: %v", r)
		}
		if r := must(e.as("carol").ListFriendRequests(bg, &socialpb.Empty{}))(t); len(r.Incoming) != 0 {
			t.Errorf("carol's requests after block: %v", r)
		}
		_, err := alice.AcceptFriendRequest(bg, &socialpb.UserRef{User: "dave"})
		wantCode(t, err, codes.NotFound, "")

		_, err = bob.SendFriendRequest(bg, &socialpb.FriendRequestRequest{To: "alice"})
		wantCode(t, err, codes.FailedPrecondition, "blocked")
		_, err = alice.SendFriendRequest(bg, &socialpb.FriendRequestRequest{To: "bob"})
		wantCode(t, err, codes.FailedPrecondition, "blocked")
		for _, pair := range [][2]string{{"alice", "bob"}, {"bob", "alice"}} {
			if ok, reason := e.checkDirect(t, pair[0], pair[1]); ok || reason != "blocked" {
				t.Errorf("CheckDirect %s -> %s: %v %q, want blocked", pair[0], pair[1], ok, reason)
			}
		}

		if got := must(alice.ListBlocked(bg, &socialpb.Empty{}))(t).Users; !slices.Equal(got, []string{"bob", "carol", "dave"}) {
			t.Errorf("alice blocks %v", got)
		}
		if got := must(bob.ListBlocked(bg, &socialpb.Empty{}))(t).Users; len(got) != 0 {
			t.Errorf("bob blocks %v", got)
		}

		// Only the blocker can lift a block.
		must(bob.Unblock(bg, &socialpb.UserRef{User: "alice"}))(t)
		if ok, _ := e.checkDirect(t, "bob", "alice"); ok {
			t.Error("bob's unblock lifted alice's block")
		}
		must(alice.Unblock(bg, &socialpb.UserRef{User: "bob"}))(t)
		must(alice.Unblock(bg, &socialpb.UserRef{User: "bob"}))(t) // idempotent
		if ok, reason := e.checkDirect(t, "bob", "alice"); !ok {
			t.Errorf("after unblock: %q", reason)
		}
		if got := e.friends(t, "alice"); len(got) != 0 {
			t.Errorf("unblock restored friends: %v", got)
		}
		if got := must(alice.ListBlocked(bg, &socialpb.Empty{}))(t).Users; !slices.Equal(got, []string{"carol", "dave"}) {
			t.Errorf("alice blocks %v after unblock", got)
		}
		e.befriend(t, "bob", "alice")
	})
}

// TestBlockedByOther: a block by the other side stops the blocked user's
// requests and messages too.
func TestBlockedByOther(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		must(e.as("bob").Block(bg, &socialpb.UserRef{User: "alice"}))(t)
		_, err := e.as("alice").SendFriendRequest(bg, &socialpb.FriendRequestRequest{To: "bob"})
		wantCode(t, err, codes.FailedPrecondition, "blocked")
		if ok, reason := e.checkDirect(t, "alice", "bob"); ok || reason != "blocked" {
			t.Errorf("CheckDirect alice -> bob: %v %q", ok, reason)
		}
	})
}

// TestBlockValidation: one cannot block oneself or an invalid id.
func TestBlockValidation(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		_, err := e.as("alice").Block(bg, &socialpb.UserRef{User: "alice"})
		wantCode(t, err, codes.InvalidArgument, "yourself")
		_, err = e.as("alice").Unblock(bg, &socialpb.UserRef{User: ""})
		wantCode(t, err, codes.InvalidArgument, "invalid user id")
	})
}
