package slo

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

// ReadFile reads objectives from a file, one per line. Everything after a
// '#' is a comment; blank lines are skipped. Each objective is parsed, so
// a mistake is reported with its file and line.
func ReadFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("slo file: %w", err)
	}
	defer f.Close()
	return ReadLines(f, path)
}

// ReadLines is ReadFile on an open reader; name labels errors.
func ReadLines(r io.Reader, name string) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if _, err := Parse(line); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, n, err)
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// Live tells whether s can be judged while a run is still going, given
// the kind of its metric: rates and percentages (as measured so far),
// upper bounds on counts (counts only grow, so once over the bound they
// stay over), and upper bounds on a histogram's max. Percentiles can
// still recover and lower bounds on counts are only met at the end, so
// they are judged once, after the run.
func Live(s SLO, k Kind) bool {
	switch k {
	case Rate, Percent:
		return true
	case Number:
		return s.Arg == "" && (s.Op == "<" || s.Op == "<=" || s.Op == "==")
	case Duration:
		return s.Metric == "max" && (s.Op == "<" || s.Op == "<=")
	}
	return false
}

// Breached tells whether the live figure v of a Live objective s of kind
// k already breaks it for good. For rates and percentages that is simply
// a failed comparison; for counts and max, only going over the bound.
func Breached(s SLO, k Kind, v float64) bool {
	switch k {
	case Rate, Percent:
		return !compare(v, s.Op, s.Value)
	}
	switch s.Op {
	case "<":
		return v >= s.Value
	case "<=", "==":
		return v > s.Value
	}
	return false
}
