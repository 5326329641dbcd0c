package router

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/bits"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
)

// The delivery plane across processes. Edges dial the shard nodes' plane
// listeners (DialPlane), so shards need no discovery of edges; a shard node
// serves its Plane on a listener (ServePlane) and each connection attaches
// one remote edge to it.
//
// Wire format, version PlaneVersion. Every frame is
//
//	uvarint n | type byte | body (n-1 bytes), n <= MaxFrame
//
// and a string in a body is uvarint length | bytes. Bodies by type:
//
//	1 hello      uvarint version | string id   edge → shard first, then shard → edge
//	2 deliver    string user | payload          payload is the rest of the frame
//	3 ready      string user | uvarint session
//	4 announce   varint part                    zig-zag; AllPartitions is -1
//	5 heartbeat  (empty)                        both ways, every Heartbeat
//	6 error      string reason                  the sender closes after it
//	7 publish    string topic | payload         payload is the rest of the frame
//
// The shard answers an edge's hello with its own once the edge is
// registered, so every frame that follows reaches a registered edge.

// PlaneVersion is the plane protocol version this package speaks.
const PlaneVersion = 1

const (
	frameHello byte = 1 + iota
	frameDeliver
	frameReady
	frameAnnounce
	frameHeartbeat
	frameError
	framePublish
)

const maxEdgeID = 255 // bytes

var (
	// ErrFrameTooLarge means a peer sent a frame above MaxFrame.
	ErrFrameTooLarge = errors.New("router: plane frame too large")
	// ErrBadFrame means a peer sent bytes that are not a plane frame.
	ErrBadFrame = errors.New("router: malformed plane frame")
	// ErrPlaneVersion means the peer speaks another plane protocol version.
	ErrPlaneVersion = errors.New("router: unsupported plane protocol version")
)

// PlaneConfig tunes both ends of a plane connection.
type PlaneConfig struct {
	Logger  *slog.Logger // nil means slog.Default()
	Metrics *vm.Set      // nil means a private set (nothing exported)

	// QueueBytes caps the deliveries waiting to be written to one edge.
	// Beyond it deliveries are dropped and counted: the client sees a gap
	// in its sequence numbers and closes it by sync. Ready and Announce
	// are never dropped. 0 means 8 MiB. Shard side only.
	QueueBytes int
	// MaxFrame is the largest frame either side sends or accepts; both
	// sides must agree. 0 means 1 MiB.
	MaxFrame int
	// Heartbeat is how often each side tells the other it is alive; 0
	// means 5s.
	Heartbeat time.Duration
	// Timeout declares the peer dead when nothing arrives from it, or a
	// write makes no progress, for this long; 0 means 3*Heartbeat.
	Timeout time.Duration
	// BackoffMin and BackoffMax bound the wait between an edge's
	// connection attempts (with jitter); 0 means 100ms and 5s.
	BackoffMin, BackoffMax time.Duration
}

func (c *PlaneConfig) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Metrics == nil {
		c.Metrics = vm.NewSet()
	}
	if c.QueueBytes <= 0 {
		c.QueueBytes = 8 << 20
	}
	if c.MaxFrame <= 0 {
		c.MaxFrame = 1 << 20
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = 5 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 3 * c.Heartbeat
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = 100 * time.Millisecond
	}
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = max(5*time.Second, c.BackoffMin)
	}
}

// ServePlane attaches the edges that connect to ln to p until ctx ends,
// then closes ln and every connection and returns nil. An edge's
// connection registers it under the id from its hello, replacing any
// older registration of that id; the older connection stays open but gets
// nothing more. A disconnect unregisters the edge only if its connection
// is still the registered one.
//
// The registered sinks never block the shard: they queue encoded frames
// for a writer goroutine per connection (see PlaneConfig.QueueBytes).
func ServePlane(ctx context.Context, ln net.Listener, p *Plane, cfg PlaneConfig) error {
	cfg.setDefaults()
	s := &planeServer{p: p, cfg: cfg, log: cfg.Logger.With("component", "plane"), m: newServerMetrics(cfg.Metrics)}
	defer ln.Close()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	var delay time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("plane accept: %w", err)
			}
			// Out of files, most likely: wait and retry, as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			if s.warn.ok() {
				s.log.Warn("plane accept failed; retrying", "err", err, "delay", delay)
			}
			time.Sleep(delay)
			continue
		}
		delay = 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveConn(ctx, conn)
		}()
	}
}

type planeServer struct {
	p    *Plane
	cfg  PlaneConfig
	log  *slog.Logger
	m    *serverMetrics
	warn every
}

type serverMetrics struct {
	queued, dropped, bytes *vm.Counter
	conns                  *vm.Gauge
}

func newServerMetrics(set *vm.Set) *serverMetrics {
	return &serverMetrics{
		queued:  set.GetOrCreateCounter(`surge_plane_deliveries_total{result="queued"}`),
		dropped: set.GetOrCreateCounter(`surge_plane_deliveries_total{result="dropped"}`),
		bytes:   set.GetOrCreateCounter(`surge_plane_sent_bytes_total`),
		conns:   set.GetOrCreateGauge(`surge_plane_edge_connections`, nil),
	}
}

func (s *planeServer) serveConn(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	setNoDelay(conn)
	log := s.log.With("remote", conn.RemoteAddr().String())
	fr := newFrameReader(deadlineReader{conn, s.cfg.Timeout}, s.cfg.MaxFrame)
	id, err := readHello(fr)
	if err == nil && id == "" {
		err = fmt.Errorf("%w: hello without an edge id", ErrBadFrame)
	}
	if err != nil {
		if errors.Is(err, ErrPlaneVersion) {
			_ = conn.SetWriteDeadline(time.Now().Add(s.cfg.Timeout))
			_, _ = conn.Write(appendError(nil, err.Error()))
		}
		if s.warn.ok() {
			log.Warn("plane handshake failed", "err", err)
		}
		return
	}
	log = log.With("edge", id)

	rs := &remoteSink{m: s.m, max: s.cfg.QueueBytes, maxFrame: s.cfg.MaxFrame,
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	rs.buf = appendHello(rs.buf, PlaneVersion, "") // first, before any delivery
	rs.wake <- struct{}{}
	if s.p.swap(id, rs) {
		log.Warn("edge id connected again; the older connection gets nothing more")
	}
	s.m.conns.Inc()
	defer s.m.conns.Dec()
	log.Info("edge attached to plane")

	werr := make(chan error, 1)
	go func() {
		err := rs.writeLoop(conn, s.cfg.Heartbeat, s.cfg.Timeout)
		conn.Close() // ends the read loop below
		werr <- err
	}()
	for err == nil {
		var typ byte
		if typ, _, err = fr.next(); err == nil && typ != frameHeartbeat {
			err = fmt.Errorf("%w: type %d from an edge", ErrBadFrame, typ)
		}
	}
	rs.close()
	s.p.unregisterIf(id, rs)
	conn.Close()
	if e := <-werr; e != nil && !errors.Is(e, net.ErrClosed) {
		err = e
	}
	switch {
	case ctx.Err() != nil:
	case errors.Is(err, io.EOF):
		log.Info("edge detached from plane")
	default:
		log.Warn("edge detached from plane", "err", err)
	}
}

// swap registers s under edge and reports whether it replaced another sink.
func (p *Plane) swap(edge string, s Sink) (replaced bool) {
	p.mu.Lock()
	_, replaced = p.sinks[edge]
	p.sinks[edge] = s
	p.mu.Unlock()
	return replaced
}

// unregisterIf detaches edge if rs is still the sink registered for it.
func (p *Plane) unregisterIf(edge string, rs *remoteSink) {
	p.mu.Lock()
	if cur, ok := p.sinks[edge].(*remoteSink); ok && cur == rs {
		delete(p.sinks, edge)
	}
	p.mu.Unlock()
}

// remoteSink is the Sink of an edge behind a plane connection. Its methods
// encode into buf and return; writeLoop writes whatever has accumulated
// in one write.
type remoteSink struct {
	m        *serverMetrics
	max      int // QueueBytes
	maxFrame int
	wake     chan struct{} // 1 slot: buf went from empty to non-empty
	done     chan struct{} // closed by close

	mu     sync.Mutex
	buf    []byte
	closed bool
}

// Deliver implements Sink. It drops the delivery when the queue is full.
func (r *remoteSink) Deliver(user string, payload []byte) {
	r.queue(frameDeliver, user, payload)
}

// Publish implements Sink. Like a delivery, it is dropped when the queue
// is full: topic pushes are live only.
func (r *remoteSink) Publish(topic string, payload []byte) {
	r.queue(framePublish, topic, payload)
}

func (r *remoteSink) queue(typ byte, name string, payload []byte) {
	n := 1 + uvarintLen(uint64(len(name))) + len(name) + len(payload)
	r.mu.Lock()
	if r.closed || n > r.maxFrame || len(r.buf) > 0 && len(r.buf)+n > r.max {
		r.mu.Unlock()
		r.m.dropped.Inc()
		return
	}
	empty := len(r.buf) == 0
	r.buf = appendNamed(r.buf, typ, name, payload)
	r.mu.Unlock()
	r.m.queued.Inc()
	if empty {
		r.signal()
	}
}

// Ready implements Sink. It is queued even past QueueBytes.
func (r *remoteSink) Ready(user string, session uint64) {
	n := 1 + uvarintLen(uint64(len(user))) + len(user) + uvarintLen(session)
	r.mu.Lock()
	if r.closed || n > r.maxFrame {
		r.mu.Unlock()
		return
	}
	empty := len(r.buf) == 0
	r.buf = appendReady(r.buf, user, session)
	r.mu.Unlock()
	if empty {
		r.signal()
	}
}

// Announce implements Sink. It is queued even past QueueBytes.
func (r *remoteSink) Announce(part int32) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	empty := len(r.buf) == 0
	r.buf = appendAnnounce(r.buf, part)
	r.mu.Unlock()
	if empty {
		r.signal()
	}
}

func (r *remoteSink) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *remoteSink) close() {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		r.buf = nil
		close(r.done)
	}
	r.mu.Unlock()
}

// writeLoop writes the queue to conn until close or a write error. A write
// that makes no progress for timeout fails: a stuck edge is disconnected.
func (r *remoteSink) writeLoop(conn net.Conn, heartbeat, timeout time.Duration) error {
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	var out []byte
	peak := 0 // largest write since the last tick
	for {
		select {
		case <-r.done:
			return nil
		case <-tick.C:
			if cap(out) > 1<<20 && peak < cap(out)/8 {
				out = nil // the burst is over: give the memory back
			}
			peak = 0
			r.mu.Lock()
			if !r.closed {
				r.buf = appendHeartbeat(r.buf)
			}
			r.mu.Unlock()
		case <-r.wake:
		}
		r.mu.Lock()
		out, r.buf = r.buf, out[:0]
		r.mu.Unlock()
		if len(out) == 0 {
			continue
		}
		_ = conn.SetWriteDeadline(time.Now().Add(timeout))
		n, err := conn.Write(out)
		r.m.bytes.Add(n)
		if err != nil {
			return fmt.Errorf("write to edge: %w", err)
		}
		peak = max(peak, n)
	}
}

// DialPlane connects the edge sink, named edgeID, to the plane served at
// addr, and keeps it connected, redialling with backoff and jitter, until
// ctx ends; it then returns nil. It fails at once only on a bad edgeID.
//
// After every handshake it calls sink.Announce(AllPartitions): the shard
// node may have missed announcements and session confirmations while the
// edge was not attached. Run one DialPlane per shard node.
func DialPlane(ctx context.Context, addr, edgeID string, sink Sink, cfg PlaneConfig) error {
	if edgeID == "" || len(edgeID) > maxEdgeID {
		return fmt.Errorf("router: plane edge id %q: want 1 to %d bytes", edgeID, maxEdgeID)
	}
	cfg.setDefaults()
	c := &planeClient{addr: addr, id: edgeID, sink: sink, cfg: cfg,
		log: cfg.Logger.With("component", "plane", "edge", edgeID, "shard_addr", addr),
		m:   newClientMetrics(cfg.Metrics)}
	backoff := cfg.BackoffMin
	for {
		start := time.Now()
		attached, err := c.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if attached {
			c.log.Warn("plane connection lost; reconnecting", "err", err, "after", time.Since(start).Round(time.Millisecond))
			if time.Since(start) >= cfg.Timeout {
				backoff = cfg.BackoffMin // it was healthy: retry quickly
			}
		} else if c.warn.ok() {
			c.log.Warn("plane connect failed; retrying", "err", err, "backoff", backoff)
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		backoff = min(2*backoff, cfg.BackoffMax)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

type planeClient struct {
	addr, id string
	sink     Sink
	cfg      PlaneConfig
	log      *slog.Logger
	m        *clientMetrics
	warn     every
}

type clientMetrics struct {
	received, bytes, connects *vm.Counter
	connected                 *vm.Gauge
}

func newClientMetrics(set *vm.Set) *clientMetrics {
	return &clientMetrics{
		received:  set.GetOrCreateCounter(`surge_plane_received_deliveries_total`),
		bytes:     set.GetOrCreateCounter(`surge_plane_received_bytes_total`),
		connects:  set.GetOrCreateCounter(`surge_plane_connects_total`),
		connected: set.GetOrCreateGauge(`surge_plane_shard_connections`, nil),
	}
}

// session runs one connection. attached reports whether the handshake
// completed.
func (c *planeClient) session(ctx context.Context) (attached bool, err error) {
	d := net.Dialer{Timeout: c.cfg.Timeout}
	conn, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	setNoDelay(conn)

	_ = conn.SetWriteDeadline(time.Now().Add(c.cfg.Timeout))
	if _, err := conn.Write(appendHello(nil, PlaneVersion, c.id)); err != nil {
		return false, fmt.Errorf("send hello: %w", err)
	}
	fr := newFrameReader(deadlineReader{conn, c.cfg.Timeout}, c.cfg.MaxFrame)
	if _, err := readHello(fr); err != nil {
		return false, err
	}
	c.m.connects.Inc()
	c.m.connected.Inc()
	defer c.m.connected.Dec()
	c.log.Info("attached to shard plane")

	hbDone := make(chan struct{})
	defer close(hbDone)
	go c.heartbeats(conn, hbDone)

	c.sink.Announce(AllPartitions)
	in := make(interner)
	for {
		typ, body, err := fr.next()
		if err == nil {
			err = dispatch(typ, body, c.sink, in, c.m)
		}
		if err != nil {
			return true, err
		}
	}
}

func (c *planeClient) heartbeats(conn net.Conn, done <-chan struct{}) {
	tick := time.NewTicker(c.cfg.Heartbeat)
	defer tick.Stop()
	hb := appendHeartbeat(nil)
	for {
		select {
		case <-done:
			return
		case <-tick.C:
			_ = conn.SetWriteDeadline(time.Now().Add(c.cfg.Timeout))
			if _, err := conn.Write(hb); err != nil {
				conn.Close()
				return
			}
		}
	}
}

// dispatch hands one frame from a shard to sink.
func dispatch(typ byte, body []byte, sink Sink, in interner, m *clientMetrics) error {
	switch typ {
	case frameDeliver:
		user, payload, ok := readString(body)
		if !ok {
			return fmt.Errorf("%w: deliver", ErrBadFrame)
		}
		m.received.Inc()
		m.bytes.Add(len(payload))
		sink.Deliver(in.get(user), payload)
	case framePublish:
		topic, payload, ok := readString(body)
		if !ok {
			return fmt.Errorf("%w: publish", ErrBadFrame)
		}
		m.bytes.Add(len(payload))
		sink.Publish(in.get(topic), payload)
	case frameReady:
		user, rest, ok := readString(body)
		session, k := binary.Uvarint(rest)
		if !ok || k <= 0 || k != len(rest) {
			return fmt.Errorf("%w: ready", ErrBadFrame)
		}
		sink.Ready(in.get(user), session)
	case frameAnnounce:
		part, k := binary.Varint(body)
		if k <= 0 || k != len(body) || part != int64(int32(part)) {
			return fmt.Errorf("%w: announce", ErrBadFrame)
		}
		sink.Announce(int32(part))
	case frameHeartbeat:
	case frameError:
		reason, _, _ := readString(body)
		return fmt.Errorf("shard closed the plane: %s", reason)
	default:
		return fmt.Errorf("%w: type %d", ErrBadFrame, typ)
	}
	return nil
}

// readHello reads the first frame of a connection and returns the peer's id.
func readHello(fr *frameReader) (string, error) {
	typ, body, err := fr.next()
	if err != nil {
		return "", fmt.Errorf("read hello: %w", err)
	}
	switch typ {
	case frameHello:
	case frameError:
		reason, _, _ := readString(body)
		return "", fmt.Errorf("peer refused the plane: %s", reason)
	default:
		return "", fmt.Errorf("%w: type %d before hello", ErrBadFrame, typ)
	}
	v, k := binary.Uvarint(body)
	if k <= 0 {
		return "", fmt.Errorf("%w: hello", ErrBadFrame)
	}
	if v != PlaneVersion {
		return "", fmt.Errorf("%w %d (this side speaks %d)", ErrPlaneVersion, v, PlaneVersion)
	}
	id, rest, ok := readString(body[k:])
	if !ok || len(rest) != 0 || len(id) > maxEdgeID {
		return "", fmt.Errorf("%w: hello", ErrBadFrame)
	}
	return string(id), nil
}

// frameReader reads frames from a connection, reusing its buffers: a body
// is valid until the next call.
type frameReader struct {
	r       *bufio.Reader
	max     int
	skip    int // bytes of the last frame still in r
	scratch []byte
}

func newFrameReader(r io.Reader, maxFrame int) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, 64<<10), max: maxFrame}
}

func (f *frameReader) next() (typ byte, body []byte, err error) {
	if f.skip > 0 {
		_, _ = f.r.Discard(f.skip)
		f.skip = 0
	}
	var n uint64
	for i := 0; ; i++ {
		c, err := f.r.ReadByte()
		if err != nil {
			if i > 0 && err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, nil, err
		}
		if i == binary.MaxVarintLen32 {
			return 0, nil, fmt.Errorf("%w: length too long", ErrBadFrame)
		}
		n |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			break
		}
	}
	switch {
	case n == 0:
		return 0, nil, fmt.Errorf("%w: empty frame", ErrBadFrame)
	case n > uint64(f.max):
		return 0, nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, f.max)
	}
	var frame []byte
	if int(n) <= f.r.Size() {
		frame, err = f.r.Peek(int(n))
		f.skip = len(frame)
	} else {
		if cap(f.scratch) < int(n) {
			f.scratch = make([]byte, n)
		}
		frame = f.scratch[:n]
		_, err = io.ReadFull(f.r, frame)
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return frame[0], frame[1:], nil
}

// deadlineReader renews the read deadline before each read from the
// socket, which bufio makes rare.
type deadlineReader struct {
	conn    net.Conn
	timeout time.Duration
}

func (d deadlineReader) Read(p []byte) (int, error) {
	_ = d.conn.SetReadDeadline(time.Now().Add(d.timeout))
	return d.conn.Read(p)
}

// interner keeps the user names a connection has seen recently, so that
// decoding a frame allocates no string.
type interner map[string]string

func (in interner) get(b []byte) string {
	if s, ok := in[string(b)]; ok {
		return s
	}
	if len(in) >= 8192 {
		clear(in)
	}
	s := string(b)
	in[s] = s
	return s
}

func readString(b []byte) (s, rest []byte, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, false
	}
	return b[k : k+int(n)], b[k+int(n):], true
}

func appendHeader(b []byte, typ byte, body int) []byte {
	b = binary.AppendUvarint(b, uint64(1+body))
	return append(b, typ)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendHello(b []byte, version uint64, id string) []byte {
	b = appendHeader(b, frameHello, uvarintLen(version)+uvarintLen(uint64(len(id)))+len(id))
	b = binary.AppendUvarint(b, version)
	return appendString(b, id)
}

func appendDeliver(b []byte, user string, payload []byte) []byte {
	return appendNamed(b, frameDeliver, user, payload)
}

// appendNamed appends a frame whose body is a name and a payload: deliver
// (a user) and publish (a topic).
func appendNamed(b []byte, typ byte, name string, payload []byte) []byte {
	b = appendHeader(b, typ, uvarintLen(uint64(len(name)))+len(name)+len(payload))
	b = appendString(b, name)
	return append(b, payload...)
}

func appendReady(b []byte, user string, session uint64) []byte {
	b = appendHeader(b, frameReady, uvarintLen(uint64(len(user)))+len(user)+uvarintLen(session))
	b = appendString(b, user)
	return binary.AppendUvarint(b, session)
}

func appendAnnounce(b []byte, part int32) []byte {
	zz := uint64(int64(part)<<1) ^ uint64(int64(part)>>63)
	b = appendHeader(b, frameAnnounce, uvarintLen(zz))
	return binary.AppendVarint(b, int64(part))
}

func appendHeartbeat(b []byte) []byte { return appendHeader(b, frameHeartbeat, 0) }

func appendError(b []byte, reason string) []byte {
	b = appendHeader(b, frameError, uvarintLen(uint64(len(reason)))+len(reason))
	return appendString(b, reason)
}

func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

func setNoDelay(conn net.Conn) {
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
}

// every rate-limits a repeated log line to one per 10 seconds.
type every struct{ last atomic.Int64 }

func (e *every) ok() bool {
	now, last := time.Now().UnixNano(), e.last.Load()
	return now-last >= int64(10*time.Second) && e.last.CompareAndSwap(last, now)
}
