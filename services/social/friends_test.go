package social_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/surgechat/surge/services/social/socialpb"
)

// TestFriendRequestFlow: send, list both sides, refuse duplicates, accept,
// and the friendship shows on both sides.
func TestFriendRequestFlow(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		alice, bob := e.as("alice"), e.as("bob")
		r := must(alice.SendFriendRequest(bg, &socialpb.FriendRequestRequest{To: "bob", Message: "hi bob"}))(t)
		if r.From != "alice" || r.To != "bob" || r.Message != "hi bob" || r.CreatedAt == 0 {
			t.Fatalf("request %v", r)
		}
		_, err := alice.SendFriendRequest(bg, &socialpb.FriendRequestRequest{To: "bob"})
		wantCode(t, err, codes.AlreadyExists, "already sent")

		ra := must(alice.ListFriendRequests(bg, &socialpb.Empty{}))(t)
		if len(ra.Incoming) != 0 || len(ra.Outgoing) != 1 || ra.Outgoing[0].To != "bob" {
			t.Fatalf("alice's requests: %v", ra)
		}
		rb := must(bob.ListFriendRequests(bg, &socialpb.Empty{}))(t)
		if len(rb.Outgoing) != 0 || len(rb.Incoming) != 1 || rb.Incoming[0].From != "alice" || rb.Incoming[0].Message != "hi bob" {
			t.Fatalf("bob's requests: %v", rb)
		}

		_, err = alice.AcceptFriendRequest(bg, &socialpb.UserRef{User: "bob"})
		wantCode(t, err, codes.NotFound, "no friend request from bob")
		f := must(bob.AcceptFriendRequest(bg, &socialpb.UserRef{User: "alice"}))(t)
		if f.User != "alice" || f.Since == 0 {
			t.Fatalf("accepted: %v", f)
		}
		_, err = bob.AcceptFriendRequest(bg, &socialpb.UserRef{User: "alice"})
		wantCode(t, err, codes.NotFound, "")

		if got := e.friends(t, "alice"); !slices.Equal(got, []string{"bob"}) {
			t.Errorf("alice's friends: %v", got)
		}
		if got := e.friends(t, "bob"); !slices.Equal(got, []string{"alice"}) {
			t.Errorf("bob's friends: %v", got)
		}
		for _, u := range []string{"alice", "bob"} {
			r := must(e.as(u).ListFriendRequests(bg, &socialpb.Empty{}))(t)
			if len(r.Incoming)+len(r.Outgoing) != 0 {
				t.Errorf("%s still has requests: %v", u, r)
			}
		}
		_, err = bob.SendFriendRequest(bg, &socialpb.FriendRequestRequest{To: "alice"})
		wantCode(t, err, codes.AlreadyExists, "already friends")
	})
}

// TestFriendRequestReverseAccepts: asking someone who already asked you
// accepts their request; the answer is their request.
func TestFriendRequestReverseAccepts(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		must(e.as("alice").SendFriendRequest(bg, &socialpb.FriendRequestRequest{To: "bob", Message: "from alice"}))(t)
		r := must(e.as("bob").SendFriendRequest(bg, &socialpb.FriendRequestRequest{To: "alice", Message: "from bob"}))(t)
		if r.From != "alice" || r.To != "bob" || r.Message != "from alice" {
			t.Fatalf("reverse request answered %v, want alice's request", r)
		}
		if got := e.friends(t, "alice"); !slices.Equal(got, []string{"bob"}) {
			t.Errorf("alice's friends: %v", got)
		}
		if got := e.friends(t, "bob"); !slices.Equal(got, []string{"alice"}) {
			t.Errorf("bob's friends: %v", got)
		}
		r2 := must(e.as("bob").ListFriendRequests(bg, &socialpb.Empty{}))(t)
		if len(r2.Incoming)+len(r2.Outgoing) != 0 {
			t.Errorf("requests left: %v", r2)
		}
	})
}

// TestDeclineAndRemove: a declined request is gone and may be sent again;
// removing a friend removes the friendship both ways.
func TestDeclineAndRemove(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		alice, bob := e.as("alice"), e.as("bob")
		must(alice.SendFriendRequest(bg, &socialpb.FriendRequestRequest{To: "bob"}))(t)
		_, err := alice.DeclineFriendRequest(bg, &socialpb.UserRef{User: "bob"})
		wantCode(t, err, codes.NotFound, "no friend request from bob")
		must(bob.DeclineFriendRequest(bg, &socialpb.UserRef{User: "alice"}))(t)
		_, err = bob.DeclineFriendRequest(bg, &socialpb.UserRef{User: "alice"})
		wantCode(t, err, codes.NotFound, "")
		if r := must(alice.ListFriendRequests(bg, &socialpb.Empty{}))(t); len(r.Outgoing) != 0 {
			t.Fatalf("declined request still listed: %v", r)
		}
		if got := e.friends(t, "alice"); len(got) != 0 {
			t.Fatalf("friends after decline: %v", got)
		}

		e.befriend(t, "alice", "bob")
		must(bob.RemoveFriend(bg, &socialpb.UserRef{User: "alice"}))(t)
		if got := e.friends(t, "alice"); len(got) != 0 {
			t.Errorf("alice's friends after removal: %v", got)
		}
		if got := e.friends(t, "bob"); len(got) != 0 {
			t.Errorf("bob's friends after removal: %v", got)
		}
		_, err = alice.RemoveFriend(bg, &socialpb.UserRef{User: "bob"})
		wantCode(t, err, codes.NotFound, "not friends")
	})
}

// TestFriendRequestValidation: bad arguments are InvalidArgument.
func TestFriendRequestValidation(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		alice := e.as("alice")
		f := func(req *socialpb.FriendRequestRequest, msg string) {
			t.Helper()
			_, err := alice.SendFriendRequest(bg, req)
			wantCode(t, err, codes.InvalidArgument, msg)
		}
		f(&socialpb.FriendRequestRequest{To: "alice"}, "yourself")
		f(&socialpb.FriendRequestRequest{To: ""}, "invalid user id")
		f(&socialpb.FriendRequestRequest{To: "bad id"}, "invalid user id")
		f(&socialpb.FriendRequestRequest{To: strings.Repeat("x", 65)}, "invalid user id")
		f(&socialpb.FriendRequestRequest{To: "bob", Message: strings.Repeat("é", 257)}, "256 characters")
		// 256 characters of two bytes each fit.
		must(alice.SendFriendRequest(bg, &socialpb.FriendRequestRequest{To: "bob", Message: strings.Repeat("é", 256)}))(t)

		_, err := alice.AcceptFriendRequest(bg, &socialpb.UserRef{User: "no/such"})
		wantCode(t, err, codes.InvalidArgument, "invalid user id")
		_, err = alice.RemoveFriend(bg, &socialpb.UserRef{User: "alice"})
		wantCode(t, err, codes.InvalidArgument, "yourself")
	})
}

// TestListFriendsPaging: pages are in id order, sized as asked, and the
// token walks the whole list once.
func TestListFriendsPaging(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		var want []string
		for i := range 7 {
			u := fmt.Sprintf("u%d", 6-i) // befriended out of order
			e.befriend(t, u, "alice")
			want = append(want, u)
		}
		slices.Sort(want)
		alice := e.as("alice")
		var got []string
		var sizes []int
		token := ""
		for {
			r := must(alice.ListFriends(bg, &socialpb.PageRequest{PageSize: 3, PageToken: token}))(t)
			sizes = append(sizes, len(r.Friends))
			for _, f := range r.Friends {
				got = append(got, f.User)
				if f.Since == 0 {
					t.Errorf("friend %s without since", f.User)
				}
			}
			if token = r.NextPageToken; token == "" {
				break
			}
		}
		if !slices.Equal(got, want) || !slices.Equal(sizes, []int{3, 3, 1}) {
			t.Errorf("pages %v of %v, want [3 3 1] of %v", sizes, got, want)
		}
		r := must(alice.ListFriends(bg, &socialpb.PageRequest{}))(t)
		if len(r.Friends) != 7 || r.NextPageToken != "" {
			t.Errorf("default page: %d friends, next %q", len(r.Friends), r.NextPageToken)
		}
		r = must(alice.ListFriends(bg, &socialpb.PageRequest{PageSize: 100000}))(t)
		if len(r.Friends) != 7 {
			t.Errorf("huge page: %d friends", len(r.Friends))
		}
		// Exactly a page's worth: no further page.
		r = must(alice.ListFriends(bg, &socialpb.PageRequest{PageSize: 7}))(t)
		if len(r.Friends) != 7 || r.NextPageToken != "" {
			t.Errorf("page of 7: %d friends, next %q", len(r.Friends), r.NextPageToken)
		}

		_, err := alice.ListFriends(bg, &socialpb.PageRequest{PageSize: -1})
		wantCode(t, err, codes.InvalidArgument, "page_size")
		_, err = alice.ListFriends(bg, &socialpb.PageRequest{PageToken: "garbage!"})
		wantCode(t, err, codes.InvalidArgument, "page_token")
		// A token of another list is refused.
		must(alice.CreateGroup(bg, &socialpb.CreateGroupRequest{Name: "g"}))(t)
		must(alice.CreateGroup(bg, &socialpb.CreateGroupRequest{Name: "h"}))(t)
		gr := must(alice.ListMyGroups(bg, &socialpb.PageRequest{PageSize: 1}))(t)
		if gr.NextPageToken == "" {
			t.Fatal("no group page token")
		}
		_, err = alice.ListFriends(bg, &socialpb.PageRequest{PageToken: gr.NextPageToken})
		wantCode(t, err, codes.InvalidArgument, "page_token")
	})
}

// TestConcurrentFriendRequests: two users asking each other at the same
// moment end up friends, with no request left over; a block racing a
// request leaves no request behind it.
func TestConcurrentFriendRequests(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		const pairs = 10
		var wg sync.WaitGroup
		errs := make(chan error, 4*pairs)
		for i := range pairs {
			a, b, c := fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i), fmt.Sprintf("c%d", i)
			e.as(a)
			e.as(b)
			e.as(c)
			wg.Add(4)
			go func() {
				defer wg.Done()
				_, err := e.as(a).SendFriendRequest(bg, &socialpb.FriendRequestRequest{To: b})
				errs <- err
			}()
			go func() {
				defer wg.Done()
				_, err := e.as(b).SendFriendRequest(bg, &socialpb.FriendRequestRequest{To: a})
				errs <- err
			}()
			go func() {
				defer wg.Done()
				_, err := e.as(c).SendFriendRequest(bg, &socialpb.FriendRequestRequest{To: a})
				if st, _ := status.FromError(err); err != nil && st.Code() != codes.FailedPrecondition {
					errs <- err
				}
			}()
			go func() {
				defer wg.Done()
				_, err := e.as(a).Block(bg, &socialpb.UserRef{User: c})
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("unexpected error: %v", err)
			}
		}
		for i := range pairs {
			a, b := fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i)
			if got := e.friends(t, a); !slices.Equal(got, []string{b}) {
				t.Errorf("%s's friends: %v", a, got)
			}
			r := must(e.as(a).ListFriendRequests(bg, &socialpb.Empty{}))(t)
			if len(r.Incoming)+len(r.Outgoing) != 0 {
				t.Errorf("%s's requests left: %v", a, r)
			}
		}
	})
}
