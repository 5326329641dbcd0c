// Package kafka builds the franz-go clients that edges and shards use, runs
// the embedded Kafka-protocol broker (kfake) that `surge up` starts when no
// brokers are named, and creates Surge's topic.
//
// The embedded broker is spoken to over loopback TCP with the same client
// code as a production cluster, so nothing above this package knows which it
// has.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultTopic is the topic that carries every owner's records.
const DefaultTopic = "surge.events"

// Embedded is an in-process Kafka-protocol broker listening on loopback.
type Embedded struct {
	cluster *kfake.Cluster
}

// StartEmbedded starts a one-broker kfake cluster on 127.0.0.1:port (0 picks
// a free port). With a non-empty dataDir the log, offsets and group state are
// kept there and reloaded on the next start.
func StartEmbedded(dataDir string, port int) (*Embedded, error) {
	opts := []kfake.Opt{kfake.Ports(port), kfake.ClusterID("surge-embedded")}
	if dataDir != "" {
		opts = append(opts, kfake.DataDir(dataDir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start embedded kafka: %w", err)
	}
	return &Embedded{cluster: c}, nil
}

// Addrs returns the broker's host:port addresses.
func (e *Embedded) Addrs() []string { return e.cluster.ListenAddrs() }

// Close stops the broker, flushing its state to the data dir.
func (e *Embedded) Close() { e.cluster.Close() }

// EnsureTopic creates topic with the given number of partitions, or checks
// that an existing one has that many.
func EnsureTopic(ctx context.Context, brokers []string, topic string, partitions int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	resp, err := adm.CreateTopic(ctx, int32(partitions), 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	details, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("describe topic %s: %w", topic, err)
	}
	td, ok := details[topic]
	if !ok || td.Err != nil {
		return fmt.Errorf("describe topic %s: %v", topic, td.Err)
	}
	if got := len(td.Partitions); got != partitions {
		return fmt.Errorf("topic %s has %d partitions, configured %d: the ring would route owners to the wrong partitions", topic, got, partitions)
	}
	return nil
}

// ProducerOptions are the options every Surge producer uses: idempotent
// writes with acks from all in-sync replicas (franz-go's defaults, stated
// here so that nobody turns them off), records placed on the partition that
// the ring chose, and a short linger so that a burst shares a batch.
func ProducerOptions(brokers []string) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0),
		kgo.ProducerBatchMaxBytes(1 << 20),
		kgo.MaxBufferedRecords(100_000),
		kgo.RecordRetries(8),
		kgo.ProduceRequestTimeout(10 * time.Second),
	}
}

// WaitReady blocks until the brokers answer a metadata request for topic or
// ctx ends.
func WaitReady(ctx context.Context, cl *kgo.Client) error {
	for {
		adm := kadm.NewClient(cl)
		if _, err := adm.Metadata(ctx); err == nil {
			return nil
		} else if ctx.Err() != nil {
			return fmt.Errorf("kafka not ready: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Ping asks the brokers for metadata within ctx.
func Ping(ctx context.Context, cl *kgo.Client) error {
	_, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	return err
}

// Logger adapts slog to franz-go's logger at warn level and above.
func Logger(l *slog.Logger) kgo.Logger {
	return kgoLogger{l}
}

type kgoLogger struct{ l *slog.Logger }

func (k kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (k kgoLogger) Log(level kgo.LogLevel, msg string, kv ...any) {
	switch level {
	case kgo.LogLevelError:
		k.l.Error(msg, kv...)
	default:
		k.l.Warn(msg, kv...)
	}
}
