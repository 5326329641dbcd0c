package edge

import (
	vm "github.com/VictoriaMetrics/metrics"

	"github.com/surgechat/surge/internal/metrics"
	"github.com/surgechat/surge/internal/wire"
)

type edgeMetrics struct {
	upgrades        map[string]*vm.Counter // by result
	disconnects     *vm.Counter
	framesIn        *vm.Counter
	framesOut       *vm.Counter
	slowConsumers   *vm.Counter
	produced        *vm.Counter
	bytesIn         *vm.Counter
	protocolErrors  *vm.Counter
	accepted        *vm.Counter
	errors          map[string]*vm.Counter // error frames by code
	produceErrors   *vm.Counter
	deliveries      *vm.Counter
	deliveryDropped *vm.Counter
	idleClosed      *vm.Counter
	topicPushes     *vm.Counter
	syncs           *vm.Counter
	ackLat          *vm.PrometheusHistogram
	syncLat         *vm.PrometheusHistogram
	handshakeLat    *vm.PrometheusHistogram
}

func newEdgeMetrics(set *vm.Set, e *Edge) *edgeMetrics {
	m := &edgeMetrics{
		upgrades: make(map[string]*vm.Counter),
		errors:   make(map[string]*vm.Counter),
	}
	for _, r := range []string{"ok", "unauthorized", "bad_request", "not_found", "refused_cap", "draining", "timeout"} {
		m.upgrades[r] = set.NewCounter(`surge_edge_upgrades_total{result="` + r + `"}`)
	}
	for _, code := range []string{wire.CodeBadFrame, wire.CodeBadRequest, wire.CodeBadRecipient, wire.CodeTooLarge,
		wire.CodeRateLimited, wire.CodeUnavailable, wire.CodeInternal, wire.CodeNotMember, wire.CodeBlocked, wire.CodeNotFriends} {
		m.errors[code] = set.NewCounter(`surge_edge_errors_total{code="` + code + `"}`)
	}
	m.disconnects = set.NewCounter(`surge_edge_disconnects_total`)
	m.framesIn = set.NewCounter(`surge_edge_frames_in_total`)
	m.framesOut = set.NewCounter(`surge_edge_frames_out_total`)
	m.slowConsumers = set.NewCounter(`surge_edge_slow_consumer_closed_total`)
	m.produced = set.NewCounter(`surge_kafka_produced_records_total{role="edge"}`)
	m.bytesIn = set.NewCounter(`surge_edge_bytes_in_total`)
	m.protocolErrors = set.NewCounter(`surge_edge_protocol_errors_total`)
	m.accepted = set.NewCounter(`surge_messages_accepted_total`)
	m.produceErrors = set.NewCounter(`surge_kafka_produce_errors_total{role="edge"}`)
	m.deliveries = set.NewCounter(`surge_edge_deliveries_total{result="queued"}`)
	m.deliveryDropped = set.NewCounter(`surge_edge_deliveries_total{result="dropped"}`)
	m.idleClosed = set.NewCounter(`surge_edge_idle_closed_total`)
	m.topicPushes = set.NewCounter(`surge_edge_topic_pushes_total`)
	m.syncs = set.NewCounter(`surge_edge_syncs_total`)
	m.ackLat = metrics.Histogram(set, `surge_ack_latency_seconds`)
	m.syncLat = metrics.Histogram(set, `surge_sync_latency_seconds`)
	m.handshakeLat = metrics.Histogram(set, `surge_edge_handshake_seconds`)
	set.NewGauge(`surge_edge_connections`, func() float64 { return float64(e.active.Load()) })
	set.NewGauge(`surge_edge_connections_max`, func() float64 { return float64(e.cfg.MaxConns) })
	return m
}

func (m *edgeMetrics) rejected(code string) {
	if c := m.errors[code]; c != nil {
		c.Inc()
	}
}
