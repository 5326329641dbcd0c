package ws

import (
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"
)

// echoServer is a blocking stand-in for the edge, driving the codec the way
// the event loop does: inbound bytes accumulate in a buffer, the codec runs
// over all of them, consumed bytes are discarded. It upgrades, echoes data
// messages, answers pings with pongs and a close with a close, and answers
// a failure with the close frame the Reader asked for.
type echoServer struct {
	addr       string
	maxMessage int
	// closes receives the close frames clients send, code and reason.
	closes chan CloseError

	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// echoProtocol is the subprotocol the server picks when a client offers it.
const echoProtocol = "echo"

func startEchoServer(t *testing.T, maxMessage int) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{
		addr:       ln.Addr().String(),
		maxMessage: maxMessage,
		closes:     make(chan CloseError, 16),
		ln:         ln,
		conns:      make(map[net.Conn]struct{}),
	}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.stop)
	return s
}

func (s *echoServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

func (s *echoServer) stop() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *echoServer) serve(c net.Conn) {
	buf := make([]byte, 0, 4096)
	var out []byte
	r := Reader{MaxMessage: s.maxMessage}
	upgraded := false
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, cap(buf))
		}
		k, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		if err != nil {
			return
		}
		if !upgraded {
			req, n, err := ParseUpgrade(buf)
			var he *HTTPError
			if errors.As(err, &he) {
				_, _ = c.Write(he.AppendResponse(nil))
				lingerClose(c)
				return
			}
			if n == 0 {
				continue
			}
			protocol := ""
			if req.Offers(echoProtocol) {
				protocol = echoProtocol
			}
			if _, err := c.Write(AppendAccept(nil, req.Key, protocol)); err != nil {
				return
			}
			buf = buf[:copy(buf, buf[n:])]
			upgraded = true
		}

		out = out[:0]
		consumed, closing := 0, false
		for !closing {
			m, n, err := r.Next(buf[consumed:])
			consumed += n
			var ce *CloseError
			if errors.As(err, &ce) {
				out = AppendClose(out, ce.Code, ce.Reason)
				closing = true
				break
			}
			switch m.Op {
			case OpText, OpBinary:
				out = AppendFrame(out, m.Op, m.Payload)
			case OpPing:
				out = AppendFrame(out, OpPong, m.Payload)
			case OpClose:
				code, reason := ParseClose(m.Payload)
				select {
				case s.closes <- CloseError{Code: code, Reason: string(reason)}:
				default:
				}
				out = AppendClose(out, code, "")
				closing = true
			}
			if n == 0 {
				break
			}
		}
		buf = buf[:copy(buf, buf[consumed:])]
		if len(out) > 0 {
			if _, err := c.Write(out); err != nil {
				return
			}
		}
		if closing {
			lingerClose(c)
			return
		}
	}
}

// lingerClose shuts the write side and drains what the peer still sends,
// so the peer reads our last frames instead of a reset.
func lingerClose(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.Copy(io.Discard, c)
}

// recv waits up to 10 seconds for a value from ch.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}
