package slo

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	f := func(text, metric, arg, op string, value float64, unit Kind) {
		t.Helper()
		s, err := Parse(text)
		if err != nil {
			t.Fatalf("Parse(%q): %v", text, err)
		}
		if s.Metric != metric || s.Arg != arg || s.Op != op || s.Value != value || s.Unit != unit || s.Text != text {
			t.Fatalf("Parse(%q) = %+v", text, s)
		}
	}
	f("p99(delivery)<10ms", "p99", "delivery", "<", 10000, Duration)
	f("p99.9(ack)<=2.5ms", "p99.9", "ack", "<=", 2500, Duration)
	f("max(connect)<1s", "max", "connect", "<", 1e6, Duration)
	f("p50(ack) < 800us", "p50", "ack", "<", 800, Duration)
	f("p50(ack)<800µs", "p50", "ack", "<", 800, Duration)
	f("p50(ack)<500ns", "p50", "ack", "<", 0.5, Duration)
	f("lost==0", "lost", "", "==", 0, Number)
	f("errors.rate_limited!=3", "errors.rate_limited", "", "!=", 3, Number)
	f("rate>=5000/s", "rate", "", ">=", 5000, Rate)
	f("rate>1e3", "rate", "", ">", 1000, Number)
	f("late_pct<1%", "late_pct", "", "<", 1, Percent)
	f("server_rss_per_conn<=1.5KiB", "server_rss_per_conn", "", "<=", 1536, Bytes)
	f("server_heap_inuse_per_conn<2048B", "server_heap_inuse_per_conn", "", "<", 2048, Bytes)
	f("established>=19000", "established", "", ">=", 19000, Number)
}

func TestParseErrors(t *testing.T) {
	for _, text := range []string{
		"", "lost", "==0", "lost=0", "lost=>0", "lost<>0", "p99(delivery<10ms", "p99()<1ms", "(x)<1",
		"p99(delivery)<10 parsecs", "p99(deli very)<1ms", "lost==zero", "rate>=5000/min", "a-b==1",
	} {
		if s, err := Parse(text); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", text, s)
		}
	}
}

// figures is a Source with fixed values.
type figures map[string]struct {
	v float64
	k Kind
}

func (f figures) Lookup(metric, arg string) (float64, Kind, bool) {
	name := metric
	if arg != "" {
		name += "(" + arg + ")"
	}
	x, ok := f[name]
	return x.v, x.k, ok
}

var run = figures{
	"p99(delivery)":       {8200, Duration}, // 8.2ms
	"lost":                {0, Number},
	"duplicated":          {2, Number},
	"rate":                {4990, Rate},
	"late_pct":            {0.4, Percent},
	"server_rss_per_conn": {1400, Bytes},
}

func TestEvaluate(t *testing.T) {
	f := func(text string, pass bool, actual string) {
		t.Helper()
		s, err := Parse(text)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := Evaluate([]SLO{s}, run)
		if err != nil {
			t.Fatalf("Evaluate(%q): %v", text, err)
		}
		if rs[0].Pass != pass || rs[0].Actual != actual {
			t.Fatalf("Evaluate(%q) = %+v, want pass=%v actual=%s", text, rs[0], pass, actual)
		}
	}
	f("p99(delivery)<10ms", true, "8.20ms")
	f("p99(delivery)<8ms", false, "8.20ms")
	f("p99(delivery)<=8200us", true, "8.20ms")
	f("lost==0", true, "0")
	f("duplicated==0", false, "2")
	f("duplicated!=0", true, "2")
	f("rate>=5000/s", false, "4990.0/s")
	f("rate>4000", true, "4990.0/s")
	f("late_pct<1%", true, "0.40%")
	f("late_pct<1", true, "0.40%")
	f("server_rss_per_conn<=1.5KiB", true, "1400B")
}

func TestCheck(t *testing.T) {
	f := func(text, wantErr string) {
		t.Helper()
		s, err := Parse(text)
		if err != nil {
			t.Fatal(err)
		}
		err = Check(s, run)
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("Check(%q) = %v, want an error containing %q", text, err, wantErr)
		}
	}
	f("p99(nothing)<1ms", "unknown metric p99(nothing)")
	f("bogus==0", "unknown metric bogus")
	f("p99(delivery)<10", "is a duration")
	f("lost<1ms", "is a count")
	f("rate>10%", "is a rate")
	s, _ := Parse("nope==1")
	if err := Check(s, run); !errors.Is(err, ErrUnknownMetric) {
		t.Fatalf("error %v does not match ErrUnknownMetric", err)
	}
}

func TestExitCode(t *testing.T) {
	pass, fail := Result{Pass: true}, Result{}
	f := func(rs []Result, err error, want int) {
		t.Helper()
		if got := ExitCode(rs, err); got != want {
			t.Fatalf("ExitCode(%v, %v) = %d, want %d", rs, err, got, want)
		}
	}
	f(nil, nil, ExitPass)
	f([]Result{pass, pass}, nil, ExitPass)
	f([]Result{pass, fail}, nil, ExitFail)
	f([]Result{fail}, errors.New("boom"), ExitError)
	f(nil, errors.New("boom"), ExitError)
}
