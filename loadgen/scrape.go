package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/surgechat/surge/loadgen/internal/report"
)

// serverMemory are the memory figures of the server's /metrics divided by
// the connections it held, by report key.
var serverMemory = map[string]string{
	"rss":         "process_resident_memory_bytes",
	"heap_inuse":  "go_memstats_heap_inuse_bytes",
	"stack_inuse": "go_memstats_stack_inuse_bytes",
	"sys":         "go_memstats_sys_bytes",
}

const connMetric = "surge_edge_connections"

// scrape reads the unlabelled samples of a Prometheus text endpoint.
func scrape(ctx context.Context, url string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: HTTP %d", url, resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 || strings.ContainsRune(f[0], '{') {
			continue
		}
		if v, err := strconv.ParseFloat(f[1], 64); err == nil {
			out[f[0]] = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	return out, nil
}

// serverReport divides the growth of each memory figure by the growth of
// the server's connection count. With nil samples it returns the
// skeleton with every key, for checking SLOs before the run.
func serverReport(url string, before, held map[string]float64) *report.Server {
	pick := func(m map[string]float64) map[string]float64 {
		out := map[string]float64{}
		for _, name := range serverMemory {
			out[name] = m[name]
		}
		out[connMetric] = m[connMetric]
		return out
	}
	s := &report.Server{URL: url, Before: pick(before), Held: pick(held), PerConn: map[string]float64{}}
	s.Conns = s.Held[connMetric] - s.Before[connMetric]
	for key, name := range serverMemory {
		if s.Conns > 0 {
			s.PerConn[key] = (s.Held[name] - s.Before[name]) / s.Conns
		} else {
			s.PerConn[key] = 0
		}
	}
	return s
}
