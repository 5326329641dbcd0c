package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/surgechat/surge/services/account/accountpb"
	"github.com/surgechat/surge/services/message/messagepb"
	"github.com/surgechat/surge/services/social/socialpb"
)

var (
	alice  = &accountpb.User{Id: "alice", DisplayName: "Alice", Roles: []string{"user"}, CreatedAt: 1764140000000}
	hikers = &socialpb.Group{Id: "g1", Name: "Hikers", Owner: "alice", MemberCount: 2,
		CreatedAt: 1764140000000, Version: 1, MyRole: "owner"}
	msgs = []*messagepb.Msg{{Seq: 7, MsgId: "m7", Conv: "bob", From: "bob", Id: "c1", Body: "hi",
		SentAt: 1764140000000000, StoredAt: 1764140000001000}}
)

// TestRoutes sends one request to every route and checks the RPC the
// service received and the JSON the client got back.
func TestRoutes(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		method, path, body string
		rpc                string        // what the service must receive ...
		want               proto.Message // ... with this request
		resp               proto.Message // canned answer (nil: a zero one)
		status             int
	}{
		// Accounts.
		{"POST", "/v1/accounts", `{"username":"alice","password":"correct horse","display_name":"Alice"}`,
			"Register", &accountpb.RegisterRequest{Username: "alice", Password: "correct horse", DisplayName: "Alice"}, alice, 201},
		{"POST", "/v1/auth/login", `{"username":"alice","password":"correct horse"}`,
			"Login", &accountpb.LoginRequest{Username: "alice", Password: "correct horse"},
			&accountpb.Tokens{AccessToken: "eyJ.a.b", RefreshToken: "r1", AccessExpiresAt: 1764140900000, RefreshExpiresAt: 1766732000000, User: alice}, 200},
		{"POST", "/v1/auth/refresh", `{"refresh_token":"r1"}`,
			"Refresh", &accountpb.RefreshRequest{RefreshToken: "r1"}, &accountpb.Tokens{AccessToken: "eyJ.c.d", RefreshToken: "r2"}, 200},
		{"POST", "/v1/auth/logout", `{"all_sessions":true}`,
			"Logout", &accountpb.LogoutRequest{AllSessions: true}, nil, 204},
		{"POST", "/v1/auth/logout", ``, // an empty body is {}
			"Logout", &accountpb.LogoutRequest{}, nil, 204},
		{"GET", "/v1/me", "", "GetProfile", &accountpb.GetProfileRequest{}, alice, 200},
		{"PATCH", "/v1/me", `{"bio":"likes hills"}`,
			"UpdateProfile", &accountpb.UpdateProfileRequest{Bio: proto.String("likes hills")}, alice, 200},
		{"GET", "/v1/users/bob", "", "GetProfile", &accountpb.GetProfileRequest{UserId: "bob"}, &accountpb.User{Id: "bob"}, 200},
		{"PUT", "/v1/users/bob/roles", `{"roles":["user","operator"]}`,
			"SetRoles", &accountpb.SetRolesRequest{UserId: "bob", Roles: []string{"user", "operator"}}, &accountpb.User{Id: "bob"}, 200},

		// Friends.
		{"POST", "/v1/friends/requests", `{"to":"bob","message":"hi, it's alice"}`,
			"SendFriendRequest", &socialpb.FriendRequestRequest{To: "bob", Message: "hi, it's alice"},
			&socialpb.FriendRequest{From: "alice", To: "bob", Message: "hi, it's alice", CreatedAt: 1764140000000}, 201},
		{"GET", "/v1/friends/requests", "", "ListFriendRequests", &socialpb.Empty{},
			&socialpb.ListFriendRequestsResponse{Incoming: []*socialpb.FriendRequest{{From: "carol", To: "alice"}}}, 200},
		{"POST", "/v1/friends/requests/alice/accept", "", "AcceptFriendRequest", &socialpb.UserRef{User: "alice"},
			&socialpb.Friend{User: "alice", Since: 1764140000000}, 200},
		{"POST", "/v1/friends/requests/carol/decline", "", "DeclineFriendRequest", &socialpb.UserRef{User: "carol"}, nil, 204},
		{"GET", "/v1/friends?page_size=2&page_token=abc", "", "ListFriends", &socialpb.PageRequest{PageSize: 2, PageToken: "abc"},
			&socialpb.ListFriendsResponse{Friends: []*socialpb.Friend{{User: "bob", Since: 1}}, NextPageToken: "def"}, 200},
		{"DELETE", "/v1/friends/bob", "", "RemoveFriend", &socialpb.UserRef{User: "bob"}, nil, 204},

		// Blocks.
		{"PUT", "/v1/blocks/mallory", "", "Block", &socialpb.UserRef{User: "mallory"}, nil, 204},
		{"DELETE", "/v1/blocks/mallory", "", "Unblock", &socialpb.UserRef{User: "mallory"}, nil, 204},
		{"GET", "/v1/blocks", "", "ListBlocked", &socialpb.Empty{}, &socialpb.ListBlockedResponse{Users: []string{"mallory"}}, 200},

		// Groups.
		{"POST", "/v1/groups", `{"name":"Hikers","members":["bob"]}`,
			"CreateGroup", &socialpb.CreateGroupRequest{Name: "Hikers", Members: []string{"bob"}}, hikers, 201},
		{"GET", "/v1/groups?page_size=10", "", "ListMyGroups", &socialpb.PageRequest{PageSize: 10},
			&socialpb.ListGroupsResponse{Groups: []*socialpb.Group{hikers}}, 200},
		{"GET", "/v1/groups/g1", "", "GetGroup", &socialpb.GroupRef{GroupId: "g1"}, hikers, 200},
		{"PATCH", "/v1/groups/g1", `{"name":"Hill walkers","description":""}`,
			"UpdateGroup", &socialpb.UpdateGroupRequest{GroupId: "g1", Name: proto.String("Hill walkers"), Description: proto.String("")}, hikers, 200},
		{"PATCH", "/v1/groups/g1", `{"group_id":"g1","name":"Hikers"}`, // the path's own value may be repeated
			"UpdateGroup", &socialpb.UpdateGroupRequest{GroupId: "g1", Name: proto.String("Hikers")}, hikers, 200},
		{"DELETE", "/v1/groups/g1", "", "DisbandGroup", &socialpb.GroupRef{GroupId: "g1"}, nil, 204},
		{"POST", "/v1/groups/g1/members", `{"users":["carol","dave"]}`,
			"AddMembers", &socialpb.AddMembersRequest{GroupId: "g1", Users: []string{"carol", "dave"}}, hikers, 200},
		{"GET", "/v1/groups/g1/members?page_size=50&page_token=t1", "",
			"ListMembers", &socialpb.ListMembersRequest{GroupId: "g1", PageSize: 50, PageToken: "t1"},
			&socialpb.ListMembersResponse{Members: []*socialpb.Member{{User: "alice", Role: "owner", JoinedAt: 1}}}, 200},
		{"DELETE", "/v1/groups/g1/members/bob", "", "RemoveMember", &socialpb.MemberRef{GroupId: "g1", User: "bob"}, nil, 204},
		{"PUT", "/v1/groups/g1/members/bob/role", `{"role":"admin"}`,
			"SetMemberRole", &socialpb.SetMemberRoleRequest{GroupId: "g1", User: "bob", Role: "admin"},
			&socialpb.Member{User: "bob", Role: "admin", JoinedAt: 1764140000000}, 200},
		{"POST", "/v1/groups/g1/leave", "", "LeaveGroup", &socialpb.GroupRef{GroupId: "g1"}, nil, 204},

		// Messages.
		{"GET", "/v1/conversations/bob/messages?before_seq=100&limit=20", "",
			"History", &messagepb.HistoryRequest{Conv: "bob", BeforeSeq: 100, Limit: 20},
			&messagepb.HistoryResponse{Messages: msgs, More: true}, 200},
		{"GET", "/v1/conversations/g%2Fg1/messages?since=1764140000000000&until=1764150000000000", "",
			"History", &messagepb.HistoryRequest{Conv: "g/g1", Since: 1764140000000000, Until: 1764150000000000}, nil, 200},
		{"GET", "/v1/conversations/g/g1/messages?after_seq=5", "",
			"History", &messagepb.HistoryRequest{Conv: "g/g1", AfterSeq: 5}, nil, 200},
		{"GET", "/v1/sync?after=42&limit=100", "", "Sync", &messagepb.SyncRequest{After: 42, Limit: 100},
			&messagepb.SyncResponse{Messages: msgs, Last: 7}, 200},
		{"POST", "/v1/publish", `{"group":"g1","body":"maintenance at 22:00","id":"ops-1","from":"ops"}`,
			"Publish", &messagepb.PublishRequest{Target: &messagepb.PublishRequest_Group{Group: "g1"}, Body: "maintenance at 22:00", Id: "ops-1", From: "ops"},
			&messagepb.PublishResponse{MsgId: "m-123"}, 200},
		{"POST", "/v1/publish", `{"user":"bob","body":"hi"}`,
			"Publish", &messagepb.PublishRequest{Target: &messagepb.PublishRequest_User{User: "bob"}, Body: "hi"}, nil, 200},
	}
	covered := make(map[string]bool)
	for _, tc := range tests {
		req, _ := http.NewRequest(tc.method, e.url+tc.path, nil)
		_, pattern := e.gw.mux.Handler(req)
		covered[pattern] = true
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			e.b.set(tc.resp, nil)
			resp, body := e.do(t, tc.method, tc.path, tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tc.status, body)
			}
			got := e.b.last(t)
			if got.method != tc.rpc || !proto.Equal(got.req, tc.want) {
				t.Fatalf("RPC %s(%v), want %s(%v)", got.method, got.req, tc.rpc, tc.want)
			}
			if tc.status == http.StatusNoContent {
				if body != "" {
					t.Fatalf("204 with body %q", body)
				}
			} else {
				if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
					t.Fatalf("Content-Type %q", ct)
				}
				want := tc.resp
				if want == nil { // a zero response of the RPC's type
					want = rpcOutput(t, e.gw, tc.method, tc.path).New().Interface()
				}
				out := want.ProtoReflect().New().Interface()
				if err := protojson.Unmarshal([]byte(body), out); err != nil {
					t.Fatalf("response %s: %v", body, err)
				}
				if !proto.Equal(out, want) {
					t.Fatalf("response %v, want %v", out, want)
				}
			}
		})
	}
	for _, rt := range e.gw.routes() {
		if !covered[rt.pattern] {
			t.Errorf("route %s has no test case", rt.pattern)
		}
	}
}

// rpcOutput is the response type of the route that answers method path.
func rpcOutput(t *testing.T, gw *Gateway, method, path string) protoreflect.MessageType {
	t.Helper()
	req, _ := http.NewRequest(method, "http://x"+path, nil)
	_, pattern := gw.mux.Handler(req)
	for _, rt := range gw.routes() {
		if rt.pattern == pattern {
			return rt.rpc.respType
		}
	}
	t.Fatalf("no route for %s %s", method, path)
	return nil
}

// recordingConn is a grpc.ClientConnInterface that records the method of
// each call and fails it.
type recordingConn struct{ method string }

func (c *recordingConn) Invoke(_ context.Context, method string, _, _ any, _ ...grpc.CallOption) error {
	c.method = method
	return status.Error(codes.Unimplemented, "recording")
}

func (c *recordingConn) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, status.Error(codes.Unimplemented, "recording")
}

// TestEveryUserRPCHasARoute keeps the API complete as the protos grow.
func TestEveryUserRPCHasARoute(t *testing.T) {
	internal := map[string]bool{"GetMembership": true, "CheckDirect": true, "ListFriendIDs": true}
	conn := &recordingConn{}
	gw, err := New(Config{
		Account: accountpb.NewAccountClient(conn),
		Social:  socialpb.NewSocialClient(conn),
		Message: messagepb.NewMessageClient(conn),
	})
	if err != nil {
		t.Fatal(err)
	}
	routed := make(map[string]bool)
	for _, rt := range gw.routes() {
		if _, err := rt.rpc.call(context.Background(), rt.rpc.newReq()); err == nil {
			t.Fatal("recordingConn answered")
		}
		routed[conn.method] = true
	}
	for _, fd := range []protoreflect.FileDescriptor{accountpb.File_account_proto, socialpb.File_social_proto, messagepb.File_message_proto} {
		methods := fd.Services().Get(0).Methods()
		for i := range methods.Len() {
			m := methods.Get(i)
			full := "/" + string(m.Parent().FullName()) + "/" + string(m.Name())
			if !internal[string(m.Name())] && !routed[full] {
				t.Errorf("%s has no route", full)
			}
		}
	}
}

// TestResponseJSON pins the response format: proto names, every field,
// 64-bit integers as strings.
func TestResponseJSON(t *testing.T) {
	e := newEnv(t, nil)
	e.b.set(&socialpb.Group{Id: "g1", Name: "Hikers", Owner: "alice", MemberCount: 2, CreatedAt: 1764140000000, Version: 3}, nil)
	resp, body := e.do(t, "GET", "/v1/groups/g1", "")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	want := `{"id":"g1","name":"Hikers","description":"","owner":"alice","member_count":2,` +
		`"created_at":"1764140000000","version":"3","my_role":""}` + "\n"
	if body != want {
		t.Fatalf("body %s\nwant %s", body, want)
	}
}

// TestBadRequests: what the gateway refuses before calling anything.
func TestBadRequests(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxBodyBytes = 100 })
	tests := []struct {
		method, path, body string
		status             int
		code, msg          string
	}{
		{"POST", "/v1/accounts", `{"username":`, 400, "INVALID_ARGUMENT", "invalid JSON body"},
		{"POST", "/v1/accounts", `[1,2]`, 400, "INVALID_ARGUMENT", "invalid JSON body"},
		{"POST", "/v1/accounts", `{"usernme":"alice"}`, 400, "INVALID_ARGUMENT", "unknown field"},
		{"POST", "/v1/accounts", `{"username":5}`, 400, "INVALID_ARGUMENT", "invalid JSON body"},
		{"POST", "/v1/publish", `{"user":"bob","group":"g1"}`, 400, "INVALID_ARGUMENT", "invalid JSON body"},
		{"POST", "/v1/accounts", `{"username":"` + strings.Repeat("a", 200) + `"}`, 413, "PAYLOAD_TOO_LARGE", "larger than 100 bytes"},
		{"GET", "/v1/friends?page_size=ten", "", 400, "INVALID_ARGUMENT", `page_size: "ten" is not a valid int32`},
		{"GET", "/v1/friends?page_size=99999999999", "", 400, "INVALID_ARGUMENT", "page_size"},
		{"GET", "/v1/sync?after=-1", "", 400, "INVALID_ARGUMENT", "after"},
		{"GET", "/v1/friends?pagesize=10", "", 400, "INVALID_ARGUMENT", `unknown query parameter "pagesize"`},
		{"GET", "/v1/me?user_id=bob", "", 400, "INVALID_ARGUMENT", "takes none"},
		{"GET", "/v1/sync?after=1&after=2", "", 400, "INVALID_ARGUMENT", "given 2 times"},
		{"GET", "/v1/sync?after=%zz", "", 400, "INVALID_ARGUMENT", "malformed query"},
		{"PATCH", "/v1/groups/g1", `{"group_id":"g2"}`, 400, "INVALID_ARGUMENT", "in the body but"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path+" "+tc.body, func(t *testing.T) {
			e.b.set(nil, nil)
			resp, body := e.do(t, tc.method, tc.path, tc.body)
			checkError(t, resp, body, tc.status, tc.code, tc.msg)
			if n := e.b.count(); n != 0 {
				t.Fatalf("%d RPCs made for a bad request", n)
			}
		})
	}
}

// TestBodyTooLargeChunked: a body without Content-Length is cut at the
// limit too.
func TestBodyTooLargeChunked(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxBodyBytes = 100 })
	body := `{"username":"` + strings.Repeat("a", 200) + `"}`
	req, _ := http.NewRequest("POST", e.url+"/v1/accounts", struct{ *strings.Reader }{strings.NewReader(body)})
	if req.ContentLength != 0 {
		t.Fatalf("ContentLength %d; want unknown", req.ContentLength)
	}
	resp, out := send(t, req)
	checkError(t, resp, out, 413, "PAYLOAD_TOO_LARGE", "larger than 100 bytes")
}

// checkError checks a JSON error response.
func checkError(t *testing.T, resp *http.Response, body string, status int, code, msg string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d; body %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	var eb errorBody
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&eb); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	if eb.Error.Code != code || !strings.Contains(eb.Error.Message, msg) {
		t.Fatalf("error %+v, want code %s and a message containing %q", eb.Error, code, msg)
	}
}
