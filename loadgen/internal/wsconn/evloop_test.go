package wsconn

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lxzan/gws"
)

// hub is a gws server that keeps its connections, greets each with
// "welcome", counts the texts and pongs it gets, and echoes "echo:" texts.
type hub struct {
	gws.BuiltinEventHandler
	mu    sync.Mutex
	conns []*gws.Conn
	texts atomic.Int64
	pongs atomic.Int64
}

func (h *hub) OnOpen(c *gws.Conn) {
	_ = c.WriteString("welcome")
	h.mu.Lock()
	h.conns = append(h.conns, c)
	h.mu.Unlock()
}

func (h *hub) OnPong(*gws.Conn, []byte) { h.pongs.Add(1) }

func (h *hub) OnMessage(c *gws.Conn, m *gws.Message) {
	defer m.Close()
	h.texts.Add(1)
	if s := m.Data.String(); strings.HasPrefix(s, "echo:") {
		_ = c.WriteString(s)
	}
}

func (h *hub) all() []*gws.Conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*gws.Conn(nil), h.conns...)
}

func startHub(t *testing.T) (*hub, string) {
	t.Helper()
	h := &hub{}
	up := gws.NewUpgrader(h, &gws.ServerOption{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r)
		if err != nil {
			return
		}
		go c.ReadLoop()
	}))
	t.Cleanup(srv.Close)
	return h, strings.TrimPrefix(srv.URL, "http://")
}

// record collects a Loop's callbacks.
type record struct {
	mu     sync.Mutex
	texts  map[any][]string
	closes map[any]error
}

func newRecord() *record { return &record{texts: map[any][]string{}, closes: map[any]error{}} }

func (r *record) onText(id any, b []byte) {
	r.mu.Lock()
	r.texts[id] = append(r.texts[id], string(b))
	r.mu.Unlock()
}

func (r *record) onClose(id any, err error) {
	r.mu.Lock()
	if _, dup := r.closes[id]; dup {
		panic("onClose twice for " + strconv.Itoa(id.(int)))
	}
	r.closes[id] = err
	r.mu.Unlock()
}

// count returns how many ids satisfy f.
func (r *record) count(f func(texts []string, closeErr error, closed bool) bool, ids int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for id := range ids {
		err, closed := r.closes[id]
		if f(r.texts[id], err, closed) {
			n++
		}
	}
	return n
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func has(texts []string, s string) bool {
	for _, t := range texts {
		if t == s {
			return true
		}
	}
	return false
}

func TestLoopHoldsConnsWithoutGoroutines(t *testing.T) {
	const n = 200
	h, addr := startHub(t)
	rec := newRecord()
	l, err := NewLoop(rec.onText, rec.onClose)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Stop()

	conns := make([]*Conn, n)
	for i := range conns {
		if conns[i], err = dial(t, addr, "good"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "server connections", func() bool { return len(h.all()) == n })
	before := runtime.NumGoroutine()
	handles := make([]*Handle, n)
	for i, c := range conns {
		if handles[i], err = l.Adopt(c, i); err != nil {
			t.Fatal(err)
		}
	}
	if after := runtime.NumGoroutine(); after > before+10 {
		t.Fatalf("goroutines grew from %d to %d adopting %d connections", before, after, n)
	}

	// The greeting, whether it came with the handshake or after.
	waitFor(t, "greetings", func() bool {
		return rec.count(func(tx []string, _ error, _ bool) bool { return has(tx, "welcome") }, n) == n
	})
	for _, c := range h.all() {
		_ = c.WriteString("hi")
		_ = c.WritePing([]byte("p"))
	}
	waitFor(t, "server texts", func() bool {
		return rec.count(func(tx []string, _ error, _ bool) bool { return has(tx, "hi") }, n) == n
	})
	waitFor(t, "pongs", func() bool { return h.pongs.Load() == n })
	for i, hd := range handles {
		if err := hd.WriteText([]byte("echo:" + strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "client texts at the server", func() bool { return h.texts.Load() == n })
	waitFor(t, "echoes", func() bool {
		r := 0
		for i := range n {
			r += rec.count(func(tx []string, _ error, _ bool) bool { return has(tx, "echo:"+strconv.Itoa(i)) }, n)
		}
		return r == n
	})
	for _, c := range h.all() {
		_ = c.WriteClose(1001, []byte("going away"))
	}
	waitFor(t, "close 1001", func() bool {
		return rec.count(func(_ []string, err error, closed bool) bool {
			var ce *CloseError
			return closed && errors.As(err, &ce) && ce.Code == 1001 && ce.Reason == "going away"
		}, n) == n
	})
}

func TestLoopFramesAndClose(t *testing.T) {
	h, addr := startHub(t)
	rec := newRecord()
	l, err := NewLoop(rec.onText, rec.onClose)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Stop()
	adopt := func(id int) *Handle {
		t.Helper()
		c, err := dial(t, addr, "good")
		if err != nil {
			t.Fatal(err)
		}
		hd, err := l.Adopt(c, id)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "server connection", func() bool { return len(h.all()) == id+1 })
		return hd
	}
	texts := func(id int) []string {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return append([]string(nil), rec.texts[id]...)
	}
	closed := func(id int) (error, bool) {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		err, ok := rec.closes[id]
		return err, ok
	}

	// 7-, 16- and 64-bit lengths, and a message in three fragments with a
	// ping between them, written raw.
	hd := adopt(0)
	sc := h.all()[0]
	big := strings.Repeat("L", 70000)
	_ = sc.WriteString(strings.Repeat("m", 1000))
	_ = sc.WriteString(big)
	raw := []byte{0x01, 2, 'a', 'b', 0x89, 1, 'x', 0x00, 1, 'c', 0x80, 2, 'd', 'e'}
	if _, err := sc.NetConn().Write(raw); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "large and fragmented messages", func() bool { return len(texts(0)) == 4 })
	if got := texts(0); got[1] != strings.Repeat("m", 1000) || got[2] != big || got[3] != "abcde" {
		t.Fatalf("got messages of %d, %d and %d bytes (%q)", len(got[1]), len(got[2]), len(got[3]), got[3][:min(len(got[3]), 10)])
	}
	waitFor(t, "pong to the ping between fragments", func() bool { return h.pongs.Load() == 1 })

	// Our close is reported as nil.
	hd.Close(2 * time.Second)
	waitFor(t, "our close", func() bool { _, ok := closed(0); return ok })
	if err, _ := closed(0); err != nil {
		t.Fatalf("our close reported as %v", err)
	}

	// A masked frame from the server is a protocol error.
	adopt(1)
	if _, err := h.all()[1].NetConn().Write([]byte{0x81, 0x81, 0, 0, 0, 0, 'x'}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "close on a masked frame", func() bool { _, ok := closed(1); return ok })
	if err, _ := closed(1); err == nil || !strings.Contains(err.Error(), "masked") {
		t.Fatalf("masked frame: %v", err)
	}

	// A dropped TCP connection is an error too.
	adopt(2)
	_ = h.all()[2].NetConn().Close()
	waitFor(t, "close on EOF", func() bool { _, ok := closed(2); return ok })
	if err, _ := closed(2); err == nil {
		t.Fatal("EOF reported as nil")
	}
}

func TestLoopStop(t *testing.T) {
	_, addr := startHub(t)
	rec := newRecord()
	l, err := NewLoop(rec.onText, rec.onClose)
	if err != nil {
		t.Fatal(err)
	}
	c, err := dial(t, addr, "good")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Adopt(c, 0); err != nil {
		t.Fatal(err)
	}
	l.Stop()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if err, ok := rec.closes[0]; !ok || err != nil {
		t.Fatalf("after Stop: closed %v, err %v", ok, err)
	}
}
