package shard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/surgechat/surge/internal/kafka"
	"github.com/surgechat/surge/internal/metrics"
	"github.com/surgechat/surge/internal/socialcache"
	"github.com/surgechat/surge/internal/store"
	"github.com/surgechat/surge/internal/wire"
	"github.com/surgechat/surge/router"
)

// Config configures a Shard.
type Config struct {
	Brokers []string      // Kafka seed brokers; required
	Topic   string        // topic of owner records; "" means kafka.DefaultTopic
	Group   string        // consumer group of all shards; "" means "surge-shards"
	Ring    *router.Ring  // owner → partition; required, and the same as the edges'
	Store   store.Store   // inbox store; required
	Plane   *router.Plane // delivery plane to the edges; required
	Table   *router.Table // presence; nil means a new one
	Logger  *slog.Logger  // nil means slog.Default()
	Metrics *vm.Set       // where the shard's metrics go; nil means a private set
	// Social answers membership, direct-message and friend questions; nil
	// means no social service: direct messages are not checked, group
	// sends are refused and presence is not told to friends.
	Social *socialcache.Cache
	// PresenceThrottle is the least time between two presence events of
	// one user told to friends; a change inside it is sent when it ends,
	// if it still holds. 0 means 2s.
	PresenceThrottle time.Duration

	// MaxPollRecords bounds one fetched batch; 0 means 2000.
	MaxPollRecords int
	// FetchMaxWait is how long a fetch waits for records; 0 means 50ms.
	FetchMaxWait time.Duration
	// DefaultLease is how long a connect record keeps its session alive
	// before the edge's next lease record; 0 means 60s.
	DefaultLease time.Duration
	// ExpireEvery is how often expired leases are swept; 0 means 1s.
	ExpireEvery time.Duration
}

func (c *Config) setDefaults() {
	if c.Topic == "" {
		c.Topic = kafka.DefaultTopic
	}
	if c.Group == "" {
		c.Group = "surge-shards"
	}
	if c.Table == nil {
		c.Table = router.NewTable()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Metrics == nil {
		c.Metrics = vm.NewSet()
	}
	if c.MaxPollRecords <= 0 {
		c.MaxPollRecords = 2000
	}
	if c.FetchMaxWait <= 0 {
		c.FetchMaxWait = 50 * time.Millisecond
	}
	if c.DefaultLease <= 0 {
		c.DefaultLease = 60 * time.Second
	}
	if c.ExpireEvery <= 0 {
		c.ExpireEvery = time.Second
	}
	if c.PresenceThrottle <= 0 {
		c.PresenceThrottle = 2 * time.Second
	}
}

func (c *Config) validate() error {
	switch {
	case len(c.Brokers) == 0:
		return errors.New("shard: no brokers")
	case c.Ring == nil:
		return errors.New("shard: no ring")
	case c.Store == nil:
		return errors.New("shard: no store")
	case c.Plane == nil:
		return errors.New("shard: no delivery plane")
	}
	return nil
}

// Shard consumes owner records as one member of the shards' consumer group.
type Shard struct {
	cfg Config
	cl  *kgo.Client
	log *slog.Logger
	m   *shardMetrics

	mu     sync.Mutex
	owned  map[int32]bool // partitions assigned to this member
	fenced map[int32]bool // partitions another writer took; paused until reassigned

	b        batch // reused by process; only Run touches it
	presence *notifier
}

// New creates a shard and joins the consumer group; records flow once Run
// is called.
func New(cfg Config) (*Shard, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Shard{
		cfg:    cfg,
		log:    cfg.Logger.With("component", "shard"),
		owned:  make(map[int32]bool),
		fenced: make(map[int32]bool),
	}
	s.m = newShardMetrics(cfg.Metrics, cfg.Table)
	s.presence = newNotifier(s)
	opts := append(kafka.ProducerOptions(cfg.Brokers),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchMaxWait(cfg.FetchMaxWait),
		kgo.OnPartitionsAssigned(s.assigned),
		kgo.OnPartitionsRevoked(s.revoked),
		kgo.OnPartitionsLost(s.revoked),
		kgo.WithLogger(kafka.Logger(s.log)),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("shard: kafka client: %w", err)
	}
	s.cl = cl
	return s, nil
}

// Table returns the presence table the shard maintains.
func (s *Shard) Table() *router.Table { return s.cfg.Table }

// Ping checks that the brokers answer.
func (s *Shard) Ping(ctx context.Context) error { return kafka.Ping(ctx, s.cl) }

// Run consumes until ctx ends, then leaves the group and returns nil.
func (s *Shard) Run(ctx context.Context) error {
	defer s.cl.Close()
	go s.expireLoop(ctx)
	go s.presence.run(ctx)
	// Steps 3 and 4 of a poll (produce what it caused elsewhere, then
	// commit) run on the committer while the next poll is read, stored and
	// pushed: a poll's offsets are still committed only after its effects
	// are durable, and polls commit in order.
	jobs := make(chan commitJob, 2)
	done := make(chan struct{})
	go s.committer(ctx, jobs, done)
	defer func() { close(jobs); <-done }()
	for {
		fetches := s.cl.PollRecords(ctx, s.cfg.MaxPollRecords)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			s.cl.AllowRebalance()
			return nil
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				s.log.Warn("fetch", "topic", topic, "partition", p, "err", err)
			}
		})
		commit, err := s.poll(ctx, fetches)
		if err != nil {
			s.cl.AllowRebalance()
			return nil // only the end of ctx stops a poll
		}
		if len(commit) > 0 || len(s.b.copies) > 0 {
			jobs <- commitJob{copies: slices.Clone(s.b.copies), commit: commit}
		}
		s.cl.AllowRebalance()
	}
}

// commitJob is the tail of one poll: records to produce, then offsets to
// commit.
type commitJob struct {
	copies []*kgo.Record
	commit []*kgo.Record
}

func (s *Shard) committer(ctx context.Context, jobs <-chan commitJob, done chan<- struct{}) {
	defer close(done)
	for j := range jobs {
		// 3. What the poll caused on other partitions, durable first.
		if err := s.produceAll(ctx, j.copies); err != nil {
			continue // ctx ended: nothing more is committed; a replay redoes it
		}
		// 4. Commit.
		if len(j.commit) == 0 {
			continue
		}
		if err := s.cl.CommitRecords(ctx, j.commit...); err != nil && ctx.Err() == nil {
			// Effects are durable; a lost commit only means a replay.
			s.log.Warn("commit offsets", "err", err)
		}
	}
}

func (s *Shard) writable(p int32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.owned[p] && !s.fenced[p]
}

func (s *Shard) assigned(_ context.Context, cl *kgo.Client, topics map[string][]int32) {
	parts := topics[s.cfg.Topic]
	s.mu.Lock()
	for _, p := range parts {
		s.owned[p] = true
		delete(s.fenced, p)
	}
	s.mu.Unlock()
	cl.ResumeFetchPartitions(map[string][]int32{s.cfg.Topic: parts})
	s.log.Info("partitions assigned", "partitions", parts)
	for _, p := range parts {
		// Presence for p starts empty here: ask the edges who is connected.
		s.cfg.Plane.Announce(p)
	}
}

func (s *Shard) revoked(_ context.Context, _ *kgo.Client, topics map[string][]int32) {
	parts := topics[s.cfg.Topic]
	s.mu.Lock()
	for _, p := range parts {
		delete(s.owned, p)
		delete(s.fenced, p)
	}
	s.mu.Unlock()
	for _, p := range parts {
		s.cfg.Table.DropPartition(p)
	}
	s.log.Info("partitions revoked", "partitions", parts)
}

// fence stops writing partition p: another shard wrote a sequence number
// this one was about to assign, so p has moved. Fetching pauses until the
// group assigns p here again.
func (s *Shard) fence(p int32) {
	s.mu.Lock()
	s.fenced[p] = true
	s.mu.Unlock()
	s.cl.PauseFetchPartitions(map[string][]int32{s.cfg.Topic: {p}})
	s.cfg.Table.DropPartition(p)
}

func (s *Shard) expireLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.ExpireEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			off := s.cfg.Table.Expire(now)
			s.m.leasesExpired.Add(len(off))
			for _, u := range off {
				s.presence.changed(u, false)
			}
		}
	}
}

type shardMetrics struct {
	set           *vm.Set
	records       [wire.KindTopic + 1]*vm.Counter // by wire.Kind
	badRecords    *vm.Counter
	stored        *vm.Counter
	duplicates    *vm.Counter
	deliveries    *vm.Counter
	undelivered   *vm.Counter
	copies        *vm.Counter
	storeErrors   *vm.Counter
	conflicts     *vm.Counter
	leasesExpired *vm.Counter
	degraded      *vm.Counter
	socialWaits   *vm.Counter
	rejected      *vm.Counter
	presenceSent  *vm.Counter
	presenceDrop  *vm.Counter
	fanout        *vm.Histogram
	topicPushes   *vm.Counter
	appendLatency *vm.PrometheusHistogram
	deliveryLat   *vm.PrometheusHistogram
	batchSize     *vm.Histogram

	lagMu sync.Mutex
	lags  map[int32]int64
}

func newShardMetrics(set *vm.Set, table *router.Table) *shardMetrics {
	m := &shardMetrics{set: set, lags: make(map[int32]int64)}
	for k := wire.KindSend; k <= wire.KindTopic; k++ {
		m.records[k] = set.NewCounter(`surge_kafka_consumed_records_total{kind="` + k.String() + `"}`)
	}
	m.badRecords = set.NewCounter(`surge_kafka_consumed_records_total{kind="malformed"}`)
	m.stored = set.NewCounter(`surge_shard_messages_stored_total`)
	m.duplicates = set.NewCounter(`surge_shard_messages_duplicate_total`)
	m.deliveries = set.NewCounter(`surge_shard_deliveries_total{result="pushed"}`)
	m.undelivered = set.NewCounter(`surge_shard_deliveries_total{result="edge_gone"}`)
	m.copies = set.NewCounter(`surge_kafka_produced_records_total{role="shard"}`)
	m.storeErrors = set.NewCounter(`surge_shard_store_errors_total`)
	m.conflicts = set.NewCounter(`surge_shard_fenced_total`)
	m.leasesExpired = set.NewCounter(`surge_presence_lease_expired_total`)
	m.degraded = set.NewCounter(`surge_shard_degraded_total{check="direct"}`)
	m.socialWaits = set.NewCounter(`surge_shard_social_waits_total`)
	m.rejected = set.NewCounter(`surge_shard_rejected_total`)
	m.presenceSent = set.NewCounter(`surge_presence_events_total{result="sent"}`)
	m.presenceDrop = set.NewCounter(`surge_presence_events_total{result="dropped"}`)
	m.fanout = set.NewHistogram(`surge_group_fanout_members`)
	m.topicPushes = set.NewCounter(`surge_topic_pushes_total`)
	m.appendLatency = metrics.Histogram(set, `surge_store_append_seconds`)
	m.deliveryLat = metrics.Histogram(set, `surge_delivery_latency_seconds`)
	m.batchSize = set.NewHistogram(`surge_shard_batch_records`)
	set.NewGauge(`surge_consumer_lag_records`, func() float64 {
		m.lagMu.Lock()
		defer m.lagMu.Unlock()
		var sum int64
		for _, l := range m.lags {
			sum += l
		}
		return float64(sum)
	})
	set.NewGauge(`surge_online_users`, func() float64 {
		u, _ := table.Counts()
		return float64(u)
	})
	set.NewGauge(`surge_online_sessions`, func() float64 {
		_, n := table.Counts()
		return float64(n)
	})
	return m
}

func (m *shardMetrics) lag(p int32, lag int64) {
	if lag < 0 {
		lag = 0
	}
	m.lagMu.Lock()
	m.lags[p] = lag
	m.lagMu.Unlock()
}
