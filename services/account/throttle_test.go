package account

import (
	"net"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

func TestLimiter(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	l := newLimiter(2, time.Minute, 100)
	f := func(at time.Duration, wantOK bool, wantRetry time.Duration) {
		t.Helper()
		ok, retry := l.take("k", t0.Add(at))
		if ok != wantOK || retry != wantRetry {
			t.Fatalf("take at %v: %v, %v; want %v, %v", at, ok, retry, wantOK, wantRetry)
		}
	}
	f(0, true, 0)
	f(10*time.Second, true, 0)
	f(20*time.Second, false, 40*time.Second) // refused, not counted
	l.undo("k")                              // one attempt taken back
	f(30*time.Second, true, 0)
	f(59*time.Second, false, time.Second)
	f(time.Minute, true, 0) // a new window
	l.reset("k")
	f(time.Minute, true, 0)
	f(time.Minute, true, 0)
	f(time.Minute, false, time.Minute)

	off := newLimiter(-1, time.Minute, 1)
	for range 100 {
		if ok, _ := off.take("k", t0); !ok {
			t.Fatal("a negative limit refused")
		}
	}
	if off.size() != 0 {
		t.Fatal("a negative limit keeps keys")
	}
}

// TestLimiterBounded: the map never outgrows max, and keys that block
// survive a flood of new keys.
func TestLimiterBounded(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	l := newLimiter(2, time.Minute, 64)
	l.take("victim", t0)
	l.take("victim", t0)
	for i := range 10_000 {
		l.take("k"+strconv.Itoa(i), t0.Add(time.Duration(i)*time.Millisecond))
		if n := l.size(); n > 64 {
			t.Fatalf("%d keys, max 64", n)
		}
	}
	if ok, _ := l.take("victim", t0.Add(10*time.Second)); ok {
		t.Fatal("the flood lifted the victim's block")
	}
	// Once everything is blocking, arbitrary keys go, but the bound holds.
	for i := range 1000 {
		k := "b" + strconv.Itoa(i)
		l.take(k, t0.Add(20*time.Second))
		l.take(k, t0.Add(20*time.Second))
		if n := l.size(); n > 64 {
			t.Fatalf("%d keys, max 64", n)
		}
	}
	// Expired windows go first: filling the map again sweeps every old key.
	for i := range 64 {
		l.take("n"+strconv.Itoa(i), t0.Add(2*time.Minute))
	}
	for k := range l.m {
		if k[0] != 'n' {
			t.Fatalf("expired key %q survived", k)
		}
	}
}

func TestClientAddr(t *testing.T) {
	tcp := func(s string) *peer.Peer {
		a, err := net.ResolveTCPAddr("tcp", s)
		if err != nil {
			t.Fatal(err)
		}
		return &peer.Peer{Addr: a}
	}
	xff := func(v ...string) metadata.MD { return metadata.MD{"x-forwarded-for": v} }
	for _, tc := range []struct {
		md      metadata.MD
		p       *peer.Peer
		trusted bool
		want    string
	}{
		{nil, tcp("192.0.2.1:5000"), false, "192.0.2.1"},
		{nil, tcp("192.0.2.1:5000"), true, "192.0.2.1"},
		{xff("203.0.113.9"), tcp("192.0.2.1:5000"), false, "192.0.2.1"},
		{xff("203.0.113.9, 10.0.0.1"), tcp("192.0.2.1:5000"), true, "203.0.113.9"},
		{xff(" 203.0.113.9 "), tcp("192.0.2.1:5000"), true, "203.0.113.9"},
		{xff("::ffff:203.0.113.9"), nil, true, "203.0.113.9"},
		{xff("not an address"), tcp("192.0.2.1:5000"), true, "192.0.2.1"},
		{xff(""), tcp("192.0.2.1:5000"), true, "192.0.2.1"},
		{nil, tcp("[2001:db8:1:2:3:4:5:6]:443"), false, "2001:db8:1:2::/64"},
		{xff("2001:db8:1:2::ff"), nil, true, "2001:db8:1:2::/64"},
		{nil, nil, false, ""},
		{nil, &peer.Peer{Addr: &net.UnixAddr{Name: "/run/x.sock", Net: "unix"}}, false, "/run/x.sock"},
	} {
		if got := clientAddr(tc.md, tc.p, tc.trusted); got != tc.want {
			t.Errorf("clientAddr(%v, %v, %v) = %q, want %q", tc.md, tc.p, tc.trusted, got, tc.want)
		}
	}
}
