package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"
)

// maxHTTPConns bounds the HTTP connections (and requests in flight) of one
// worker's API client.
const maxHTTPConns = 256

// apiClient calls the HTTP API of docs/HTTP_API.md. Its connections
// spread over the run's source addresses, as its WebSockets do, so that
// the server's per-address login throttle sees many clients rather than
// one.
type apiClient struct {
	base string
	hc   *http.Client
}

// APIError is an answer with a status other than 2xx.
type APIError struct {
	Status  int
	Code    string // the body's error.code, such as ALREADY_EXISTS
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

// statusOf returns the HTTP status of err: the APIError's, or 0 for a
// request that got no answer.
func statusOf(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// statusKey names an outcome for error counts: "http_409", or "http_error"
// for no answer at all.
func statusKey(err error) string {
	if s := statusOf(err); s != 0 {
		return "http_" + strconv.Itoa(s)
	}
	return "http_error"
}

func newAPIClient(cfg *Config) (*apiClient, error) {
	u, err := url.Parse(cfg.API)
	if err != nil {
		return nil, err
	}
	target := net.ParseIP(u.Hostname())
	var next atomic.Uint64
	d := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		MaxIdleConns: maxHTTPConns, MaxIdleConnsPerHost: maxHTTPConns, MaxConnsPerHost: maxHTTPConns,
		IdleConnTimeout: 90 * time.Second,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dd := *d
			if target != nil && target.To4() != nil {
				dd.LocalAddr = &net.TCPAddr{IP: cfg.srcIP(int(next.Add(1)), target)}
			}
			return dd.DialContext(ctx, network, addr)
		},
	}
	return &apiClient{base: u.Scheme + "://" + u.Host, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}, nil
}

func (a *apiClient) close() { a.hc.CloseIdleConnections() }

// do sends a request with body as JSON (nil: none) and decodes a 2xx
// answer into out (nil: discard).
func (a *apiClient) do(ctx context.Context, method, path, token string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		_ = json.Unmarshal(b, &e)
		return &APIError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

func (a *apiClient) register(ctx context.Context, user, password string) error {
	return a.do(ctx, http.MethodPost, "/v1/accounts", "", map[string]string{"username": user, "password": password}, nil)
}

// session is what login returns.
type session struct {
	Token string `json:"access_token"`
	User  struct {
		Roles []string `json:"roles"`
	} `json:"user"`
}

func (a *apiClient) login(ctx context.Context, user, password string) (*session, error) {
	var s session
	err := a.do(ctx, http.MethodPost, "/v1/auth/login", "", map[string]string{"username": user, "password": password}, &s)
	return &s, err
}

// createGroup creates a group owned by token's user with members, and
// returns its id.
func (a *apiClient) createGroup(ctx context.Context, token, name string, members []string) (string, error) {
	var g struct {
		ID string `json:"id"`
	}
	err := a.do(ctx, http.MethodPost, "/v1/groups", token, map[string]any{"name": name, "members": members}, &g)
	return g.ID, err
}

func (a *apiClient) publishTopic(ctx context.Context, token, topic, id, body string) error {
	return a.do(ctx, http.MethodPost, "/v1/publish", token, map[string]string{"topic": topic, "id": id, "body": body, "from": "loadgen"}, nil)
}

// retryable tells whether a setup request should be tried again: a
// throttle or an unavailable service.
func retryable(err error) bool {
	s := statusOf(err)
	return s == 0 || s == http.StatusTooManyRequests || s == http.StatusServiceUnavailable || s == http.StatusGatewayTimeout
}

// withRetry calls fn until it succeeds, fails for good, or 5 tries pass.
func withRetry(ctx context.Context, fn func() error) error {
	var err error
	for try := range 5 {
		if err = fn(); err == nil || !retryable(err) {
			return err
		}
		if serr := sleepUntil(ctx, time.Now().Add(time.Duration(200<<try)*time.Millisecond)); serr != nil {
			return err
		}
	}
	return err
}

// signIn registers user (a taken name is fine: an earlier run made it)
// and logs in.
func (a *apiClient) signIn(ctx context.Context, user, password string) (*session, error) {
	err := withRetry(ctx, func() error { return a.register(ctx, user, password) })
	if err != nil && statusOf(err) != http.StatusConflict {
		return nil, fmt.Errorf("register %s: %w", user, err)
	}
	var s *session
	err = withRetry(ctx, func() error {
		var err error
		s, err = a.login(ctx, user, password)
		return err
	})
	if err != nil {
		if statusOf(err) == http.StatusUnauthorized {
			return nil, fmt.Errorf("log in %s: %w (the user exists with another password: pass --password or --user-prefix)", user, err)
		}
		return nil, fmt.Errorf("log in %s: %w", user, err)
	}
	return s, nil
}

// signInAll signs every user in, conc at a time, and returns their
// access tokens in order.
func (a *apiClient) signInAll(ctx context.Context, users []string, password string, conc int) ([]string, error) {
	tokens := make([]string, len(users))
	err := forEach(ctx, len(users), conc, func(i int) error {
		s, err := a.signIn(ctx, users[i], password)
		if err == nil {
			tokens[i] = s.Token
		}
		return err
	})
	return tokens, err
}

// operatorToken signs the operator in and checks that it holds the
// operator role.
func (a *apiClient) operatorToken(ctx context.Context, cfg *Config) (string, error) {
	s, err := a.signIn(ctx, cfg.OperatorUser, cfg.OperatorPassword)
	if err != nil {
		return "", fmt.Errorf("operator: %w", err)
	}
	for _, r := range s.User.Roles {
		if r == "operator" {
			return s.Token, nil
		}
	}
	return "", usageErr("user %q lacks the operator role: start the server with --operators %s (the role is given at registration), or pass --operator-user/--operator-password of an operator",
		cfg.OperatorUser, cfg.OperatorUser)
}

// validUsername is the account service's rule: 3 to 32 characters of
// a-z 0-9 _ . - starting with a letter.
func validUsername(s string) bool {
	if len(s) < 3 || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}
