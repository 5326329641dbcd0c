package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/surgechat/surge/internal/grpcx"
	"github.com/surgechat/surge/services/account/accountpb"
	"github.com/surgechat/surge/services/message/messagepb"
	"github.com/surgechat/surge/services/social/socialpb"
)

var (
	// Requests: unknown fields are errors, so typos fail loudly.
	unmarshalJSON = protojson.UnmarshalOptions{DiscardUnknown: false}
	// Responses: proto field names, every field present.
	marshalJSON = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}
)

// noServiceToken keeps a grpcx connection's own token (ClientConfig.Token)
// off calls made for a client: a request without an Authorization header
// reaches the service without one. Other connections ignore it.
var noServiceToken = grpcx.WithToken(func() string { return "" })

// route maps one method and path onto one RPC.
type route struct {
	pattern string     // ServeMux pattern: "METHOD /path/{wildcard}"
	service string     // for "<service> service not configured"
	status  int        // on success; 0 means 200. 204 sends no body.
	body    bool       // the request message is the JSON body
	path    []pathVar  // wildcards that fill request fields
	query   []string   // query parameters allowed, by request field name
	rpc     rpcBinding // the call
}

// pathVar fills the request field named field with prefix + the value of
// the pattern's wildcard.
type pathVar struct {
	wildcard, field, prefix string
}

func vars(pairs ...string) []pathVar {
	out := make([]pathVar, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, pathVar{wildcard: pairs[i], field: pairs[i+1]})
	}
	return out
}

var (
	pageQuery    = []string{"page_size", "page_token"}
	historyQuery = []string{"before_seq", "after_seq", "since", "until", "limit"}
)

// rpcBinding is one method of one client, typed away.
type rpcBinding struct {
	configured bool
	newReq     func() proto.Message
	respType   protoreflect.MessageType
	call       func(ctx context.Context, req proto.Message, opts ...grpc.CallOption) (proto.Message, error)
}

// unary binds method m (a method expression such as
// accountpb.AccountClient.Register) of client c, which may be nil.
func unary[C any, Req, Resp proto.Message](c C, m func(C, context.Context, Req, ...grpc.CallOption) (Resp, error)) rpcBinding {
	var req Req
	var resp Resp
	typ := req.ProtoReflect().Type()
	return rpcBinding{
		configured: any(c) != nil,
		newReq:     func() proto.Message { return typ.New().Interface() },
		respType:   resp.ProtoReflect().Type(),
		call: func(ctx context.Context, req proto.Message, opts ...grpc.CallOption) (proto.Message, error) {
			resp, err := m(c, ctx, req.(Req), opts...)
			if err != nil {
				return nil, err
			}
			return resp, nil
		},
	}
}

// routes is the API: docs/HTTP_API.md documents each one.
func (g *Gateway) routes() []route {
	a, s, m := g.cfg.Account, g.cfg.Social, g.cfg.Message
	type (
		A = accountpb.AccountClient
		S = socialpb.SocialClient
		M = messagepb.MessageClient
	)
	accounts := []route{
		{pattern: "POST /v1/accounts", status: 201, body: true, rpc: unary(a, A.Register)},
		{pattern: "POST /v1/auth/login", body: true, rpc: unary(a, A.Login)},
		{pattern: "POST /v1/auth/refresh", body: true, rpc: unary(a, A.Refresh)},
		{pattern: "POST /v1/auth/logout", status: 204, body: true, rpc: unary(a, A.Logout)},
		{pattern: "GET /v1/me", rpc: unary(a, A.GetProfile)},
		{pattern: "PATCH /v1/me", body: true, rpc: unary(a, A.UpdateProfile)},
		{pattern: "GET /v1/users/{id}", path: vars("id", "user_id"), rpc: unary(a, A.GetProfile)},
		{pattern: "PUT /v1/users/{id}/roles", body: true, path: vars("id", "user_id"), rpc: unary(a, A.SetRoles)},
	}
	social := []route{
		{pattern: "POST /v1/friends/requests", status: 201, body: true, rpc: unary(s, S.SendFriendRequest)},
		{pattern: "GET /v1/friends/requests", rpc: unary(s, S.ListFriendRequests)},
		{pattern: "POST /v1/friends/requests/{user}/accept", path: vars("user", "user"), rpc: unary(s, S.AcceptFriendRequest)},
		{pattern: "POST /v1/friends/requests/{user}/decline", status: 204, path: vars("user", "user"), rpc: unary(s, S.DeclineFriendRequest)},
		{pattern: "GET /v1/friends", query: pageQuery, rpc: unary(s, S.ListFriends)},
		{pattern: "DELETE /v1/friends/{user}", status: 204, path: vars("user", "user"), rpc: unary(s, S.RemoveFriend)},

		{pattern: "PUT /v1/blocks/{user}", status: 204, path: vars("user", "user"), rpc: unary(s, S.Block)},
		{pattern: "DELETE /v1/blocks/{user}", status: 204, path: vars("user", "user"), rpc: unary(s, S.Unblock)},
		{pattern: "GET /v1/blocks", rpc: unary(s, S.ListBlocked)},

		{pattern: "POST /v1/groups", status: 201, body: true, rpc: unary(s, S.CreateGroup)},
		{pattern: "GET /v1/groups", query: pageQuery, rpc: unary(s, S.ListMyGroups)},
		{pattern: "GET /v1/groups/{id}", path: vars("id", "group_id"), rpc: unary(s, S.GetGroup)},
		{pattern: "PATCH /v1/groups/{id}", body: true, path: vars("id", "group_id"), rpc: unary(s, S.UpdateGroup)},
		{pattern: "DELETE /v1/groups/{id}", status: 204, path: vars("id", "group_id"), rpc: unary(s, S.DisbandGroup)},
		{pattern: "POST /v1/groups/{id}/members", body: true, path: vars("id", "group_id"), rpc: unary(s, S.AddMembers)},
		{pattern: "GET /v1/groups/{id}/members", query: pageQuery, path: vars("id", "group_id"), rpc: unary(s, S.ListMembers)},
		{pattern: "DELETE /v1/groups/{id}/members/{user}", status: 204, path: vars("id", "group_id", "user", "user"), rpc: unary(s, S.RemoveMember)},
		{pattern: "PUT /v1/groups/{id}/members/{user}/role", body: true, path: vars("id", "group_id", "user", "user"), rpc: unary(s, S.SetMemberRole)},
		{pattern: "POST /v1/groups/{id}/leave", status: 204, path: vars("id", "group_id"), rpc: unary(s, S.LeaveGroup)},
	}
	messages := []route{
		// conv is a user id, or "g%2F<id>" for a group (the escaped slash
		// stays inside the segment); the next route takes "g/<id>" as is.
		{pattern: "GET /v1/conversations/{conv}/messages", query: historyQuery, path: vars("conv", "conv"), rpc: unary(m, M.History)},
		{pattern: "GET /v1/conversations/g/{group}/messages", query: historyQuery,
			path: []pathVar{{wildcard: "group", field: "conv", prefix: "g/"}}, rpc: unary(m, M.History)},
		{pattern: "GET /v1/sync", query: []string{"after", "limit"}, rpc: unary(m, M.Sync)},
		{pattern: "POST /v1/publish", body: true, rpc: unary(m, M.Publish)},
	}
	var out []route
	for _, set := range []struct {
		name   string
		routes []route
	}{{"account", accounts}, {"social", social}, {"message", messages}} {
		for _, rt := range set.routes {
			rt.service = set.name
			if rt.status == 0 {
				rt.status = http.StatusOK
			}
			out = append(out, rt)
		}
	}
	return out
}

// check verifies that the fields rt names exist in its request message as
// singular scalars that fill knows how to set.
func (rt *route) check() error {
	desc := rt.rpc.newReq().ProtoReflect().Descriptor()
	names := slices.Clone(rt.query)
	for _, v := range rt.path {
		names = append(names, v.field)
	}
	for _, n := range names {
		fd := desc.Fields().ByName(protoreflect.Name(n))
		if fd == nil {
			return fmt.Errorf("%s has no field %q", desc.FullName(), n)
		}
		if fd.IsList() || fd.IsMap() || !settable(fd.Kind()) {
			return fmt.Errorf("field %q of %s is not a singular scalar", n, desc.FullName())
		}
	}
	return nil
}

// handler serves rt and counts it in rm.
func (g *Gateway) handler(rt route, rm *routeMetrics) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		code := g.serve(w, r, &rt)
		d := time.Since(start)
		rm.observe(r.Method, code, d)
		g.log.Debug("http request", "method", r.Method, "route", rt.pattern, "code", code, "duration", d)
	})
}

// serve answers r and returns the status it wrote.
func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, rt *route) int {
	if !rt.rpc.configured {
		return writeError(w, &apiError{status: http.StatusServiceUnavailable, code: "UNAVAILABLE",
			msg: rt.service + " service not configured"})
	}
	req := rt.rpc.newReq()
	if err := g.fill(w, r, rt, req); err != nil {
		var e *apiError
		if !errors.As(err, &e) {
			e = badRequest(err.Error())
		}
		return writeError(w, e)
	}
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.Timeout)
	defer cancel()
	md := metadata.MD{"x-forwarded-for": {g.clientAddr(r)}}
	if auth := r.Header.Values("Authorization"); len(auth) > 0 {
		md["authorization"] = auth
	}
	resp, err := rt.rpc.call(metadata.NewOutgoingContext(ctx, md), req, noServiceToken)
	if err != nil {
		e := fromRPC(err)
		if e.status >= 500 && e.status != http.StatusServiceUnavailable && e.status != http.StatusNotImplemented {
			if ok, suppressed := g.failures.allow(time.Now()); ok {
				g.log.Warn("gateway: downstream call failed", "route", rt.pattern, "err", err, "suppressed", suppressed)
			}
		}
		return writeError(w, e)
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if rt.status == http.StatusNoContent {
		w.WriteHeader(rt.status)
		return rt.status
	}
	out, err := marshalJSON.Marshal(resp)
	if err == nil {
		// protojson varies its spacing on purpose; clients get it compact.
		var buf bytes.Buffer
		if err = json.Compact(&buf, out); err == nil {
			out = buf.Bytes()
		}
	}
	if err != nil {
		return writeError(w, &apiError{status: http.StatusInternalServerError, code: "INTERNAL", msg: "encode response: " + err.Error()})
	}
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(rt.status)
	_, _ = w.Write(append(out, '\n'))
	return rt.status
}

// fill sets req from r's body (if rt takes one), query and path.
func (g *Gateway) fill(w http.ResponseWriter, r *http.Request, rt *route, req proto.Message) error {
	if rt.body {
		if err := g.readBody(w, r, req); err != nil {
			return err
		}
	}
	msg := req.ProtoReflect()
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return fmt.Errorf("malformed query: %v", err)
	}
	for k, vs := range q {
		if !slices.Contains(rt.query, k) {
			if len(rt.query) == 0 {
				return fmt.Errorf("unknown query parameter %q: this endpoint takes none", k)
			}
			return fmt.Errorf("unknown query parameter %q: this endpoint takes %v", k, rt.query)
		}
		if len(vs) != 1 {
			return fmt.Errorf("query parameter %q given %d times", k, len(vs))
		}
		if err := setScalar(msg, k, vs[0]); err != nil {
			return err
		}
	}
	for _, v := range rt.path {
		val := v.prefix + r.PathValue(v.wildcard)
		fd := msg.Descriptor().Fields().ByName(protoreflect.Name(v.field))
		if cur := msg.Get(fd).String(); cur != "" && cur != val {
			return fmt.Errorf("%q is %q in the body but %q in the path", v.field, cur, val)
		}
		if err := setScalar(msg, v.field, val); err != nil {
			return err
		}
	}
	return nil
}

// readBody decodes r's JSON body into req. An empty body is {}.
func (g *Gateway) readBody(w http.ResponseWriter, r *http.Request, req proto.Message) error {
	limit := g.cfg.MaxBodyBytes
	tooLarge := &apiError{status: http.StatusRequestEntityTooLarge, code: codePayloadTooLarge,
		msg: fmt.Sprintf("request body larger than %d bytes", limit)}
	if r.ContentLength > limit {
		return tooLarge
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return tooLarge
		}
		return fmt.Errorf("read body: %v", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	if err := unmarshalJSON.Unmarshal(b, req); err != nil {
		return fmt.Errorf("invalid JSON body: %v", err)
	}
	return nil
}

func settable(k protoreflect.Kind) bool {
	switch k {
	case protoreflect.StringKind, protoreflect.BoolKind,
		protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind,
		protoreflect.Uint32Kind, protoreflect.Fixed32Kind,
		protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return true
	}
	return false
}

// setScalar sets msg's field name (checked by route.check) from the text v.
func setScalar(msg protoreflect.Message, name, v string) error {
	fd := msg.Descriptor().Fields().ByName(protoreflect.Name(name))
	var val protoreflect.Value
	var err error
	switch fd.Kind() {
	case protoreflect.StringKind:
		val = protoreflect.ValueOfString(v)
	case protoreflect.BoolKind:
		var b bool
		b, err = strconv.ParseBool(v)
		val = protoreflect.ValueOfBool(b)
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		var n int64
		n, err = strconv.ParseInt(v, 10, 32)
		val = protoreflect.ValueOfInt32(int32(n))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		var n int64
		n, err = strconv.ParseInt(v, 10, 64)
		val = protoreflect.ValueOfInt64(n)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		var n uint64
		n, err = strconv.ParseUint(v, 10, 32)
		val = protoreflect.ValueOfUint32(uint32(n))
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		var n uint64
		n, err = strconv.ParseUint(v, 10, 64)
		val = protoreflect.ValueOfUint64(n)
	}
	if err != nil {
		return fmt.Errorf("%s: %q is not a valid %s", name, v, fd.Kind())
	}
	msg.Set(fd, val)
	return nil
}
