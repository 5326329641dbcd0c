package loadgen

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// frame is the part of a server frame the scenarios read.
type frame struct {
	Type  string `json:"type"`
	ID    string `json:"id"`
	Seq   uint64 `json:"seq"`
	Code  string `json:"code"`
	Body  string `json:"body"`
	From  string `json:"from"`
	Conv  string `json:"conv"`
	Topic string `json:"topic"`
	Last  uint64 `json:"last"`
	More  bool   `json:"more"`
}

// appendBody appends a message body: the ids that place the message
// (pair; group and member; topic), the sender's sequence number and the
// intended send time in unix nanos, colon-separated, then ":" and padding
// up to size bytes if size asks for more.
func appendBody(b []byte, ids []int, seq uint64, t int64, size int) []byte {
	start := len(b)
	for _, id := range ids {
		b = strconv.AppendInt(b, int64(id), 10)
		b = append(b, ':')
	}
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, t, 10)
	if short := size - (len(b) - start); short > 0 {
		b = append(b, ':')
		for range short - 1 {
			b = append(b, 'x')
		}
	}
	return b
}

// appendSend appends a send frame with client message id "<run>-<seq>"
// to field ("to" or "group") value.
func appendSend(b []byte, runID string, seq uint64, field, value string, ids []int, t int64, size int) []byte {
	b = append(b, `{"type":"send","id":"`...)
	b = append(b, runID...)
	b = append(b, '-')
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `","`...)
	b = append(b, field...)
	b = append(b, `":"`...)
	b = append(b, value...)
	b = append(b, `","body":"`...)
	b = appendBody(b, ids, seq, t, size)
	return append(b, `"}`...)
}

// parseBody reads a body of appendBody with n ids: the ids, then seq and
// the intended time.
func parseBody(body string, n int) (ids []int, seq uint64, t int64, ok bool) {
	parts := strings.SplitN(body, ":", n+3)
	if len(parts) < n+2 {
		return nil, 0, 0, false
	}
	ids = make([]int, n)
	for i := range n {
		v, err := strconv.Atoi(parts[i])
		if err != nil || v < 0 {
			return nil, 0, 0, false
		}
		ids[i] = v
	}
	seq, err := strconv.ParseUint(parts[n], 10, 64)
	if err != nil {
		return nil, 0, 0, false
	}
	if t, err = strconv.ParseInt(parts[n+1], 10, 64); err != nil {
		return nil, 0, 0, false
	}
	return ids, seq, t, true
}

// seqOf parses a client message id "<run id>-<seq>" of this run.
func seqOf(runID, id string) (uint64, bool) {
	rest, ok := strings.CutPrefix(id, runID+"-")
	if !ok {
		return 0, false
	}
	seq, err := strconv.ParseUint(rest, 10, 64)
	return seq, err == nil
}

// decodeFrame reads a server frame into f. Server frames are flat JSON
// objects (docs/PROTOCOL.md), so a hand-written scan of their keys does,
// at several hundred thousand frames a second, what encoding/json would
// spend a core on; anything unusual (escapes, nested values) falls back
// to encoding/json.
func decodeFrame(b []byte, f *frame) bool {
	*f = frame{}
	if fastFrame(b, f) {
		return true
	}
	*f = frame{}
	return json.Unmarshal(b, f) == nil
}

func fastFrame(b []byte, f *frame) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return true
	}
	for i < len(b) {
		key, n, ok := rawString(b, i)
		if !ok || hasUpper(key) {
			return false // encoding/json matches keys regardless of case
		}
		i = skipSpace(b, n)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		if i >= len(b) {
			return false
		}
		switch c := b[i]; {
		case c == '"':
			v, n, ok := rawString(b, i)
			if !ok {
				return false
			}
			switch string(key) { // no allocation: the compiler compares in place
			case "type":
				f.Type = string(v)
			case "id":
				f.ID = string(v)
			case "code":
				f.Code = string(v)
			case "body":
				f.Body = string(v)
			case "from":
				f.From = string(v)
			case "conv":
				f.Conv = string(v)
			case "topic":
				f.Topic = string(v)
			}
			i = n
		case c == '-' || c >= '0' && c <= '9':
			j := i
			for j < len(b) && (b[j] == '-' || b[j] == '.' || b[j] == 'e' || b[j] == 'E' || b[j] == '+' || b[j] >= '0' && b[j] <= '9') {
				j++
			}
			switch string(key) {
			case "seq", "last":
				v, err := strconv.ParseUint(string(b[i:j]), 10, 64)
				if err != nil {
					return false
				}
				if string(key) == "seq" {
					f.Seq = v
				} else {
					f.Last = v
				}
			}
			i = j
		case bytes.HasPrefix(b[i:], []byte("true")):
			if string(key) == "more" {
				f.More = true
			}
			i += 4
		case bytes.HasPrefix(b[i:], []byte("false")):
			i += 5
		case bytes.HasPrefix(b[i:], []byte("null")):
			i += 4
		default:
			return false // an object or array: leave it to encoding/json
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return false
		}
		if b[i] == '}' {
			return skipSpace(b, i+1) == len(b)
		}
		if b[i] != ',' {
			return false
		}
		i = skipSpace(b, i+1)
	}
	return false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

func hasUpper(b []byte) bool {
	for _, c := range b {
		if c >= 'A' && c <= 'Z' {
			return true
		}
	}
	return false
}

// rawString reads the JSON string at b[i] (a '"'), without escapes, and
// returns its bytes and the index after its closing quote.
func rawString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	ascii := true
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			if !ascii && !utf8.Valid(b[i+1:j]) {
				return nil, 0, false // encoding/json replaces bad bytes
			}
			return b[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20:
			return nil, 0, false
		case c >= 0x80:
			ascii = false
		}
	}
	return nil, 0, false
}
