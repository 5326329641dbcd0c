package router

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
)

// event is one call a recording sink received.
type event struct {
	kind    string // deliver, ready, announce
	user    string
	payload string
	session uint64
	part    int32
}

// recSink records every call. When gate is set, Deliver waits for it to
// close first: a slow edge.
type recSink struct {
	gate chan struct{}

	mu     sync.Mutex
	events []event
}

func (s *recSink) Deliver(user string, payload []byte) {
	if s.gate != nil {
		<-s.gate
	}
	s.add(event{kind: "deliver", user: user, payload: string(payload)})
}

func (s *recSink) Ready(user string, session uint64) {
	s.add(event{kind: "ready", user: user, session: session})
}

func (s *recSink) Announce(part int32) { s.add(event{kind: "announce", part: part}) }

func (s *recSink) Publish(topic string, payload []byte) {
	s.add(event{kind: "publish", user: topic, payload: string(payload)})
}

func (s *recSink) add(e event) {
	s.mu.Lock()
	s.events = append(s.events, e)
	s.mu.Unlock()
}

func (s *recSink) snapshot() []event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

func (s *recSink) count(kind string) int {
	n := 0
	for _, e := range s.snapshot() {
		if e.kind == kind {
			n++
		}
	}
	return n
}

// waitFor polls cond until it holds, failing the test after 10 seconds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// recListener remembers the connections it accepted.
type recListener struct {
	net.Listener
	conns chan net.Conn
}

func (l *recListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		select {
		case l.conns <- c:
		default:
		}
	}
	return c, err
}

type testServer struct {
	p     *Plane
	addr  string
	set   *vm.Set
	conns chan net.Conn
}

func (s *testServer) counter(name string) uint64 { return s.set.GetOrCreateCounter(name).Get() }

func startServer(t testing.TB, cfg PlaneConfig) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{p: NewPlane(), addr: ln.Addr().String(), set: vm.NewSet(), conns: make(chan net.Conn, 16)}
	cfg.Logger, cfg.Metrics = quietLogger(), s.set
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServePlane(ctx, &recListener{ln, s.conns}, s.p, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServePlane: %v", err)
		}
	})
	return s
}

// startEdge runs DialPlane until the returned stop is called (or the
// test ends).
func startEdge(t testing.TB, addr, id string, sink Sink) (stop func()) {
	return startEdgeConfig(t, addr, id, sink, PlaneConfig{})
}

func startEdgeConfig(t testing.TB, addr, id string, sink Sink, cfg PlaneConfig) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cfg.Logger, cfg.BackoffMin, cfg.BackoffMax = quietLogger(), 10*time.Millisecond, 50*time.Millisecond
	go func() { done <- DialPlane(ctx, addr, id, sink, cfg) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("DialPlane: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func TestPlaneDeliverUnknownEdge(t *testing.T) {
	p := NewPlane()
	if p.Deliver("nobody", "alice", []byte("x")) {
		t.Error("Deliver to an unknown edge reported true")
	}
	if p.Ready("nobody", "alice", 1) {
		t.Error("Ready to an unknown edge reported true")
	}
	if got := p.Edges(); len(got) != 0 {
		t.Errorf("Edges = %v, want none", got)
	}
}

func TestPlaneTCPDeliverReadyAnnounce(t *testing.T) {
	srv := startServer(t, PlaneConfig{})
	sink := &recSink{}
	startEdge(t, srv.addr, "e1", sink)
	waitFor(t, "the edge's first announce", func() bool { return sink.count("announce") == 1 })
	if got := srv.p.Edges(); !slices.Equal(got, []string{"e1"}) {
		t.Fatalf("Edges = %v, want [e1]", got)
	}

	payload := []byte(`{"t":"msg","seq":1,"body":"héllo\u0000"}`)
	if !srv.p.Deliver("e1", "alice", payload) {
		t.Fatal("Deliver reported the edge missing")
	}
	copy(payload, "XXXX") // the shard reuses its buffer once Deliver returns
	srv.p.Ready("e1", "bob", 1<<63+5)
	srv.p.Announce(7)
	srv.p.Deliver("e1", "", nil)
	srv.p.Publish("news", []byte(`{"type":"topic"}`))

	want := []event{
		{kind: "announce", part: AllPartitions},
		{kind: "deliver", user: "alice", payload: `{"t":"msg","seq":1,"body":"héllo\u0000"}`},
		{kind: "ready", user: "bob", session: 1<<63 + 5},
		{kind: "announce", part: 7},
		{kind: "deliver"},
		{kind: "publish", user: "news", payload: `{"type":"topic"}`},
	}
	waitFor(t, "every event", func() bool { return len(sink.snapshot()) >= len(want) })
	if got := sink.snapshot(); !slices.Equal(got, want) {
		t.Fatalf("events:\n got %+v\nwant %+v", got, want)
	}
}

func TestPlaneTCPManyInOrder(t *testing.T) {
	srv := startServer(t, PlaneConfig{})
	sink := &recSink{}
	startEdge(t, srv.addr, "e1", sink)
	waitFor(t, "attach", func() bool { return sink.count("announce") == 1 })

	const n = 20000
	for i := range n {
		user := fmt.Sprintf("u%d", i%7)
		if !srv.p.Deliver("e1", user, fmt.Appendf(nil, "%s:%d:%s", user, i, strings.Repeat("x", i%300))) {
			t.Fatal("edge went missing")
		}
	}
	waitFor(t, "every delivery", func() bool { return sink.count("deliver") == n })
	i := 0
	for _, e := range sink.snapshot() {
		if e.kind != "deliver" {
			continue
		}
		want := fmt.Sprintf("u%d:%d:%s", i%7, i, strings.Repeat("x", i%300))
		if e.user != fmt.Sprintf("u%d", i%7) || e.payload != want {
			t.Fatalf("delivery %d = %s %q, want %q", i, e.user, e.payload, want)
		}
		i++
	}
	if d := srv.counter(`surge_plane_deliveries_total{result="dropped"}`); d != 0 {
		t.Errorf("%d deliveries dropped", d)
	}
}

func TestPlaneTCPReconnect(t *testing.T) {
	srv := startServer(t, PlaneConfig{})
	sink := &recSink{}
	startEdge(t, srv.addr, "e1", sink)
	waitFor(t, "attach", func() bool { return sink.count("announce") == 1 })

	(<-srv.conns).Close() // the shard side kills the connection
	waitFor(t, "the announce after reconnecting", func() bool { return sink.count("announce") == 2 })
	if got := srv.p.Edges(); !slices.Equal(got, []string{"e1"}) {
		t.Fatalf("Edges = %v, want [e1]", got)
	}
	for _, e := range sink.snapshot() {
		if e.kind == "announce" && e.part != AllPartitions {
			t.Fatalf("announce of partition %d, want AllPartitions", e.part)
		}
	}
	if !srv.p.Deliver("e1", "alice", []byte("after")) {
		t.Fatal("edge not registered again")
	}
	waitFor(t, "the delivery after reconnecting", func() bool { return sink.count("deliver") == 1 })
}

func TestPlaneTCPSameIDReplaces(t *testing.T) {
	srv := startServer(t, PlaneConfig{})
	first, second := &recSink{}, &recSink{}
	stopFirst := startEdge(t, srv.addr, "e1", first)
	waitFor(t, "first attach", func() bool { return first.count("announce") == 1 })
	startEdge(t, srv.addr, "e1", second)
	waitFor(t, "second attach", func() bool { return second.count("announce") == 1 })

	srv.p.Deliver("e1", "alice", []byte("one"))
	waitFor(t, "delivery to the second", func() bool { return second.count("deliver") == 1 })

	// The replaced connection going away must not detach its successor.
	stopFirst()
	conns := srv.set.GetOrCreateGauge(`surge_plane_edge_connections`, nil)
	waitFor(t, "the first connection to close", func() bool { return conns.Get() == 1 })
	if !srv.p.Deliver("e1", "alice", []byte("two")) {
		t.Fatal("closing the replaced connection detached the edge")
	}
	waitFor(t, "second delivery", func() bool { return second.count("deliver") == 2 })
	if n := first.count("deliver"); n != 0 {
		t.Errorf("replaced edge got %d deliveries", n)
	}
}

func TestPlaneTCPSlowEdgeDrops(t *testing.T) {
	srv := startServer(t, PlaneConfig{QueueBytes: 64 << 10, Timeout: time.Minute})
	sink := &recSink{gate: make(chan struct{})}
	startEdge(t, srv.addr, "e1", sink)
	waitFor(t, "attach", func() bool { return sink.count("announce") == 1 })

	// Deliver until the queue overflows: the sink is stuck, so the socket
	// buffers fill and then the queue does. Deliver must keep returning.
	dropped := srv.set.GetOrCreateCounter(`surge_plane_deliveries_total{result="dropped"}`)
	payload := bytes.Repeat([]byte("p"), 200)
	sent := make(chan int, 1)
	go func() {
		i := 0
		for ; dropped.Get() < 1000 && i < 2_000_000; i++ {
			binary.BigEndian.PutUint32(payload, uint32(i))
			srv.p.Deliver("e1", "alice", payload)
		}
		srv.p.Ready("e1", "alice", 99)
		sent <- i
	}()
	var n int
	select {
	case n = <-sent:
	case <-time.After(30 * time.Second):
		t.Fatal("Deliver blocked behind a slow edge")
	}
	if dropped.Get() == 0 {
		t.Fatalf("no delivery dropped after %d", n)
	}

	close(sink.gate)
	waitFor(t, "the Ready queued behind the drops", func() bool { return sink.count("ready") == 1 })
	last := -1
	for _, e := range sink.snapshot() {
		if e.kind == "deliver" {
			i := int(binary.BigEndian.Uint32([]byte(e.payload)))
			if i <= last {
				t.Fatalf("delivery %d after %d", i, last)
			}
			last = i
		}
	}
	queued := srv.counter(`surge_plane_deliveries_total{result="queued"}`)
	if got := uint64(sink.count("deliver")); got != queued || queued+dropped.Get() != uint64(n) {
		t.Errorf("sent %d: queued %d, dropped %d, received %d", n, queued, dropped.Get(), got)
	}
}

// TestPlaneTCPStuckEdgeDetached checks that a shard whose writes to an
// edge make no progress for Timeout detaches the edge, and that the edge
// comes back once it is unstuck.
func TestPlaneTCPStuckEdgeDetached(t *testing.T) {
	cfg := PlaneConfig{QueueBytes: 64 << 10, Heartbeat: 10 * time.Millisecond, Timeout: 200 * time.Millisecond}
	srv := startServer(t, cfg)
	sink := &recSink{gate: make(chan struct{})}
	startEdgeConfig(t, srv.addr, "e1", sink, PlaneConfig{Heartbeat: 10 * time.Millisecond, Timeout: time.Minute})
	waitFor(t, "attach", func() bool { return sink.count("announce") == 1 })

	payload := bytes.Repeat([]byte("p"), 200)
	waitFor(t, "the stuck edge to be detached", func() bool {
		for range 1000 {
			srv.p.Deliver("e1", "alice", payload)
		}
		return len(srv.p.Edges()) == 0
	})
	close(sink.gate)
	waitFor(t, "the edge to come back", func() bool { return sink.count("announce") == 2 })
}

// TestPlaneTCPBadInput sends a shard node bytes no edge would: it closes
// the connection and goes on serving.
func TestPlaneTCPBadInput(t *testing.T) {
	srv := startServer(t, PlaneConfig{MaxFrame: 4096})
	f := func(name string, in []byte, wantReason string) {
		t.Helper()
		conn, err := net.Dial("tcp", srv.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.Write(in); err != nil {
			t.Fatalf("%s: write: %v", name, err)
		}
		_ = conn.(*net.TCPConn).CloseWrite() // a truncated frame ends too
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(conn)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("%s: connection left open", name)
		}
		if !strings.Contains(string(got), wantReason) {
			t.Errorf("%s: got %q, want a reason containing %q", name, got, wantReason)
		}
	}
	hello := appendHello(nil, PlaneVersion, "e1")
	f("oversized", binary.AppendUvarint(nil, 4097), "")
	f("huge length", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, "")
	f("empty frame", []byte{0}, "")
	f("garbage", []byte("GET / HTTP/1.1\r\nUser-Agent: "+strings.Repeat("x", 200)+"\r\n\r\n"), "")
	f("deliver before hello", appendDeliver(nil, "alice", []byte("x")), "")
	f("no edge id", appendHello(nil, PlaneVersion, ""), "")
	f("truncated hello", hello[:len(hello)-1], "")
	f("future version", appendHello(nil, PlaneVersion+1, "e1"), "unsupported plane protocol version")
	f("unknown type after hello", append(slices.Clone(hello), 1, 99), "")
	f("oversized after hello", binary.AppendUvarint(slices.Clone(hello), 1<<20), "")
	waitFor(t, "bad edges to detach", func() bool { return len(srv.p.Edges()) == 0 })

	sink := &recSink{}
	startEdge(t, srv.addr, "e1", sink)
	waitFor(t, "a good edge to attach", func() bool { return sink.count("announce") == 1 })
}

// TestPlaneTCPEdgeRejectsBadFrames runs an edge against a fake shard node
// that sends an oversized frame: the edge drops the connection and dials
// again.
func TestPlaneTCPEdgeRejectsBadFrames(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	sink := &recSink{}
	startEdge(t, ln.Addr().String(), "e1", sink)
	for i, bad := range [][]byte{
		binary.AppendUvarint(nil, 2<<20),
		{3, frameReady, 9, 'x'},     // user longer than the frame
		{2, frameAnnounce, 0x80},    // truncated varint
		{1, 0xee},                   // unknown type
		appendError(nil, "go away"), // the shard refuses
	} {
		conn, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		fr := newFrameReader(conn, 1<<20)
		if id, err := readHello(fr); err != nil || id != "e1" {
			t.Fatalf("hello: %q, %v", id, err)
		}
		out := appendHello(nil, PlaneVersion, "")
		out = appendDeliver(out, "alice", []byte{byte(i)})
		if _, err := conn.Write(append(out, bad...)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(conn); err != nil {
			t.Fatalf("case %d: the edge did not close: %v", i, err)
		}
		conn.Close()
	}
	if got := sink.count("deliver"); got != 5 {
		t.Errorf("%d deliveries before the bad frames, want 5", got)
	}
}

// TestPlaneTCPHeartbeats checks that heartbeats keep an idle connection
// up and that each side drops a peer gone silent.
func TestPlaneTCPHeartbeats(t *testing.T) {
	fast := PlaneConfig{Heartbeat: 10 * time.Millisecond, Timeout: 100 * time.Millisecond}
	srv := startServer(t, fast)

	// Idle but alive: 20 heartbeats (2 bytes each) later, still the first
	// connection.
	sink := &recSink{}
	startEdgeConfig(t, srv.addr, "e1", sink, fast)
	waitFor(t, "attach", func() bool { return sink.count("announce") == 1 })
	waitFor(t, "heartbeats", func() bool { return srv.counter(`surge_plane_sent_bytes_total`) > 3+2*20 })
	if n := sink.count("announce"); n != 1 {
		t.Fatalf("%d connections, want 1: heartbeats did not keep it up", n)
	}

	// A silent edge: the shard closes its connection.
	conn, err := net.Dial("tcp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(appendHello(nil, PlaneVersion, "silent")); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(conn); err != nil {
		t.Fatalf("the shard kept a silent edge: %v", err)
	}

	// A silent shard: the edge dials again.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	startEdgeConfig(t, ln.Addr().String(), "e2", &recSink{}, fast)
	for range 2 {
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := readHello(newFrameReader(c, 1<<20)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(appendHello(nil, PlaneVersion, "")); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRemoteSinkDeliverAllocs checks the shard side's hot path.
func TestRemoteSinkDeliverAllocs(t *testing.T) {
	rs := &remoteSink{m: newServerMetrics(vm.NewSet()), max: 1 << 20, maxFrame: 1 << 20,
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	payload := bytes.Repeat([]byte("p"), 200)
	allocs := testing.AllocsPerRun(1000, func() {
		rs.Deliver("alice", payload)
		rs.Ready("alice", 1)
		rs.mu.Lock()
		rs.buf = rs.buf[:0] // what the writer does
		rs.mu.Unlock()
	})
	if allocs != 0 {
		t.Errorf("%v allocations per Deliver", allocs)
	}
}

// FuzzPlaneFrames feeds an edge's decoder arbitrary bytes from a shard.
func FuzzPlaneFrames(f *testing.F) {
	f.Add(appendDeliver(appendHello(nil, PlaneVersion, ""), "alice", []byte("hi")))
	f.Add(appendAnnounce(appendReady(nil, "bob", 7), AllPartitions))
	f.Add(appendError(appendHeartbeat(nil), "bye"))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, in []byte) {
		fr := newFrameReader(bytes.NewReader(in), 4096)
		names := make(interner)
		m := newClientMetrics(vm.NewSet())
		sink := &recSink{}
		for {
			typ, body, err := fr.next()
			if err == nil {
				err = dispatch(typ, body, sink, names, m)
			}
			if err != nil {
				return
			}
		}
	})
}
