package social

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/surgechat/surge/internal/sqldb"
	"github.com/surgechat/surge/services/social/socialpb"
)

// DefaultMaxGroupSize is the members a group may hold, its owner
// included, when Config.MaxGroupSize is zero. Larger audiences are topics,
// not groups: every group message is fanned out to every member's inbox.
const DefaultMaxGroupSize = 500

// Direct-message policies for Config.DirectPolicy.
const (
	DirectAnyone  = "anyone"  // anyone may message anyone not blocked either way
	DirectFriends = "friends" // only friends may message each other
)

// Member roles in a group.
const (
	RoleOwner  = "owner"  // exactly one per group; all rights
	RoleAdmin  = "admin"  // renames, adds members, removes plain members
	RoleMember = "member" // reads the group and its members, may leave
)

// Reasons CheckDirect gives when a direct message is not allowed.
const (
	ReasonBlocked    = "blocked"      // one of the two blocks the other
	ReasonNotFriends = "not_friends"  // DirectPolicy is "friends" and they are not
	ReasonNoSuchUser = "no_such_user" // Config.UserExists denies the recipient
)

// Config configures a Service.
type Config struct {
	// DB selects the database (MySQL/MariaDB or SQLite). New opens it and
	// applies the social migrations, recorded in "social_migrations"; Close
	// closes it. Required.
	DB sqldb.Config

	// MaxGroupSize caps a group's members, owner included. Zero means
	// DefaultMaxGroupSize (500).
	MaxGroupSize int

	// DirectPolicy decides who may send whom direct messages, besides
	// blocks: DirectAnyone or DirectFriends. "" means DirectAnyone.
	DirectPolicy string

	// UserExists reports whether user names an account. It is asked about
	// the recipient of a friend request, new group members and (when
	// nothing else forbids it) the recipient of a direct message, and an
	// error from it fails the RPC with Unavailable. Nil means every id that
	// wire.ValidID accepts is a user.
	UserExists func(ctx context.Context, user string) (bool, error)

	// DirectNeedsAccount makes CheckDirect refuse ("no_such_user") a
	// recipient that UserExists denies. False (the zero value) lets direct
	// messages reach any valid id, as development tokens (surge token) and
	// load generators use ids that have no account.
	DirectNeedsAccount bool

	// OnGroupChange, if not nil, is called after every committed change of
	// a group's members with the group's new version (a disbanded group's
	// last one). Calls for one group can arrive out of version order when
	// changes race. Its error is logged and counted
	// (surge_social_group_change_errors_total), never returned to the
	// caller: caches of membership expire anyway. It runs before the RPC
	// answers, detached from the caller's cancellation, for at most
	// GroupChangeTimeout.
	OnGroupChange func(ctx context.Context, groupID string, version int64) error

	// GroupChangeTimeout bounds each OnGroupChange call. Zero means 5s.
	GroupChangeTimeout time.Duration

	// Logger receives errors; nil means slog.Default().
	Logger *slog.Logger
	// Metrics receives the service's counters; nil means a private set.
	Metrics *vm.Set
}

func (c *Config) setDefaults() {
	if c.MaxGroupSize == 0 {
		c.MaxGroupSize = DefaultMaxGroupSize
	}
	if c.DirectPolicy == "" {
		c.DirectPolicy = DirectAnyone
	}
	if c.GroupChangeTimeout == 0 {
		c.GroupChangeTimeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Metrics == nil {
		c.Metrics = vm.NewSet()
	}
}

func (c *Config) validate() error {
	switch {
	case c.MaxGroupSize < 1:
		return fmt.Errorf("social: MaxGroupSize %d, want at least 1", c.MaxGroupSize)
	case c.DirectPolicy != DirectAnyone && c.DirectPolicy != DirectFriends:
		return fmt.Errorf("social: DirectPolicy %q, want %q or %q", c.DirectPolicy, DirectAnyone, DirectFriends)
	case c.GroupChangeTimeout < 0:
		return errors.New("social: GroupChangeTimeout is negative")
	}
	return nil
}

// Service implements socialpb.SocialServer.
type Service struct {
	socialpb.UnimplementedSocialServer

	cfg Config
	db  *sqldb.DB
	log *slog.Logger

	groupChanges      *vm.Counter // OnGroupChange calls
	groupChangeErrors *vm.Counter // of which failed
	userExistsErrors  *vm.Counter // UserExists calls that failed
	internalErrors    *vm.Counter // RPCs that failed with Internal
	errLog            logLimit    // of the Internal errors
}

// New opens and migrates the database that cfg names and returns the
// service, ready to Register.
func New(ctx context.Context, cfg Config) (*Service, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	db, err := sqldb.Open(ctx, cfg.DB)
	if err != nil {
		return nil, fmt.Errorf("social: %w", err)
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("social: %w", err)
	}
	m := cfg.Metrics
	return &Service{
		cfg:               cfg,
		db:                db,
		log:               cfg.Logger.With("component", "social"),
		groupChanges:      m.NewCounter("surge_social_group_changes_total"),
		groupChangeErrors: m.NewCounter("surge_social_group_change_errors_total"),
		userExistsErrors:  m.NewCounter("surge_social_user_exists_errors_total"),
		internalErrors:    m.NewCounter("surge_social_internal_errors_total"),
	}, nil
}

// Register mounts the service on a gRPC server (such as the one
// internal/grpcx builds, whose interceptors supply the principal).
func (s *Service) Register(r grpc.ServiceRegistrar) {
	socialpb.RegisterSocialServer(r, s)
}

// Ping checks that the database answers, for readiness checks.
func (s *Service) Ping(ctx context.Context) error { return s.db.Ping(ctx) }

// Close closes the database. Stop the gRPC server first.
func (s *Service) Close() error { return s.db.Close() }

// groupChanged tells OnGroupChange about a committed membership change.
func (s *Service) groupChanged(ctx context.Context, group string, version int64) {
	if s.cfg.OnGroupChange == nil {
		return
	}
	s.groupChanges.Inc()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.GroupChangeTimeout)
	defer cancel()
	if err := s.cfg.OnGroupChange(ctx, group, version); err != nil {
		s.groupChangeErrors.Inc()
		s.log.Warn("group change not announced; caches catch up when they expire",
			"group", group, "version", version, "err", err)
	}
}

// checkUsers fails with NotFound "no such user: <id>" unless
// Config.UserExists accepts every one of users.
func (s *Service) checkUsers(ctx context.Context, users ...string) error {
	if s.cfg.UserExists == nil {
		return nil
	}
	for _, u := range users {
		ok, err := s.userExists(ctx, u)
		if err != nil {
			return err
		}
		if !ok {
			return errf(codes.NotFound, "no such user: %s", u)
		}
	}
	return nil
}

// userExists asks Config.UserExists (which must be set) about user; its
// error becomes Unavailable.
func (s *Service) userExists(ctx context.Context, user string) (bool, error) {
	ok, err := s.cfg.UserExists(ctx, user)
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		s.userExistsErrors.Inc()
		s.log.Warn("user lookup failed", "user", user, "err", err)
		return false, errf(codes.Unavailable, "user lookup failed")
	}
	return ok, nil
}
