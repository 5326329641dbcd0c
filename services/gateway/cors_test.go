package gateway

import (
	"net/http"
	"testing"
)

func TestCORS(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.AllowedOrigins = []string{"https://app.example.com", "http://localhost:5173"}
	})
	preflight := func(origin string) *http.Response {
		t.Helper()
		resp, body := e.do(t, "OPTIONS", "/v1/groups/g1", "",
			"Origin", origin,
			"Access-Control-Request-Method", "PATCH",
			"Access-Control-Request-Headers", "authorization, content-type")
		if resp.StatusCode != http.StatusNoContent || body != "" {
			t.Fatalf("preflight from %s: %d %q", origin, resp.StatusCode, body)
		}
		return resp
	}

	resp := preflight("https://app.example.com")
	for h, want := range map[string]string{
		"Access-Control-Allow-Origin":  "https://app.example.com",
		"Access-Control-Allow-Methods": "GET, HEAD, POST, PUT, PATCH, DELETE",
		"Access-Control-Allow-Headers": "Authorization, Content-Type",
		"Access-Control-Max-Age":       "600",
	} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}
	if resp.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Error("credentials allowed")
	}
	if got := resp.Header.Values("Vary"); len(got) == 0 || got[0] != "Origin" {
		t.Errorf("Vary %q", got)
	}
	if n := e.b.count(); n != 0 {
		t.Fatalf("a preflight made %d RPCs", n)
	}

	// Origins compare without regard to the case of scheme and host.
	if got := preflight("HTTP://LOCALHOST:5173").Header.Get("Access-Control-Allow-Origin"); got != "HTTP://LOCALHOST:5173" {
		t.Errorf("upper-case origin: Allow-Origin %q", got)
	}

	// A foreign origin's preflight gets no CORS headers: the browser refuses.
	resp = preflight("https://evil.example")
	for _, h := range []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Methods", "Access-Control-Allow-Headers"} {
		if got := resp.Header.Get(h); got != "" {
			t.Errorf("foreign origin: %s %q", h, got)
		}
	}

	// An actual request from an allowed origin.
	resp, _ = e.do(t, "GET", "/v1/groups/g1", "", "Origin", "https://app.example.com")
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		resp.Header.Get("Access-Control-Expose-Headers") != "Retry-After, WWW-Authenticate" {
		t.Errorf("simple request: %d %v", resp.StatusCode, resp.Header)
	}
	// ... and from a foreign one: served (CORS is the browser's check) without the headers.
	resp, _ = e.do(t, "GET", "/v1/groups/g1", "", "Origin", "https://evil.example")
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("foreign request: %d %v", resp.StatusCode, resp.Header)
	}
	// Errors carry the headers too, so the page can read them.
	resp, _ = e.do(t, "GET", "/v1/nope", "", "Origin", "https://app.example.com")
	if resp.StatusCode != 404 || resp.Header.Get("Access-Control-Allow-Origin") == "" {
		t.Errorf("404: %d %v", resp.StatusCode, resp.Header)
	}
	// An OPTIONS that is not a preflight is not a route.
	resp, _ = e.do(t, "OPTIONS", "/v1/me", "", "Origin", "https://app.example.com")
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("plain OPTIONS: %d", resp.StatusCode)
	}
}

func TestCORSAnyOrigin(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.AllowedOrigins = []string{"*"} })
	resp, _ := e.do(t, "OPTIONS", "/v1/me", "", "Origin", "https://anywhere.example", "Access-Control-Request-Method", "GET")
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = e.do(t, "GET", "/v1/me", "", "Origin", "https://anywhere.example")
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" || resp.Header.Get("Vary") != "" {
		t.Fatalf("request: %v", resp.Header)
	}
}

func TestNoCORS(t *testing.T) {
	e := newEnv(t, nil)
	resp, _ := e.do(t, "GET", "/v1/me", "", "Origin", "https://app.example.com")
	for h := range resp.Header {
		if len(h) > 12 && h[:12] == "Access-Contr" {
			t.Errorf("CORS header %s without AllowedOrigins", h)
		}
	}
}
