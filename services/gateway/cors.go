package gateway

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// What a preflight allows. Tokens travel in the Authorization header, never
// in cookies, so credentials are not allowed and "*" is a safe origin.
const (
	corsMethods       = "GET, HEAD, POST, PUT, PATCH, DELETE"
	corsHeaders       = "Authorization, Content-Type"
	corsExposeHeaders = "Retry-After, WWW-Authenticate"
	corsMaxAge        = "600" // seconds a browser may cache a preflight
)

// cors answers preflights and adds CORS headers for the allowed origins.
type cors struct {
	any     bool            // "*" was configured
	origins map[string]bool // lower-cased "scheme://host[:port]"
}

func newCORS(origins []string) (*cors, error) {
	c := &cors{origins: make(map[string]bool)}
	for _, o := range origins {
		if o == "*" {
			c.any = true
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, fmt.Errorf("allowed origin %q: want \"*\" or scheme://host[:port]", o)
		}
		c.origins[strings.ToLower(u.Scheme+"://"+u.Host)] = true
	}
	return c, nil
}

func (c *cors) allowed(origin string) bool {
	return c.any || c.origins[strings.ToLower(origin)]
}

// handle adds the CORS headers that r's Origin calls for. If r is a
// preflight (OPTIONS with Origin and Access-Control-Request-Method), it
// answers it with 204, whether the origin is allowed (with the headers) or
// not (without them, so the browser refuses), and reports true.
func (c *cors) handle(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	h := w.Header()
	if !c.any {
		h.Add("Vary", "Origin")
	}
	allowed := c.allowed(origin)
	if allowed {
		if c.any {
			h.Set("Access-Control-Allow-Origin", "*")
		} else {
			h.Set("Access-Control-Allow-Origin", origin)
		}
	}
	if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		if allowed {
			h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		}
		return false
	}
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	if allowed {
		h.Set("Access-Control-Allow-Methods", corsMethods)
		h.Set("Access-Control-Allow-Headers", corsHeaders)
		h.Set("Access-Control-Max-Age", corsMaxAge)
	}
	w.WriteHeader(http.StatusNoContent)
	return true
}
