package account

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"google.golang.org/grpc"

	"github.com/surgechat/surge/internal/auth"
	"github.com/surgechat/surge/internal/sqldb"
	"github.com/surgechat/surge/services/account/accountpb"
)

// Defaults of Config's durations.
const (
	DefaultAccessTTL       = 15 * time.Minute
	DefaultRefreshTTL      = 30 * 24 * time.Hour
	DefaultCleanupInterval = time.Hour
)

// DefaultPort is the account service's conventional gRPC port.
const DefaultPort = 60051

// ServiceName is the gRPC service's full name, as health checks and
// grpcx.Server.SetServing name it.
const ServiceName = "surge.account.v1.Account"

// Config configures a Service. Keys and DB are required; every other zero
// value means the default stated beside it.
type Config struct {
	// DB is the database the service owns (users, refresh tokens). New
	// opens it and applies the migrations (version table
	// "account_migrations"); Close closes it. Required.
	DB sqldb.Config
	// Keys signs access tokens with its active key, naming it in the kid
	// header. Share it (the same keyring file) with everything that
	// verifies tokens: the edge and every gRPC server. Required.
	Keys *auth.Keyring

	// AccessTTL is the lifetime of an access token. Zero means 15 minutes.
	// Access tokens are not revocable: Logout and SetRoles take effect on
	// a user's access within one AccessTTL.
	AccessTTL time.Duration
	// RefreshTTL is the lifetime of a refresh token; every refresh issues
	// a new one with a full lifetime. Zero means 30 days.
	RefreshTTL time.Duration

	// Operators are usernames that get the operator role when they
	// register (the bootstrap: an operator can then grant the role with
	// SetRoles). Existing accounts are not changed. Whoever registers one
	// of these names first gets the role, so register them before opening
	// registration to others. Empty means nobody.
	Operators []string

	// Argon2 are the cost parameters of new password hashes; zero fields
	// mean DefaultArgon2 (OWASP's m=19456 KiB, t=2, p=1). Lower them only
	// in tests.
	Argon2 Argon2Params
	// MaxConcurrentHashes bounds password hashes running at once (each
	// holds Argon2.Memory KiB); the rest wait. Zero means GOMAXPROCS.
	MaxConcurrentHashes int

	// Throttle bounds failed logins per account and per client address;
	// see ThrottleConfig for its defaults (5 and 20 per 15 minutes).
	Throttle ThrottleConfig
	// TrustForwardedFor makes the throttle take a caller's address from
	// the first entry of the "x-forwarded-for" metadata, which the HTTP
	// gateway sets, instead of the connection's peer address. Turn it on
	// only when every caller is a trusted gateway: anyone else could pick
	// their address. False means peer addresses only.
	TrustForwardedFor bool

	// CleanupInterval is how often expired refresh tokens are deleted.
	// Zero means one hour; negative means never.
	CleanupInterval time.Duration
	// Now is the clock for token lifetimes and the throttle. Nil means
	// time.Now. Tests set it.
	Now func() time.Time
	// Logger receives the service's logs. Nil means slog.Default().
	Logger *slog.Logger
	// Metrics receives the service's metrics (surge_account_*); give each
	// Service its own or a shared set, but never one set to two Services.
	// Nil means a private set.
	Metrics *vm.Set
}

func (c *Config) setDefaults() {
	if c.AccessTTL == 0 {
		c.AccessTTL = DefaultAccessTTL
	}
	if c.RefreshTTL == 0 {
		c.RefreshTTL = DefaultRefreshTTL
	}
	c.Argon2.setDefaults()
	if c.MaxConcurrentHashes == 0 {
		c.MaxConcurrentHashes = runtime.GOMAXPROCS(0)
	}
	c.Throttle.setDefaults()
	if c.CleanupInterval == 0 {
		c.CleanupInterval = DefaultCleanupInterval
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Metrics == nil {
		c.Metrics = vm.NewSet()
	}
}

func (c *Config) validate() error {
	if c.Keys == nil {
		return errors.New("Config.Keys is nil")
	}
	if c.AccessTTL < 0 || c.RefreshTTL < 0 {
		return errors.New("Config.AccessTTL and RefreshTTL must not be negative")
	}
	if c.MaxConcurrentHashes < 0 {
		return errors.New("Config.MaxConcurrentHashes must not be negative")
	}
	if err := c.Argon2.validate(); err != nil {
		return fmt.Errorf("Config.Argon2: %w", err)
	}
	for i, op := range c.Operators {
		id, msg := normalizeUsername(op)
		if msg != "" {
			return fmt.Errorf("Config.Operators: %q: %s", op, msg)
		}
		c.Operators[i] = id
	}
	return nil
}

// Service implements the Account gRPC API (accountpb.AccountServer). Its
// methods are safe for concurrent use.
type Service struct {
	accountpb.UnimplementedAccountServer

	cfg       Config
	db        db
	log       *slog.Logger
	m         *serviceMetrics
	hasher    *hasher
	throttle  *throttle
	operators map[string]bool

	stop        context.CancelFunc // ends the janitor
	janitorDone chan struct{}
}

// New opens and migrates the database and returns a Service ready to be
// registered on a gRPC server (Register). Close it when done.
func New(ctx context.Context, cfg Config) (*Service, error) {
	cfg.Operators = append([]string(nil), cfg.Operators...)
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("account: %w", err)
	}
	h, err := newHasher(cfg.Argon2, cfg.MaxConcurrentHashes)
	if err != nil {
		return nil, err
	}
	sdb, err := sqldb.Open(ctx, cfg.DB)
	if err != nil {
		return nil, fmt.Errorf("account: %w", err)
	}
	if err := sdb.Migrate(ctx, migrations(), migrationsTable); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("account: %w", err)
	}
	th := newThrottle(cfg.Throttle)
	s := &Service{
		cfg:         cfg,
		db:          db{sdb},
		log:         cfg.Logger.With("component", "account"),
		m:           newServiceMetrics(cfg.Metrics),
		hasher:      h,
		throttle:    th,
		operators:   make(map[string]bool, len(cfg.Operators)),
		janitorDone: make(chan struct{}),
	}
	for _, op := range cfg.Operators {
		s.operators[op] = true
	}
	cfg.Metrics.NewGauge(`surge_account_throttle_keys{kind="account"}`, func() float64 { return float64(th.accounts.size()) })
	cfg.Metrics.NewGauge(`surge_account_throttle_keys{kind="address"}`, func() float64 { return float64(th.addresses.size()) })
	jctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	if cfg.CleanupInterval > 0 {
		go s.janitor(jctx, cfg.CleanupInterval)
	} else {
		close(s.janitorDone)
	}
	return s, nil
}

// Close stops the background cleanup and closes the database. Stop the
// gRPC server first: calls still running fail.
func (s *Service) Close() error {
	s.stop()
	<-s.janitorDone
	return s.db.Close()
}

// Ping checks that the database answers, for readiness probes.
func (s *Service) Ping(ctx context.Context) error { return s.db.Ping(ctx) }

// Register mounts svc on srv. The server must authenticate calls with
// internal/grpcx, listing PublicMethods as public. It does not touch
// health: call srv.SetServing(ServiceName, true) when serving.
func Register(srv grpc.ServiceRegistrar, svc *Service) {
	accountpb.RegisterAccountServer(srv, svc)
}

// PublicMethods are the full gRPC method names that need no access token:
// Register, Login and Refresh.
var PublicMethods = []string{
	accountpb.Account_Register_FullMethodName,
	accountpb.Account_Login_FullMethodName,
	accountpb.Account_Refresh_FullMethodName,
}

// serviceMetrics are the service's business counters; the gRPC
// interceptors count requests per method and code.
type serviceMetrics struct {
	registrations  *vm.Counter
	loginOK        *vm.Counter
	loginFailed    *vm.Counter
	loginThrottled *vm.Counter
	refreshOK      *vm.Counter
	refreshReused  *vm.Counter
	refreshInvalid *vm.Counter
	rehashes       *vm.Counter
	internalErrors *vm.Counter
}

func newServiceMetrics(set *vm.Set) *serviceMetrics {
	return &serviceMetrics{
		registrations:  set.NewCounter(`surge_account_registrations_total`),
		loginOK:        set.NewCounter(`surge_account_logins_total{result="ok"}`),
		loginFailed:    set.NewCounter(`surge_account_logins_total{result="failed"}`),
		loginThrottled: set.NewCounter(`surge_account_logins_total{result="throttled"}`),
		refreshOK:      set.NewCounter(`surge_account_refreshes_total{result="ok"}`),
		refreshReused:  set.NewCounter(`surge_account_refreshes_total{result="reused"}`),
		refreshInvalid: set.NewCounter(`surge_account_refreshes_total{result="invalid"}`),
		rehashes:       set.NewCounter(`surge_account_password_rehashes_total`),
		internalErrors: set.NewCounter(`surge_account_internal_errors_total`),
	}
}
