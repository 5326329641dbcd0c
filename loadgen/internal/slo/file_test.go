package slo

import (
	"strings"
	"testing"
)

func TestReadLines(t *testing.T) {
	in := `# objectives for the nightly group run
p99(delivery)<20ms   # fan-out latency
lost==0

  rate>=50000/s
#late_pct<1%
`
	got, err := ReadLines(strings.NewReader(in), "slos.txt")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"p99(delivery)<20ms", "lost==0", "rate>=50000/s"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, want %q", got, want)
	}
	f := func(in, wantErr string) {
		t.Helper()
		if _, err := ReadLines(strings.NewReader(in), "slos.txt"); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("ReadLines(%q) = %v, want an error containing %q", in, err, wantErr)
		}
	}
	f("lost==0\n# fine\np99(delivery)=10ms\n", "slos.txt:3:")
	f("rate>=5000/min", "slos.txt:1:")
	if got, err := ReadLines(strings.NewReader("# nothing\n\n"), "x"); err != nil || len(got) != 0 {
		t.Fatalf("comments only: %q %v", got, err)
	}
	if _, err := ReadFile("/nonexistent/slos.txt"); err == nil {
		t.Fatal("missing file read")
	}
}

func TestLiveAndBreached(t *testing.T) {
	f := func(text string, k Kind, v float64, live, breached bool) {
		t.Helper()
		s, err := Parse(text)
		if err != nil {
			t.Fatal(err)
		}
		if got := Live(s, k); got != live {
			t.Fatalf("Live(%s) = %v, want %v", text, got, live)
		}
		if live {
			if got := Breached(s, k, v); got != breached {
				t.Fatalf("Breached(%s, %v) = %v, want %v", text, v, got, breached)
			}
		}
	}
	f("rate>=5000/s", Rate, 4000, true, true)
	f("rate>=5000/s", Rate, 6000, true, false)
	f("late_pct<1%", Percent, 2, true, true)
	f("late_pct<1%", Percent, 0.5, true, false)
	f("lost==0", Number, 0, true, false)
	f("lost==0", Number, 1, true, true)
	f("errors<5", Number, 5, true, true)
	f("errors<=5", Number, 5, true, false)
	f("established==100", Number, 40, true, false) // still growing towards it
	f("established>=100", Number, 40, false, false)
	f("max(delivery)<1s", Duration, 2e6, true, true)
	f("max(delivery)<1s", Duration, 5e5, true, false)
	f("p99(delivery)<10ms", Duration, 5e4, false, false) // may still recover
	f("server_rss_per_conn<=1.5KiB", Bytes, 4096, false, false)
}
