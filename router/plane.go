package router

import (
	"slices"
	"sync"
)

// AllPartitions, passed to Sink.Announce, means every partition.
const AllPartitions int32 = -1

// Sink is what an edge offers the delivery plane. Its methods must not
// block: they queue work for the edge's event loops.
type Sink interface {
	// Deliver writes payload, one JSON server frame, to every session of
	// user on this edge.
	Deliver(user string, payload []byte)
	// Ready tells the edge that the shard owning user's partition has
	// registered session: everything stored for the user from now on is
	// pushed to it.
	Ready(user string, session uint64)
	// Publish writes payload, one JSON server frame, to every session on
	// this edge subscribed to topic. Topic pushes are live only.
	Publish(topic string, payload []byte)
	// Announce asks the edge to announce again every session it holds on
	// partition part: a shard has just taken the partition over. Part
	// AllPartitions means every partition: a remote plane connection to a
	// shard node has just been (re)established, and that node may have
	// missed announcements and confirmations while it was away.
	Announce(part int32)
}

// Plane carries deliveries from shards to edges. Edges register a Sink
// under their id; shards address edges by that id, as named in the
// presence records. Safe for concurrent use.
type Plane struct {
	mu    sync.RWMutex
	sinks map[string]Sink
}

// NewPlane returns a plane with no edges.
func NewPlane() *Plane {
	return &Plane{sinks: make(map[string]Sink)}
}

// Register attaches an edge.
func (p *Plane) Register(edge string, s Sink) {
	p.mu.Lock()
	p.sinks[edge] = s
	p.mu.Unlock()
}

// Unregister detaches an edge.
func (p *Plane) Unregister(edge string) {
	p.mu.Lock()
	delete(p.sinks, edge)
	p.mu.Unlock()
}

// Edges returns the ids of the attached edges, sorted.
func (p *Plane) Edges() []string {
	p.mu.RLock()
	ids := make([]string, 0, len(p.sinks))
	for id := range p.sinks {
		ids = append(ids, id)
	}
	p.mu.RUnlock()
	slices.Sort(ids)
	return ids
}

func (p *Plane) sink(edge string) Sink {
	p.mu.RLock()
	s := p.sinks[edge]
	p.mu.RUnlock()
	return s
}

// Deliver hands payload for user to edge. It reports false when the edge is
// not attached; the delivery is then dropped, and the client syncs it on
// reconnect.
func (p *Plane) Deliver(edge, user string, payload []byte) bool {
	s := p.sink(edge)
	if s == nil {
		return false
	}
	s.Deliver(user, payload)
	return true
}

// Ready forwards a session confirmation to edge.
func (p *Plane) Ready(edge, user string, session uint64) bool {
	s := p.sink(edge)
	if s == nil {
		return false
	}
	s.Ready(user, session)
	return true
}

// Publish hands a topic push to every attached edge.
func (p *Plane) Publish(topic string, payload []byte) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for _, s := range p.sinks {
		s.Publish(topic, payload)
	}
}

// Announce asks every attached edge to announce its sessions on part. The
// sinks are called outside the plane's lock: an edge walking its sessions
// must not hold up deliveries or edges attaching.
func (p *Plane) Announce(part int32) {
	p.mu.RLock()
	sinks := make([]Sink, 0, len(p.sinks))
	for _, s := range p.sinks {
		sinks = append(sinks, s)
	}
	p.mu.RUnlock()
	for _, s := range sinks {
		s.Announce(part)
	}
}
