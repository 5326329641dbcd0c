package message

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/surgechat/surge/internal/grpcx"
	"github.com/surgechat/surge/internal/kafka"
	"github.com/surgechat/surge/internal/socialcache"
	"github.com/surgechat/surge/internal/store"
	"github.com/surgechat/surge/internal/wire"
	"github.com/surgechat/surge/router"
	"github.com/surgechat/surge/services/message/messagepb"
)

// Config configures a Service.
type Config struct {
	Store    store.Store        // the inbox store; required
	Ring     *router.Ring       // owner → partition, as the edges and shards use it; required
	Producer *kgo.Client        // produces publishes (kafka.ProducerOptions); required
	Topic    string             // "" means kafka.DefaultTopic
	Social   *socialcache.Cache // group membership for group history; nil refuses group history
	Logger   *slog.Logger       // nil means slog.Default()
	// MaxBody bounds a published body, in bytes; 0 means 4 KiB, as the
	// edge's default.
	MaxBody int
}

// Page sizes of History and Sync.
const (
	defaultLimit = 50
	maxLimit     = 500
)

// Service implements messagepb.MessageServer.
type Service struct {
	messagepb.UnimplementedMessageServer
	cfg Config
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("message: no store")
	case cfg.Ring == nil:
		return nil, errors.New("message: no ring")
	case cfg.Producer == nil:
		return nil, errors.New("message: no producer")
	}
	if cfg.Topic == "" {
		cfg.Topic = kafka.DefaultTopic
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 4 << 10
	}
	return &Service{cfg: cfg}, nil
}

// Register mounts the service on s.
func (s *Service) Register(srv grpc.ServiceRegistrar) {
	messagepb.RegisterMessageServer(srv, s)
}

func caller(ctx context.Context) (string, error) {
	p, ok := grpcx.PrincipalFrom(ctx)
	if !ok || p.User == "" {
		return "", status.Error(codes.Unauthenticated, "a user token is required")
	}
	return p.User, nil
}

func limitOf(l int32) int {
	switch {
	case l <= 0:
		return defaultLimit
	case l > maxLimit:
		return maxLimit
	}
	return int(l)
}

// History pages through one of the caller's conversations.
func (s *Service) History(ctx context.Context, req *messagepb.HistoryRequest) (*messagepb.HistoryResponse, error) {
	user, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	conv := req.GetConv()
	owner := user
	switch group, isGroup := strings.CutPrefix(conv, "g/"); {
	case isGroup:
		if !wire.ValidID(group) {
			return nil, status.Error(codes.InvalidArgument, "conv: a group conversation is g/<group id>")
		}
		if err := s.member(ctx, group, user); err != nil {
			return nil, err
		}
		owner = conv // the group's timeline
	case !wire.ValidID(conv):
		return nil, status.Error(codes.InvalidArgument, "conv must be a user id, or g/<group id>")
	}
	if req.GetBeforeSeq() != 0 && req.GetAfterSeq() != 0 {
		return nil, status.Error(codes.InvalidArgument, "give before_seq or after_seq, not both")
	}
	q := store.ConvQuery{
		Conv: conv, After: req.GetAfterSeq(), Before: req.GetBeforeSeq(),
		Since: req.GetSince(), Until: req.GetUntil(), Limit: limitOf(req.GetLimit()),
	}
	if owner == conv {
		q.Conv = "" // the whole timeline is the conversation
	}
	msgs, more, err := s.cfg.Store.Conversation(ctx, s.cfg.Ring.Partition(owner), owner, q)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "history store: %v", err)
	}
	return &messagepb.HistoryResponse{Messages: toProto(msgs), More: more}, nil
}

func (s *Service) member(ctx context.Context, group, user string) error {
	if s.cfg.Social == nil {
		return status.Error(codes.Unavailable, "group history needs the social service")
	}
	m, err := s.cfg.Social.Membership(ctx, group)
	if err != nil {
		return status.Errorf(codes.Unavailable, "group membership: %v", err)
	}
	if !m.Exists || !m.Has(user) {
		return status.Error(codes.PermissionDenied, "not a member of group "+group)
	}
	return nil
}

// Sync returns the caller's inbox after a sequence.
func (s *Service) Sync(ctx context.Context, req *messagepb.SyncRequest) (*messagepb.SyncResponse, error) {
	user, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	limit := limitOf(req.GetLimit())
	msgs, err := s.cfg.Store.Inbox(ctx, s.cfg.Ring.Partition(user), user, req.GetAfter(), limit+1)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "inbox store: %v", err)
	}
	resp := &messagepb.SyncResponse{Last: req.GetAfter()}
	if len(msgs) > limit {
		msgs, resp.More = msgs[:limit], true
	}
	if len(msgs) > 0 {
		resp.Last = msgs[len(msgs)-1].Seq
	}
	resp.Messages = toProto(msgs)
	return resp, nil
}

// Publish pushes a message to a user, a group or a topic.
func (s *Service) Publish(ctx context.Context, req *messagepb.PublishRequest) (*messagepb.PublishResponse, error) {
	if err := grpcx.RequireRole(ctx, "operator", grpcx.RoleService); err != nil {
		return nil, err
	}
	from := req.GetFrom()
	if from == "" {
		from = "system"
	}
	id := req.GetId()
	switch {
	case !wire.ValidID(from):
		return nil, status.Error(codes.InvalidArgument, "from must be 1-64 characters of A-Z a-z 0-9 _ . - @")
	case len(req.GetBody()) > s.cfg.MaxBody:
		return nil, status.Errorf(codes.InvalidArgument, "body exceeds %d bytes", s.cfg.MaxBody)
	case id == "" && req.GetTopic() == "":
		return nil, status.Error(codes.InvalidArgument, "id is required: it makes a retried publish land once")
	case id != "" && !wire.ValidID(id):
		return nil, status.Error(codes.InvalidArgument, "id must be 1-64 characters of A-Z a-z 0-9 _ . - @")
	}
	now := time.Now().UnixMicro()
	var r wire.Record
	var owner string
	switch t := req.GetTarget().(type) {
	case *messagepb.PublishRequest_User:
		owner = t.User
		r = wire.Record{Kind: wire.KindAppend, Owners: []string{t.User}, Conv: from}
	case *messagepb.PublishRequest_Group:
		owner = "g/" + t.Group
		r = wire.Record{Kind: wire.KindGroupSend, Group: t.Group, Trusted: true}
		if !wire.ValidID(t.Group) {
			return nil, status.Error(codes.InvalidArgument, "group must be a group id")
		}
		if s.cfg.Social == nil {
			return nil, status.Error(codes.Unavailable, "publishing to a group needs the social service")
		}
		m, err := s.cfg.Social.Membership(ctx, t.Group)
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "group membership: %v", err)
		}
		if !m.Exists {
			return nil, status.Error(codes.NotFound, "no such group")
		}
	case *messagepb.PublishRequest_Topic:
		owner = "t/" + t.Topic
		r = wire.Record{Kind: wire.KindTopic, Topic: t.Topic}
		if !wire.ValidID(t.Topic) {
			return nil, status.Error(codes.InvalidArgument, "topic must be 1-64 characters of A-Z a-z 0-9 _ . - @")
		}
		if id == "" {
			id = "t" + time.Now().Format("20060102150405.000000000")
		}
	default:
		return nil, status.Error(codes.InvalidArgument, "target: give one of user, group or topic")
	}
	if r.Kind == wire.KindAppend && !wire.ValidID(owner) {
		return nil, status.Error(codes.InvalidArgument, "user must be a user id")
	}
	r.ID = wire.NewMsgID(from, owner, id)
	r.Sender, r.ClientMsgID, r.Body, r.SentAt = from, id, []byte(req.GetBody()), now
	kr := &kgo.Record{
		Topic:     s.cfg.Topic,
		Partition: s.cfg.Ring.Partition(owner),
		Key:       []byte(owner),
		Value:     wire.AppendRecord(nil, &r),
	}
	if err := s.cfg.Producer.ProduceSync(ctx, kr).FirstErr(); err != nil {
		return nil, status.Errorf(codes.Unavailable, "not published: %v; retry with the same id", err)
	}
	return &messagepb.PublishResponse{MsgId: string(wire.AppendMsgID(nil, r.ID))}, nil
}

func toProto(msgs []store.Message) []*messagepb.Msg {
	out := make([]*messagepb.Msg, len(msgs))
	for i := range msgs {
		m := &msgs[i]
		out[i] = &messagepb.Msg{
			Seq: m.Seq, MsgId: string(wire.AppendMsgID(nil, m.ID)), Conv: m.Conv, From: m.Sender,
			Id: m.ClientMsgID, Body: string(m.Body), SentAt: m.SentAt, StoredAt: m.StoredAt,
		}
	}
	return out
}
