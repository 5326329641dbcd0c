package loadgen

import (
	"encoding/json"
	"testing"
)

var sampleFrames = []string{
	`{"type":"msg","seq":41,"msg_id":"da0b625ffee766107691b5b043c230fc","conv":"g/d1d51ea68c4e6ea5","from":"lgg0m1","id":"1a2-7","body":"0:1:7:1795705549025068000","sent_at":1795705549025068,"stored_at":1795705549027202}`,
	`{"type":"topic","topic":"lg-1a2-0","from":"loadgen","msg_id":"629a43091a9dd27bff99744ea38fb15a","body":"0:3:1795705549025068000:xxxx","sent_at":1795705549025068}`,
	`{"type":"ack","id":"1a2-3","msg_id":"46c34444de82eaeb09dabf43d12b9d6c"}`,
	`{"type":"error","id":"m9","code":"bad_recipient","reason":"to must be a user id: 1-64 characters of A-Z a-z 0-9 _ . - @"}`,
	`{"type":"synced","id":"sync","after":0,"last":100,"more":true}`,
	`{"type":"synced","after":3,"last":3,"more":false}`,
	`{"type":"hello","user":"alice","session":"487a062e99d1","heartbeat":30}`,
	`{"type":"presence","id":"p","online":{"bob":true}}`,
	`{"type":"error","code":"x","reason":"quote \" inside"}`,
	` { "type" : "pong" , "ts" : 1795705549327446 } `,
	`{}`, `{"type":"msg","seq":-1}`, `{"type":"msg","seq":1.5}`, `[1]`, `{"type":`, `{"type":"msg",}`, `{"a":nul}`, `{"type":"x"} trailing`,
}

// TestDecodeFrame: the hand-written scan reads what encoding/json reads,
// and falls back to it for what it does not handle.
func TestDecodeFrame(t *testing.T) {
	for _, s := range sampleFrames {
		var fast, slow frame
		okFast := decodeFrame([]byte(s), &fast)
		okSlow := json.Unmarshal([]byte(s), &slow) == nil
		if okFast != okSlow || (okFast && fast != slow) {
			t.Errorf("%s:\n fast %v %+v\n json %v %+v", s, okFast, fast, okSlow, slow)
		}
	}
	var f frame
	if !fastFrame([]byte(sampleFrames[0]), &f) || f.Seq != 41 || f.Conv != "g/d1d51ea68c4e6ea5" || f.Body != "0:1:7:1795705549025068000" {
		t.Fatalf("fast path not taken for a msg frame: %+v", f)
	}
}

func FuzzDecodeFrame(f *testing.F) {
	for _, s := range sampleFrames {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast, slow frame
		if fastFrame(b, &fast) && json.Unmarshal(b, &slow) == nil && fast != slow {
			t.Fatalf("%q: fast %+v, json %+v", b, fast, slow)
		}
	})
}

func BenchmarkDecodeFrame(b *testing.B) {
	msg := []byte(sampleFrames[0])
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(msg)))
		var f frame
		for b.Loop() {
			decodeFrame(msg, &f)
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(msg)))
		var f frame
		for b.Loop() {
			f = frame{}
			_ = json.Unmarshal(msg, &f)
		}
	})
}
