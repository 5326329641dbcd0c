package social_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/surgechat/surge/services/social"
	"github.com/surgechat/surge/services/social/socialpb"
)

// group creates a group owned by owner with admins and plain members and
// returns its id.
func (e *env) group(t *testing.T, owner string, admins, members []string) string {
	t.Helper()
	g := must(e.as(owner).CreateGroup(bg, &socialpb.CreateGroupRequest{Name: "g", Members: append(slices.Clone(admins), members...)}))(t)
	for _, a := range admins {
		must(e.as(owner).SetMemberRole(bg, &socialpb.SetMemberRoleRequest{GroupId: g.Id, User: a, Role: social.RoleAdmin}))(t)
	}
	return g.Id
}

// members returns the group's members as user:role, all pages of size 2,
// as user asks.
func (e *env) members(t *testing.T, user, group string) []string {
	t.Helper()
	var out []string
	token := ""
	for {
		r := must(e.as(user).ListMembers(bg, &socialpb.ListMembersRequest{GroupId: group, PageSize: 2, PageToken: token}))(t)
		for _, m := range r.Members {
			out = append(out, m.User+":"+m.Role)
		}
		if token = r.NextPageToken; token == "" {
			return out
		}
	}
}

// membership asks GetMembership as a service.
func (e *env) membership(t *testing.T, group string) *socialpb.Membership {
	t.Helper()
	return must(e.service().GetMembership(bg, &socialpb.GroupRef{GroupId: group}))(t)
}

// TestCreateGroup: the caller owns the group, listed members join as plain
// members (duplicates and the caller ignored), and the version starts at 1.
func TestCreateGroup(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		g := must(e.as("alice").CreateGroup(bg, &socialpb.CreateGroupRequest{
			Name: "climbers", Description: "Sundays", Members: []string{"carol", "bob", "alice", "bob"},
		}))(t)
		if len(g.Id) != 16 || g.Name != "climbers" || g.Description != "Sundays" || g.Owner != "alice" ||
			g.MemberCount != 3 || g.Version != 1 || g.MyRole != social.RoleOwner || g.CreatedAt == 0 {
			t.Fatalf("created %v", g)
		}
		if got := e.members(t, "bob", g.Id); !slices.Equal(got, []string{"alice:owner", "bob:member", "carol:member"}) {
			t.Errorf("members %v", got)
		}
		if got := e.changes.of(g.Id); !slices.Equal(got, []int64{1}) {
			t.Errorf("OnGroupChange got %v, want [1]", got)
		}
		g2 := must(e.as("dave").CreateGroup(bg, &socialpb.CreateGroupRequest{Name: "solo"}))(t)
		if g2.Id == g.Id || g2.MemberCount != 1 {
			t.Errorf("second group %v", g2)
		}

		f := func(req *socialpb.CreateGroupRequest, msg string) {
			t.Helper()
			_, err := e.as("alice").CreateGroup(bg, req)
			wantCode(t, err, codes.InvalidArgument, msg)
		}
		f(&socialpb.CreateGroupRequest{}, "name")
		f(&socialpb.CreateGroupRequest{Name: "   "}, "name")
		f(&socialpb.CreateGroupRequest{Name: strings.Repeat("é", 65)}, "name")
		f(&socialpb.CreateGroupRequest{Name: "g", Description: strings.Repeat("d", 513)}, "description")
		f(&socialpb.CreateGroupRequest{Name: "g", Members: []string{"ok", "not ok"}}, "members")
		must(e.as("alice").CreateGroup(bg, &socialpb.CreateGroupRequest{Name: strings.Repeat("é", 64), Description: strings.Repeat("d", 512)}))(t)
	})
}

// TestGroupSizeLimit: no change may take a group past MaxGroupSize, and a
// refused change changes nothing.
func TestGroupSizeLimit(t *testing.T) {
	forEachDriver(t, func(c *social.Config) { c.MaxGroupSize = 3 }, func(t *testing.T, e *env) {
		_, err := e.as("alice").CreateGroup(bg, &socialpb.CreateGroupRequest{Name: "g", Members: []string{"b", "c", "d"}})
		wantCode(t, err, codes.FailedPrecondition, "topics")
		g := must(e.as("alice").CreateGroup(bg, &socialpb.CreateGroupRequest{Name: "g", Members: []string{"b"}}))(t)
		_, err = e.as("alice").AddMembers(bg, &socialpb.AddMembersRequest{GroupId: g.Id, Users: []string{"c", "d"}})
		wantCode(t, err, codes.FailedPrecondition, "at most 3 members")
		_, err = e.as("alice").AddMembers(bg, &socialpb.AddMembersRequest{GroupId: g.Id, Users: []string{"a", "b", "c", "d"}})
		wantCode(t, err, codes.FailedPrecondition, "topics")
		if m := e.membership(t, g.Id); m.Version != 1 || len(m.Members) != 2 {
			t.Fatalf("after refused adds: %v", m)
		}
		// Members already in do not count twice.
		g = must(e.as("alice").AddMembers(bg, &socialpb.AddMembersRequest{GroupId: g.Id, Users: []string{"b", "c", "alice"}}))(t)
		if g.MemberCount != 3 || g.Version != 2 {
			t.Fatalf("after add: %v", g)
		}
	})
}

// TestGetGroup: members see the group with their role; to anyone else it
// does not exist (NotFound), except to operators and services.
func TestGetGroup(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		id := e.group(t, "alice", []string{"bob"}, []string{"carol"})
		for user, role := range map[string]string{"alice": "owner", "bob": "admin", "carol": "member"} {
			g := must(e.as(user).GetGroup(bg, &socialpb.GroupRef{GroupId: id}))(t)
			if g.MyRole != role || g.Id != id || g.MemberCount != 3 || g.Owner != "alice" {
				t.Errorf("%s sees %v", user, g)
			}
		}
		_, err := e.as("mallory").GetGroup(bg, &socialpb.GroupRef{GroupId: id})
		wantCode(t, err, codes.NotFound, "no such group")
		_, err = e.as("alice").GetGroup(bg, &socialpb.GroupRef{GroupId: "0123456789abcdef"})
		wantCode(t, err, codes.NotFound, "no such group")
		_, err = e.as("alice").GetGroup(bg, &socialpb.GroupRef{GroupId: "bad id"})
		wantCode(t, err, codes.InvalidArgument, "group id")
		g := must(e.as("olga", social.RoleOperator).GetGroup(bg, &socialpb.GroupRef{GroupId: id}))(t)
		if g.MyRole != "" || g.Id != id {
			t.Errorf("operator sees %v", g)
		}
		must(e.service().GetGroup(bg, &socialpb.GroupRef{GroupId: id}))(t)
		_, err = e.as("mallory").ListMembers(bg, &socialpb.ListMembersRequest{GroupId: id})
		wantCode(t, err, codes.NotFound, "no such group")
		_, err = e.as("olga").ListMembers(bg, &socialpb.ListMembersRequest{GroupId: id})
		wantCode(t, err, codes.NotFound, "no such group")
	})
}

// TestUpdateGroup: the owner and admins rename; members may not; the
// version stays.
func TestUpdateGroup(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		id := e.group(t, "alice", []string{"bob"}, []string{"carol"})
		name := "renamed"
		g := must(e.as("bob").UpdateGroup(bg, &socialpb.UpdateGroupRequest{GroupId: id, Name: &name}))(t)
		if g.Name != "renamed" || g.Description != "" || g.MyRole != "admin" || g.Version != 1 {
			t.Fatalf("after admin's rename: %v", g)
		}
		desc := "about"
		g = must(e.as("alice").UpdateGroup(bg, &socialpb.UpdateGroupRequest{GroupId: id, Description: &desc}))(t)
		if g.Name != "renamed" || g.Description != "about" {
			t.Fatalf("after owner's update: %v", g)
		}
		g = must(e.as("carol").GetGroup(bg, &socialpb.GroupRef{GroupId: id}))(t)
		if g.Name != "renamed" || g.Description != "about" || g.Version != 1 {
			t.Fatalf("carol sees %v", g)
		}
		other := "mine"
		_, err := e.as("carol").UpdateGroup(bg, &socialpb.UpdateGroupRequest{GroupId: id, Name: &other})
		wantCode(t, err, codes.PermissionDenied, "owner or an admin")
		_, err = e.as("mallory").UpdateGroup(bg, &socialpb.UpdateGroupRequest{GroupId: id, Name: &other})
		wantCode(t, err, codes.NotFound, "no such group")
		empty := ""
		_, err = e.as("alice").UpdateGroup(bg, &socialpb.UpdateGroupRequest{GroupId: id, Name: &empty})
		wantCode(t, err, codes.InvalidArgument, "name")
		if got := e.changes.of(id); !slices.Equal(got, []int64{1}) {
			t.Errorf("OnGroupChange got %v, want [1]", got)
		}
	})
}

// TestDisbandGroup: only the owner disbands; afterwards the group is gone
// for everyone, and its last version is announced.
func TestDisbandGroup(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		id := e.group(t, "o", []string{"a"}, []string{"m"})
		keep := e.group(t, "m", nil, nil)
		_, err := e.as("m").DisbandGroup(bg, &socialpb.GroupRef{GroupId: id})
		wantCode(t, err, codes.PermissionDenied, "only the owner")
		_, err = e.as("a").DisbandGroup(bg, &socialpb.GroupRef{GroupId: id})
		wantCode(t, err, codes.PermissionDenied, "only the owner")
		_, err = e.as("x").DisbandGroup(bg, &socialpb.GroupRef{GroupId: id})
		wantCode(t, err, codes.NotFound, "no such group")
		must(e.as("o").DisbandGroup(bg, &socialpb.GroupRef{GroupId: id}))(t)

		ref := &socialpb.GroupRef{GroupId: id}
		_, err = e.as("o").GetGroup(bg, ref)
		wantCode(t, err, codes.NotFound, "no such group")
		_, err = e.as("olga", social.RoleOperator).GetGroup(bg, ref)
		wantCode(t, err, codes.NotFound, "no such group")
		_, err = e.as("o").DisbandGroup(bg, ref)
		wantCode(t, err, codes.NotFound, "no such group")
		_, err = e.as("o").AddMembers(bg, &socialpb.AddMembersRequest{GroupId: id, Users: []string{"m"}})
		wantCode(t, err, codes.NotFound, "no such group")
		_, err = e.as("a").ListMembers(bg, &socialpb.ListMembersRequest{GroupId: id})
		wantCode(t, err, codes.NotFound, "no such group")
		_, err = e.as("olga", social.RoleOperator).ListMembers(bg, &socialpb.ListMembersRequest{GroupId: id})
		wantCode(t, err, codes.NotFound, "no such group")
		_, err = e.as("m").LeaveGroup(bg, ref)
		wantCode(t, err, codes.NotFound, "no such group")
		gs := must(e.as("m").ListMyGroups(bg, &socialpb.PageRequest{}))(t)
		if len(gs.Groups) != 1 || gs.Groups[0].Id != keep {
			t.Errorf("m's groups after disband: %v", gs.Groups)
		}
		if m := e.membership(t, id); m.Exists || len(m.Members) != 0 || m.Version != 2 {
			t.Errorf("membership after disband: %v", m)
		}
		if got := e.changes.of(id); !slices.Equal(got, []int64{1, 2}) {
			t.Errorf("OnGroupChange got %v, want [1 2]", got)
		}
	})
}

// TestGroupVersions: every membership change, and only those, increments
// the version, which the responses, GetMembership and OnGroupChange agree
// on.
func TestGroupVersions(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		o := e.as("o")
		g := must(o.CreateGroup(bg, &socialpb.CreateGroupRequest{Name: "g", Members: []string{"m1"}}))(t)
		id := g.Id
		step := func(what string, want int64) {
			t.Helper()
			if m := e.membership(t, id); m.Version != want {
				t.Fatalf("after %s: version %d, want %d", what, m.Version, want)
			}
		}
		step("create", 1)
		g = must(o.AddMembers(bg, &socialpb.AddMembersRequest{GroupId: id, Users: []string{"m2", "m3", "m4"}}))(t)
		if g.Version != 2 {
			t.Fatalf("AddMembers answered version %d", g.Version)
		}
		step("add", 2)
		must(o.AddMembers(bg, &socialpb.AddMembersRequest{GroupId: id, Users: []string{"m2"}}))(t)
		step("add of a member", 2)
		name := "x"
		must(o.UpdateGroup(bg, &socialpb.UpdateGroupRequest{GroupId: id, Name: &name}))(t)
		step("rename", 2)
		must(o.SetMemberRole(bg, &socialpb.SetMemberRoleRequest{GroupId: id, User: "m1", Role: "admin"}))(t)
		step("role change", 2)
		must(o.RemoveMember(bg, &socialpb.MemberRef{GroupId: id, User: "m2"}))(t)
		step("remove", 3)
		must(e.as("m3").LeaveGroup(bg, &socialpb.GroupRef{GroupId: id}))(t)
		step("leave", 4)
		must(e.as("m1").RemoveMember(bg, &socialpb.MemberRef{GroupId: id, User: "m4"}))(t)
		step("remove by admin", 5)
		must(o.DisbandGroup(bg, &socialpb.GroupRef{GroupId: id}))(t)
		step("disband", 6)
		if got := e.changes.of(id); !slices.Equal(got, []int64{1, 2, 3, 4, 5, 6}) {
			t.Errorf("OnGroupChange got %v, want [1 2 3 4 5 6]", got)
		}
	})
}

// TestGroupChangeHookFailure: a failing OnGroupChange does not fail the
// RPC; it is counted.
func TestGroupChangeHookFailure(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		e.changes.failWith(errors.New("kafka down"))
		g := must(e.as("o").CreateGroup(bg, &socialpb.CreateGroupRequest{Name: "g"}))(t)
		must(e.as("o").AddMembers(bg, &socialpb.AddMembersRequest{GroupId: g.Id, Users: []string{"m"}}))(t)
		if got := e.metric("surge_social_group_change_errors_total"); got != "2" {
			t.Errorf("errors counted: %q, want 2", got)
		}
		if got := e.metric("surge_social_group_changes_total"); got != "2" {
			t.Errorf("changes counted: %q, want 2", got)
		}
	})
}

// TestGroupPaging: ListMyGroups pages by group id, ListMembers by user id.
func TestGroupPaging(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		var want []string
		roles := map[string]string{}
		for i := range 5 {
			owner := "u"
			if i%2 == 1 {
				owner = fmt.Sprintf("other%d", i)
			}
			g := must(e.as(owner).CreateGroup(bg, &socialpb.CreateGroupRequest{Name: fmt.Sprint("g", i), Members: []string{"u"}}))(t)
			want = append(want, g.Id)
			roles[g.Id] = map[bool]string{true: "owner", false: "member"}[owner == "u"]
		}
		must(e.as("someone").CreateGroup(bg, &socialpb.CreateGroupRequest{Name: "not u's"}))(t)
		slices.Sort(want)
		var got []string
		token := ""
		pages := 0
		for {
			r := must(e.as("u").ListMyGroups(bg, &socialpb.PageRequest{PageSize: 2, PageToken: token}))(t)
			pages++
			for _, g := range r.Groups {
				got = append(got, g.Id)
				if g.MyRole != roles[g.Id] || g.Version != 1 || g.Name == "" || g.MemberCount < 1 {
					t.Errorf("listed %v, want role %s", g, roles[g.Id])
				}
			}
			if token = r.NextPageToken; token == "" {
				break
			}
		}
		if !slices.Equal(got, want) || pages != 3 {
			t.Errorf("groups %v in %d pages, want %v in 3", got, pages, want)
		}

		users := []string{"m6", "m0", "m5", "m1", "m4", "m2"}
		g := must(e.as("m3").CreateGroup(bg, &socialpb.CreateGroupRequest{Name: "big", Members: users}))(t)
		wantMembers := []string{"m0:member", "m1:member", "m2:member", "m3:owner", "m4:member", "m5:member", "m6:member"}
		if got := e.members(t, "m5", g.Id); !slices.Equal(got, wantMembers) {
			t.Errorf("members %v, want %v", got, wantMembers)
		}
		r := must(e.as("olga", social.RoleOperator).ListMembers(bg, &socialpb.ListMembersRequest{GroupId: g.Id, PageSize: 3}))(t)
		if len(r.Members) != 3 || r.Members[0].User != "m0" || r.NextPageToken == "" {
			t.Errorf("operator's first page: %v", r)
		}
		_, err := e.as("m5").ListMembers(bg, &socialpb.ListMembersRequest{GroupId: g.Id, PageToken: r.NextPageToken + "x"})
		wantCode(t, err, codes.InvalidArgument, "page_token")
	})
}

// TestConcurrentGroups: changes of different groups, racing, neither fail
// nor disturb each other.
func TestConcurrentGroups(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, e *env) {
		const n = 10
		errs := make(chan error, n)
		var wg sync.WaitGroup
		for i := range n {
			owner, leaver := fmt.Sprintf("o%d", i), fmt.Sprintf("l%d", i)
			o, l := e.as(owner), e.as(leaver)
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- func() error {
					g, err := o.CreateGroup(bg, &socialpb.CreateGroupRequest{Name: "g", Members: []string{"shared", leaver, "x" + owner}})
					if err != nil {
						return err
					}
					if _, err := o.AddMembers(bg, &socialpb.AddMembersRequest{GroupId: g.Id, Users: []string{"a", "b", "c"}}); err != nil {
						return err
					}
					if _, err := o.RemoveMember(bg, &socialpb.MemberRef{GroupId: g.Id, User: "b"}); err != nil {
						return err
					}
					if _, err := l.LeaveGroup(bg, &socialpb.GroupRef{GroupId: g.Id}); err != nil {
						return err
					}
					if i%2 == 0 {
						_, err = o.DisbandGroup(bg, &socialpb.GroupRef{GroupId: g.Id})
						return err
					}
					m, err := e.service().GetMembership(bg, &socialpb.GroupRef{GroupId: g.Id})
					if err != nil {
						return err
					}
					if want := []string{"a", "c", owner, "shared", "x" + owner}; m.Version != 4 || !slices.Equal(m.Members, want) {
						return fmt.Errorf("group %d: %v, want version 4 and %v", i, m, want)
					}
					return nil
				}()
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		if gs := must(e.as("shared").ListMyGroups(bg, &socialpb.PageRequest{}))(t).Groups; len(gs) != n/2 {
			t.Errorf("shared is in %d groups, want %d", len(gs), n/2)
		}
	})
}
