package social_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/surgechat/surge/services/social"
	"github.com/surgechat/surge/services/social/socialpb"
)

// TestRemoveMemberPermissions: who may remove whom.
func TestRemoveMemberPermissions(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		// Roles in each fresh group: o owner, a1 and a2 admins, m1 and m2
		// members; x is not a member.
		cases := []struct {
			caller, target string
			code           codes.Code
			msg            string
		}{
			{"o", "a1", codes.OK, ""},
			{"o", "m1", codes.OK, ""},
			{"o", "o", codes.FailedPrecondition, "hand ownership over"},
			{"o", "x", codes.NotFound, "not a member"},
			{"a1", "o", codes.PermissionDenied, "plain members only"},
			{"a1", "a2", codes.PermissionDenied, "plain members only"},
			{"a1", "m1", codes.OK, ""},
			{"a1", "a1", codes.OK, ""}, // leaves
			{"a1", "x", codes.NotFound, "not a member"},
			{"m1", "o", codes.PermissionDenied, "owner or an admin"},
			{"m1", "a1", codes.PermissionDenied, "owner or an admin"},
			{"m1", "m2", codes.PermissionDenied, "owner or an admin"},
			{"m1", "m1", codes.OK, ""}, // leaves
			{"x", "m1", codes.NotFound, "no such group"},
		}
		for _, c := range cases {
			id := e.group(t, "o", []string{"a1", "a2"}, []string{"m1", "m2"})
			_, err := e.as(c.caller).RemoveMember(bg, &socialpb.MemberRef{GroupId: id, User: c.target})
			m := e.membership(t, id)
			if c.code == codes.OK {
				if err != nil {
					t.Errorf("%s removes %s: %v", c.caller, c.target, err)
				}
				if m.Version != 2 || len(m.Members) != 4 || slices.Contains(m.Members, c.target) {
					t.Errorf("%s removed %s: %v", c.caller, c.target, m)
				}
				if got := e.changes.of(id); !slices.Equal(got, []int64{1, 2}) {
					t.Errorf("OnGroupChange got %v, want [1 2]", got)
				}
				continue
			}
			t.Run(c.caller+"-"+c.target, func(t *testing.T) { wantCode(t, err, c.code, c.msg) })
			if m.Version != 1 || len(m.Members) != 5 {
				t.Errorf("%s failed to remove %s and still changed %v", c.caller, c.target, m)
			}
		}
	})
}

// TestAddMembersPermissions: the owner and admins add; members and
// strangers may not; members already in are skipped without a version.
func TestAddMembersPermissions(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		id := e.group(t, "o", []string{"a"}, []string{"m"})
		g := must(e.as("o").AddMembers(bg, &socialpb.AddMembersRequest{GroupId: id, Users: []string{"n1"}}))(t)
		if g.Version != 2 || g.MemberCount != 4 || g.MyRole != "owner" {
			t.Fatalf("owner added: %v", g)
		}
		g = must(e.as("a").AddMembers(bg, &socialpb.AddMembersRequest{GroupId: id, Users: []string{"n2", "n3", "n2"}}))(t)
		if g.Version != 3 || g.MemberCount != 6 || g.MyRole != "admin" {
			t.Fatalf("admin added: %v", g)
		}
		g = must(e.as("a").AddMembers(bg, &socialpb.AddMembersRequest{GroupId: id, Users: []string{"n2", "o"}}))(t)
		if g.Version != 3 || g.MemberCount != 6 {
			t.Fatalf("re-adding members changed the group: %v", g)
		}
		_, err := e.as("m").AddMembers(bg, &socialpb.AddMembersRequest{GroupId: id, Users: []string{"n4"}})
		wantCode(t, err, codes.PermissionDenied, "owner or an admin")
		_, err = e.as("x").AddMembers(bg, &socialpb.AddMembersRequest{GroupId: id, Users: []string{"x"}})
		wantCode(t, err, codes.NotFound, "no such group")
		_, err = e.as("o").AddMembers(bg, &socialpb.AddMembersRequest{GroupId: id})
		wantCode(t, err, codes.InvalidArgument, "none given")
		_, err = e.as("o").AddMembers(bg, &socialpb.AddMembersRequest{GroupId: id, Users: []string{"bad id"}})
		wantCode(t, err, codes.InvalidArgument, "invalid user id")
		if got := e.members(t, "m", id); !slices.Equal(got, []string{"a:admin", "m:member", "n1:member", "n2:member", "n3:member", "o:owner"}) {
			t.Errorf("members %v", got)
		}
		// Version 3 was announced once, the no-op add announced nothing.
		if got := e.changes.of(id); !slices.Equal(got, []int64{1, 2, 3}) {
			t.Errorf("OnGroupChange got %v, want [1 2 3]", got)
		}
	})
}

// TestLeaveGroup: members and admins leave; the owner may not until they
// hand ownership over; strangers get NotFound.
func TestLeaveGroup(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		id := e.group(t, "o", []string{"a"}, []string{"m"})
		must(e.as("m").LeaveGroup(bg, &socialpb.GroupRef{GroupId: id}))(t)
		_, err := e.as("m").GetGroup(bg, &socialpb.GroupRef{GroupId: id})
		wantCode(t, err, codes.NotFound, "no such group")
		_, err = e.as("m").LeaveGroup(bg, &socialpb.GroupRef{GroupId: id})
		wantCode(t, err, codes.NotFound, "no such group")
		must(e.as("a").LeaveGroup(bg, &socialpb.GroupRef{GroupId: id}))(t)
		_, err = e.as("o").LeaveGroup(bg, &socialpb.GroupRef{GroupId: id})
		wantCode(t, err, codes.FailedPrecondition, "hand ownership over")
		m := e.membership(t, id)
		if !slices.Equal(m.Members, []string{"o"}) || m.Version != 3 {
			t.Errorf("after leaving: %v", m)
		}
		if got := e.changes.of(id); !slices.Equal(got, []int64{1, 2, 3}) {
			t.Errorf("OnGroupChange got %v, want [1 2 3]", got)
		}
	})
}

// TestTransferOwnership: role "owner" hands the group over and makes the
// old owner an admin; only the owner sets roles.
func TestTransferOwnership(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		id := e.group(t, "o", []string{"a"}, []string{"m"})
		_, err := e.as("a").SetMemberRole(bg, &socialpb.SetMemberRoleRequest{GroupId: id, User: "m", Role: "admin"})
		wantCode(t, err, codes.PermissionDenied, "only the owner")
		_, err = e.as("m").SetMemberRole(bg, &socialpb.SetMemberRoleRequest{GroupId: id, User: "m", Role: "owner"})
		wantCode(t, err, codes.PermissionDenied, "only the owner")
		_, err = e.as("o").SetMemberRole(bg, &socialpb.SetMemberRoleRequest{GroupId: id, User: "m", Role: "king"})
		wantCode(t, err, codes.InvalidArgument, "role")
		_, err = e.as("o").SetMemberRole(bg, &socialpb.SetMemberRoleRequest{GroupId: id, User: "x", Role: "admin"})
		wantCode(t, err, codes.NotFound, "not a member")
		_, err = e.as("o").SetMemberRole(bg, &socialpb.SetMemberRoleRequest{GroupId: id, User: "o", Role: "member"})
		wantCode(t, err, codes.FailedPrecondition, "hand ownership over")
		_, err = e.as("x").SetMemberRole(bg, &socialpb.SetMemberRoleRequest{GroupId: id, User: "m", Role: "admin"})
		wantCode(t, err, codes.NotFound, "no such group")

		mem := must(e.as("o").SetMemberRole(bg, &socialpb.SetMemberRoleRequest{GroupId: id, User: "a", Role: "member"}))(t)
		if mem.User != "a" || mem.Role != "member" || mem.JoinedAt == 0 {
			t.Fatalf("demoted: %v", mem)
		}
		mem = must(e.as("o").SetMemberRole(bg, &socialpb.SetMemberRoleRequest{GroupId: id, User: "m", Role: "owner"}))(t)
		if mem.User != "m" || mem.Role != "owner" {
			t.Fatalf("new owner: %v", mem)
		}
		g := must(e.as("o").GetGroup(bg, &socialpb.GroupRef{GroupId: id}))(t)
		if g.Owner != "m" || g.MyRole != "admin" || g.Version != 1 {
			t.Fatalf("after hand-over the old owner sees %v", g)
		}
		if got := e.members(t, "m", id); !slices.Equal(got, []string{"a:member", "m:owner", "o:admin"}) {
			t.Errorf("members %v", got)
		}
		_, err = e.as("o").SetMemberRole(bg, &socialpb.SetMemberRoleRequest{GroupId: id, User: "a", Role: "admin"})
		wantCode(t, err, codes.PermissionDenied, "only the owner")
		_, err = e.as("m").LeaveGroup(bg, &socialpb.GroupRef{GroupId: id})
		wantCode(t, err, codes.FailedPrecondition, "hand ownership over")
		must(e.as("o").LeaveGroup(bg, &socialpb.GroupRef{GroupId: id}))(t)
		if got := e.changes.of(id); !slices.Equal(got, []int64{1, 2}) {
			t.Errorf("OnGroupChange got %v, want [1 2]: role changes keep the version", got)
		}
	})
}

// TestConcurrentAddMembers: 20 admins' adds racing into a group of at most
// 10 leave it with exactly 10 members and one version per member added.
func TestConcurrentAddMembers(t *testing.T) {
	forEachDriver(t, func(c *social.Config) { c.MaxGroupSize = 10 }, func(t *testing.T, e *env) {
		g := must(e.as("o").CreateGroup(bg, &socialpb.CreateGroupRequest{Name: "g"}))(t)
		owner := e.as("o")
		var wg sync.WaitGroup
		errs := make([]error, 20)
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = owner.AddMembers(bg, &socialpb.AddMembersRequest{GroupId: g.Id, Users: []string{fmt.Sprintf("n%02d", i)}})
			}()
		}
		wg.Wait()
		added := 0
		for _, err := range errs {
			if err == nil {
				added++
				continue
			}
			wantCode(t, err, codes.FailedPrecondition, "topics")
		}
		if added != 9 {
			t.Errorf("%d adds succeeded, want 9", added)
		}
		m := e.membership(t, g.Id)
		if len(m.Members) != 10 || m.Version != 10 {
			t.Errorf("membership: %d members, version %d; want 10 and 10", len(m.Members), m.Version)
		}
		if got := must(owner.GetGroup(bg, &socialpb.GroupRef{GroupId: g.Id}))(t); got.MemberCount != 10 {
			t.Errorf("member_count %d", got.MemberCount)
		}
		if got := e.members(t, "o", g.Id); len(got) != 10 {
			t.Errorf("ListMembers: %d", len(got))
		}
		versions := e.changes.of(g.Id)
		slices.Sort(versions)
		if !slices.Equal(versions, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}) {
			t.Errorf("OnGroupChange versions %v", versions)
		}
	})
}
