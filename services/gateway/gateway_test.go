package gateway

import (
	"context"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/surgechat/surge/internal/grpcx"
	"github.com/surgechat/surge/services/account/accountpb"
)

func TestAuthorizationForwarded(t *testing.T) {
	e := newEnv(t, nil)
	e.do(t, "GET", "/v1/me", "", "Authorization", "Bearer eyJhbGciOi.x.y")
	if got := e.b.last(t).md.Get("authorization"); !slices.Equal(got, []string{"Bearer eyJhbGciOi.x.y"}) {
		t.Fatalf("authorization %q", got)
	}
	e.do(t, "GET", "/v1/me", "")
	if got := e.b.last(t).md.Get("authorization"); len(got) != 0 {
		t.Fatalf("authorization %q without the header", got)
	}
}

// TestNoServiceTokenForClients: on a grpcx connection that carries a
// service token, a client's request without Authorization must not travel
// with that token, and one with it travels with the client's.
func TestNoServiceTokenForClients(t *testing.T) {
	b := &backend{}
	addr := startFakes(t, b)
	cc, err := grpcx.Dial(context.Background(), addr, grpcx.ClientConfig{Token: func() string { return "service-secret" }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	e := newEnv(t, func(c *Config) { c.Account = accountpb.NewAccountClient(cc) })
	e.b = b
	e.do(t, "GET", "/v1/me", "")
	if got := b.last(t).md.Get("authorization"); len(got) != 0 {
		t.Fatalf("authorization %q sent for a request without one", got)
	}
	e.do(t, "GET", "/v1/me", "", "Authorization", "Bearer user-token")
	if got := b.last(t).md.Get("authorization"); !slices.Equal(got, []string{"Bearer user-token"}) {
		t.Fatalf("authorization %q, want the client's", got)
	}
}

func TestForwardedFor(t *testing.T) {
	tests := []struct {
		trust  bool
		header []string
		want   string
	}{
		{false, nil, "127.0.0.1"},
		{false, []string{"203.0.113.7"}, "127.0.0.1"},
		{true, nil, "127.0.0.1"},
		{true, []string{"203.0.113.7"}, "203.0.113.7"},
		{true, []string{"198.51.100.1, 203.0.113.7"}, "203.0.113.7"},
		{true, []string{"198.51.100.1", "2001:db8::1"}, "2001:db8::1"},
		{true, []string{"not-an-address"}, "127.0.0.1"},
	}
	for _, tc := range tests {
		e := newEnv(t, func(c *Config) { c.TrustForwardedFor = tc.trust })
		var h []string
		for _, v := range tc.header {
			h = append(h, "X-Forwarded-For", v)
		}
		e.do(t, "GET", "/v1/me", "", h...)
		if got := e.b.last(t).md.Get("x-forwarded-for"); !slices.Equal(got, []string{tc.want}) {
			t.Errorf("trust %v, X-Forwarded-For %q: forwarded %q, want %q", tc.trust, tc.header, got, tc.want)
		}
	}
}

func TestNotConfigured(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Account, c.Social, c.Message = nil, nil, nil })
	for _, tc := range []struct{ method, path, body, service string }{
		{"POST", "/v1/accounts", `{"bad json`, "account"}, // 503 before the body is read
		{"GET", "/v1/me", "", "account"},
		{"GET", "/v1/friends", "", "social"},
		{"POST", "/v1/groups", `{}`, "social"},
		{"GET", "/v1/sync", "", "message"},
	} {
		resp, body := e.do(t, tc.method, tc.path, tc.body)
		checkError(t, resp, body, 503, "UNAVAILABLE", tc.service+" service not configured")
	}
	// The other services still answer.
	e = newEnv(t, func(c *Config) { c.Social = nil })
	if resp, body := e.do(t, "GET", "/v1/me", ""); resp.StatusCode != 200 {
		t.Fatalf("account route with social unset: %d %s", resp.StatusCode, body)
	}
	resp, body := e.do(t, "GET", "/v1/groups", "")
	checkError(t, resp, body, 503, "UNAVAILABLE", "social service not configured")
}

func TestUnmatched(t *testing.T) {
	e := newEnv(t, nil)
	resp, body := e.do(t, "GET", "/v1/nope", "")
	checkError(t, resp, body, 404, "NOT_FOUND", "no route for /v1/nope")

	resp, body = e.do(t, "DELETE", "/v1/me", "")
	checkError(t, resp, body, 405, "METHOD_NOT_ALLOWED", "DELETE")
	allow := strings.Split(resp.Header.Get("Allow"), ", ")
	slices.Sort(allow)
	if !slices.Equal(allow, []string{"GET", "HEAD", "PATCH"}) {
		t.Fatalf("Allow %q", resp.Header.Get("Allow"))
	}

	resp, body = e.do(t, "OPTIONS", "/v1/me", "") // no CORS configured: not a route
	checkError(t, resp, body, 405, "METHOD_NOT_ALLOWED", "OPTIONS")
}

func TestHealthz(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Account, c.Social, c.Message = nil, nil, nil })
	resp, body := e.do(t, "GET", "/healthz", "")
	if resp.StatusCode != 200 || body != "ok\n" {
		t.Fatalf("healthz: %d %q", resp.StatusCode, body)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, nil)
	e.do(t, "GET", "/v1/users/bob", "")
	e.do(t, "GET", "/v1/users/carol", "")
	e.do(t, "PUT", "/v1/users/bob/roles", `{"roles":}`)
	e.do(t, "GET", "/v1/nope", "")
	e.do(t, "BREW", "/v1/me", "")
	e.do(t, "GET", "/healthz", "")
	text := e.metricsText()
	for _, want := range []string{
		`surge_http_requests_total{route="/v1/users/{id}",method="GET",code="200"} 2`,
		`surge_http_requests_total{route="/v1/users/{id}/roles",method="PUT",code="400"} 1`,
		`surge_http_requests_total{route="unmatched",method="GET",code="404"} 1`,
		`surge_http_requests_total{route="unmatched",method="other",code="405"} 1`,
		`surge_http_requests_total{route="/healthz",method="GET",code="200"} 1`,
		`surge_http_request_duration_seconds_count{route="/v1/users/{id}"} 2`,
		`surge_http_request_duration_seconds_bucket{route="/v1/users/{id}",le="+Inf"} 2`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("metrics lack %s", want)
		}
	}
	if t.Failed() {
		t.Log(text)
	}
}

func TestConfig(t *testing.T) {
	for _, cfg := range []Config{
		{MaxBodyBytes: -1},
		{Timeout: -time.Second},
		{AllowedOrigins: []string{"app.example.com"}},
		{AllowedOrigins: []string{"https://app.example.com/path"}},
		{AllowedOrigins: []string{"ftp://app.example.com"}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
	gw, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if gw.cfg.Addr != DefaultAddr || gw.cfg.MaxBodyBytes != DefaultMaxBodyBytes || gw.cfg.Timeout != DefaultTimeout {
		t.Fatalf("defaults %+v", gw.cfg)
	}
}

func TestServe(t *testing.T) {
	gw, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		_ = c.Close()
		t.Fatal("still listening")
	}
}
