package gateway

// Test doubles of the three services: real gRPC servers on 127.0.0.1:0
// whose handlers record the request and metadata they received and answer
// with a canned response or a chosen error. End-to-end tests against the
// real services live elsewhere.

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	vm "github.com/VictoriaMetrics/metrics"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/surgechat/surge/services/account/accountpb"
	"github.com/surgechat/surge/services/message/messagepb"
	"github.com/surgechat/surge/services/social/socialpb"
)

// call is one RPC a fake received.
type call struct {
	method string
	req    proto.Message
	md     metadata.MD
}

// backend is the shared state of the three fakes.
type backend struct {
	mu    sync.Mutex
	calls []call
	resp  proto.Message // answered when its type is the RPC's; else a zero response
	err   error         // answered by every RPC when set
	block bool          // wait for the caller's deadline and fail with it
}

func (b *backend) set(resp proto.Message, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.resp, b.err, b.calls = resp, err, nil
}

func (b *backend) last(t *testing.T) call {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.calls) == 0 {
		t.Fatal("no RPC reached the service")
	}
	return b.calls[len(b.calls)-1]
}

func (b *backend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.calls)
}

func answer[Resp proto.Message](b *backend, ctx context.Context, method string, req proto.Message) (Resp, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	b.mu.Lock()
	b.calls = append(b.calls, call{method: method, req: proto.Clone(req), md: md})
	resp, err, block := b.resp, b.err, b.block
	b.mu.Unlock()
	var zero Resp
	if block {
		<-ctx.Done()
		return zero, ctx.Err()
	}
	if err != nil {
		return zero, err
	}
	if r, ok := resp.(Resp); ok {
		return r, nil
	}
	return zero.ProtoReflect().Type().New().Interface().(Resp), nil
}

type fakeAccount struct {
	accountpb.UnimplementedAccountServer
	b *backend
}

func (f fakeAccount) Register(ctx context.Context, r *accountpb.RegisterRequest) (*accountpb.User, error) {
	return answer[*accountpb.User](f.b, ctx, "Register", r)
}
func (f fakeAccount) Login(ctx context.Context, r *accountpb.LoginRequest) (*accountpb.Tokens, error) {
	return answer[*accountpb.Tokens](f.b, ctx, "Login", r)
}
func (f fakeAccount) Refresh(ctx context.Context, r *accountpb.RefreshRequest) (*accountpb.Tokens, error) {
	return answer[*accountpb.Tokens](f.b, ctx, "Refresh", r)
}
func (f fakeAccount) Logout(ctx context.Context, r *accountpb.LogoutRequest) (*accountpb.LogoutResponse, error) {
	return answer[*accountpb.LogoutResponse](f.b, ctx, "Logout", r)
}
func (f fakeAccount) GetProfile(ctx context.Context, r *accountpb.GetProfileRequest) (*accountpb.User, error) {
	return answer[*accountpb.User](f.b, ctx, "GetProfile", r)
}
func (f fakeAccount) UpdateProfile(ctx context.Context, r *accountpb.UpdateProfileRequest) (*accountpb.User, error) {
	return answer[*accountpb.User](f.b, ctx, "UpdateProfile", r)
}
func (f fakeAccount) SetRoles(ctx context.Context, r *accountpb.SetRolesRequest) (*accountpb.User, error) {
	return answer[*accountpb.User](f.b, ctx, "SetRoles", r)
}

type fakeSocial struct {
	socialpb.UnimplementedSocialServer
	b *backend
}

func (f fakeSocial) SendFriendRequest(ctx context.Context, r *socialpb.FriendRequestRequest) (*socialpb.FriendRequest, error) {
	return answer[*socialpb.FriendRequest](f.b, ctx, "SendFriendRequest", r)
}
func (f fakeSocial) AcceptFriendRequest(ctx context.Context, r *socialpb.UserRef) (*socialpb.Friend, error) {
	return answer[*socialpb.Friend](f.b, ctx, "AcceptFriendRequest", r)
}
func (f fakeSocial) DeclineFriendRequest(ctx context.Context, r *socialpb.UserRef) (*socialpb.Empty, error) {
	return answer[*socialpb.Empty](f.b, ctx, "DeclineFriendRequest", r)
}
func (f fakeSocial) RemoveFriend(ctx context.Context, r *socialpb.UserRef) (*socialpb.Empty, error) {
	return answer[*socialpb.Empty](f.b, ctx, "RemoveFriend", r)
}
func (f fakeSocial) ListFriends(ctx context.Context, r *socialpb.PageRequest) (*socialpb.ListFriendsResponse, error) {
	return answer[*socialpb.ListFriendsResponse](f.b, ctx, "ListFriends", r)
}
func (f fakeSocial) ListFriendRequests(ctx context.Context, r *socialpb.Empty) (*socialpb.ListFriendRequestsResponse, error) {
	return answer[*socialpb.ListFriendRequestsResponse](f.b, ctx, "ListFriendRequests", r)
}
func (f fakeSocial) Block(ctx context.Context, r *socialpb.UserRef) (*socialpb.Empty, error) {
	return answer[*socialpb.Empty](f.b, ctx, "Block", r)
}
func (f fakeSocial) Unblock(ctx context.Context, r *socialpb.UserRef) (*socialpb.Empty, error) {
	return answer[*socialpb.Empty](f.b, ctx, "Unblock", r)
}
func (f fakeSocial) ListBlocked(ctx context.Context, r *socialpb.Empty) (*socialpb.ListBlockedResponse, error) {
	return answer[*socialpb.ListBlockedResponse](f.b, ctx, "ListBlocked", r)
}
func (f fakeSocial) CreateGroup(ctx context.Context, r *socialpb.CreateGroupRequest) (*socialpb.Group, error) {
	return answer[*socialpb.Group](f.b, ctx, "CreateGroup", r)
}
func (f fakeSocial) GetGroup(ctx context.Context, r *socialpb.GroupRef) (*socialpb.Group, error) {
	return answer[*socialpb.Group](f.b, ctx, "GetGroup", r)
}
func (f fakeSocial) UpdateGroup(ctx context.Context, r *socialpb.UpdateGroupRequest) (*socialpb.Group, error) {
	return answer[*socialpb.Group](f.b, ctx, "UpdateGroup", r)
}
func (f fakeSocial) DisbandGroup(ctx context.Context, r *socialpb.GroupRef) (*socialpb.Empty, error) {
	return answer[*socialpb.Empty](f.b, ctx, "DisbandGroup", r)
}
func (f fakeSocial) AddMembers(ctx context.Context, r *socialpb.AddMembersRequest) (*socialpb.Group, error) {
	return answer[*socialpb.Group](f.b, ctx, "AddMembers", r)
}
func (f fakeSocial) RemoveMember(ctx context.Context, r *socialpb.MemberRef) (*socialpb.Empty, error) {
	return answer[*socialpb.Empty](f.b, ctx, "RemoveMember", r)
}
func (f fakeSocial) LeaveGroup(ctx context.Context, r *socialpb.GroupRef) (*socialpb.Empty, error) {
	return answer[*socialpb.Empty](f.b, ctx, "LeaveGroup", r)
}
func (f fakeSocial) SetMemberRole(ctx context.Context, r *socialpb.SetMemberRoleRequest) (*socialpb.Member, error) {
	return answer[*socialpb.Member](f.b, ctx, "SetMemberRole", r)
}
func (f fakeSocial) ListMyGroups(ctx context.Context, r *socialpb.PageRequest) (*socialpb.ListGroupsResponse, error) {
	return answer[*socialpb.ListGroupsResponse](f.b, ctx, "ListMyGroups", r)
}
func (f fakeSocial) ListMembers(ctx context.Context, r *socialpb.ListMembersRequest) (*socialpb.ListMembersResponse, error) {
	return answer[*socialpb.ListMembersResponse](f.b, ctx, "ListMembers", r)
}

type fakeMessage struct {
	messagepb.UnimplementedMessageServer
	b *backend
}

func (f fakeMessage) History(ctx context.Context, r *messagepb.HistoryRequest) (*messagepb.HistoryResponse, error) {
	return answer[*messagepb.HistoryResponse](f.b, ctx, "History", r)
}
func (f fakeMessage) Sync(ctx context.Context, r *messagepb.SyncRequest) (*messagepb.SyncResponse, error) {
	return answer[*messagepb.SyncResponse](f.b, ctx, "Sync", r)
}
func (f fakeMessage) Publish(ctx context.Context, r *messagepb.PublishRequest) (*messagepb.PublishResponse, error) {
	return answer[*messagepb.PublishResponse](f.b, ctx, "Publish", r)
}

// env is a gateway in an httptest server in front of the three fakes.
type env struct {
	b    *backend
	gw   *Gateway
	url  string
	set  *vm.Set
	grpc string // the fakes' address
}

// startFakes serves the three fakes on 127.0.0.1:0 and returns their
// address.
func startFakes(t *testing.T, b *backend) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	accountpb.RegisterAccountServer(s, fakeAccount{b: b})
	socialpb.RegisterSocialServer(s, fakeSocial{b: b})
	messagepb.RegisterMessageServer(s, fakeMessage{b: b})
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

// newEnv starts the fakes and a gateway with plain gRPC clients of them;
// mod, if not nil, adjusts the Config before New.
func newEnv(t *testing.T, mod func(*Config)) *env {
	t.Helper()
	b := &backend{}
	addr := startFakes(t, b)
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	cfg := Config{
		Account: accountpb.NewAccountClient(cc),
		Social:  socialpb.NewSocialClient(cc),
		Message: messagepb.NewMessageClient(cc),
		Metrics: vm.NewSet(),
		Logger:  slog.New(slog.DiscardHandler),
	}
	if mod != nil {
		mod(&cfg)
	}
	gw, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(srv.Close)
	return &env{b: b, gw: gw, url: srv.URL, set: cfg.Metrics, grpc: addr}
}

// do sends a request and returns the response with its body read.
func (e *env) do(t *testing.T, method, path, body string, header ...string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	return send(t, req)
}

func send(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// metricsText is the Prometheus text of the env's metric set.
func (e *env) metricsText() string {
	var sb strings.Builder
	e.set.WritePrometheus(&sb)
	return sb.String()
}
