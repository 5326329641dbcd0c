// Package slo parses service-level objectives such as 'p99(delivery)<10ms',
// 'lost==0' or 'rate>=5000/s', and evaluates them against a run's figures.
package slo

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Kind is what a figure measures, and so which units fit it.
type Kind int

// Kinds of figures. Durations are held in microseconds, rates per second,
// percentages as 0..100, sizes in bytes.
const (
	Number Kind = iota
	Duration
	Rate
	Percent
	Bytes
)

func (k Kind) String() string {
	return [...]string{"a count", "a duration", "a rate", "a percentage", "a size"}[k]
}

// Exit codes of loadgen.
const (
	ExitPass  = 0 // every SLO held
	ExitFail  = 1 // an SLO was missed
	ExitError = 2 // bad usage, or the run could not be carried out
)

// SLO is one parsed objective.
type SLO struct {
	Text   string  // as given
	Metric string  // "p99", "lost", "rate"
	Arg    string  // the histogram for functions such as p99(delivery); else empty
	Op     string  // <, <=, >, >=, ==, !=
	Value  float64 // in the unit of Kind's canonical form
	Unit   Kind    // the kind the unit implies; Number when none was given
}

// Name is the metric as written: "p99(delivery)" or "lost".
func (s SLO) Name() string {
	if s.Arg == "" {
		return s.Metric
	}
	return s.Metric + "(" + s.Arg + ")"
}

var ops = []string{"<=", ">=", "==", "!=", "<", ">"} // two-character ones first

// units maps a suffix to its kind and the factor to the canonical unit.
var units = []struct {
	suffix string
	kind   Kind
	factor float64
}{
	{"/s", Rate, 1}, {"%", Percent, 1},
	{"ns", Duration, 1e-3}, {"us", Duration, 1}, {"µs", Duration, 1}, {"ms", Duration, 1e3}, {"s", Duration, 1e6},
	{"KiB", Bytes, 1 << 10}, {"MiB", Bytes, 1 << 20}, {"GiB", Bytes, 1 << 30}, {"B", Bytes, 1},
}

// Parse parses "metric op value", such as "p99.9(ack)<=20ms".
func Parse(text string) (SLO, error) {
	s := SLO{Text: text}
	t := strings.TrimSpace(text)
	i := strings.IndexAny(t, "<>=!")
	if i <= 0 {
		return s, fmt.Errorf("slo %q: want metric, operator, value, such as p99(delivery)<10ms", text)
	}
	lhs, rest := strings.TrimSpace(t[:i]), t[i:]
	for _, op := range ops {
		if strings.HasPrefix(rest, op) {
			s.Op = op
			break
		}
	}
	if s.Op == "" {
		return s, fmt.Errorf("slo %q: unknown operator; use <, <=, >, >=, == or !=", text)
	}
	if open := strings.IndexByte(lhs, '('); open >= 0 {
		if !strings.HasSuffix(lhs, ")") || open == 0 || open+1 == len(lhs)-1 {
			return s, fmt.Errorf("slo %q: malformed metric %q; want name or func(histogram)", text, lhs)
		}
		s.Metric, s.Arg = lhs[:open], lhs[open+1:len(lhs)-1]
	} else {
		s.Metric = lhs
	}
	if !ident(s.Metric) || (s.Arg != "" && !ident(s.Arg)) {
		return s, fmt.Errorf("slo %q: metric names are letters, digits, '_' and '.'", text)
	}
	num := strings.TrimSpace(rest[len(s.Op):])
	factor := 1.0
	for _, u := range units {
		if strings.HasSuffix(num, u.suffix) {
			num, s.Unit, factor = strings.TrimSuffix(num, u.suffix), u.kind, u.factor
			break
		}
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil {
		return s, fmt.Errorf("slo %q: value %q is not a number with an optional unit (ns, us, ms, s, /s, %%, B, KiB, MiB)", text, rest[len(s.Op):])
	}
	s.Value = v * factor
	return s, nil
}

func ident(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// ParseAll parses every text.
func ParseAll(texts []string) ([]SLO, error) {
	out := make([]SLO, 0, len(texts))
	for _, t := range texts {
		s, err := Parse(t)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// Source resolves a metric of a run: its value in the canonical unit of
// its kind. ok is false for a metric the run does not have.
type Source interface {
	Lookup(metric, arg string) (v float64, k Kind, ok bool)
}

// ErrUnknownMetric is returned for an SLO on a metric the run lacks.
var ErrUnknownMetric = errors.New("unknown metric")

// Check tells whether s can be evaluated against src: the metric exists
// and the unit fits its kind. Run it before a run starts.
func Check(s SLO, src Source) error {
	_, k, ok := src.Lookup(s.Metric, s.Arg)
	if !ok {
		return fmt.Errorf("slo %q: %w %s", s.Text, ErrUnknownMetric, s.Name())
	}
	if s.Unit != k && !(s.Unit == Number && k != Duration) {
		return fmt.Errorf("slo %q: %s is %s; the value's unit does not fit", s.Text, s.Name(), k)
	}
	return nil
}

// Result is one evaluated SLO.
type Result struct {
	SLO    string  `json:"slo"`
	Value  float64 `json:"value"` // the run's figure, canonical unit
	Kind   string  `json:"kind"`
	Pass   bool    `json:"pass"`
	Actual string  `json:"actual"` // the figure for people
}

// Evaluate checks every SLO against src.
func Evaluate(slos []SLO, src Source) ([]Result, error) {
	out := make([]Result, 0, len(slos))
	for _, s := range slos {
		if err := Check(s, src); err != nil {
			return nil, err
		}
		v, k, _ := src.Lookup(s.Metric, s.Arg)
		out = append(out, Result{SLO: s.Text, Value: v, Kind: k.String(), Pass: compare(v, s.Op, s.Value), Actual: Format(v, k)})
	}
	return out, nil
}

func compare(a float64, op string, b float64) bool {
	switch op {
	case "<":
		return a < b
	case "<=":
		return a <= b
	case ">":
		return a > b
	case ">=":
		return a >= b
	case "==":
		return a == b
	default:
		return a != b
	}
}

// Format renders v of kind k for people.
func Format(v float64, k Kind) string {
	switch k {
	case Duration:
		switch {
		case v < 1e3:
			return strconv.FormatFloat(v, 'f', 0, 64) + "µs"
		case v < 1e6:
			return strconv.FormatFloat(v/1e3, 'f', 2, 64) + "ms"
		}
		return strconv.FormatFloat(v/1e6, 'f', 2, 64) + "s"
	case Rate:
		return strconv.FormatFloat(v, 'f', 1, 64) + "/s"
	case Percent:
		return strconv.FormatFloat(v, 'f', 2, 64) + "%"
	case Bytes:
		return strconv.FormatFloat(v, 'f', 0, 64) + "B"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// ExitCode maps a run's outcome to loadgen's exit status: ExitError when
// err is not nil, ExitFail when any SLO failed, else ExitPass.
func ExitCode(results []Result, err error) int {
	if err != nil {
		return ExitError
	}
	for _, r := range results {
		if !r.Pass {
			return ExitFail
		}
	}
	return ExitPass
}
