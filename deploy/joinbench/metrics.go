package joinbench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Metrics are the samples of a Prometheus text exposition, summed by
// metric name over their label sets (each benchmark figure is one series,
// or a sum such as a histogram's _sum over nothing else).
type Metrics map[string]float64

// ParseMetrics reads the Prometheus text format: comment lines are
// skipped, and every sample line is name[{labels}] value [timestamp].
func ParseMetrics(text string) (Metrics, error) {
	m := Metrics{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest := line, ""
		if j := strings.IndexAny(line, "{ "); j >= 0 {
			name, rest = line[:j], line[j:]
		}
		if strings.HasPrefix(rest, "{") {
			// Label values may hold '}' inside quotes: find the closing
			// brace outside them.
			end, quoted := -1, false
			for k := 1; k < len(rest); k++ {
				switch c := rest[k]; {
				case c == '\\' && quoted:
					k++
				case c == '"':
					quoted = !quoted
				case c == '}' && !quoted:
					end = k
				}
				if end >= 0 {
					break
				}
			}
			if end < 0 {
				return nil, fmt.Errorf("line %d: unterminated labels: %q", i+1, line)
			}
			rest = rest[end+1:]
		}
		f := strings.Fields(rest)
		if name == "" || len(f) < 1 || len(f) > 2 {
			return nil, fmt.Errorf("line %d: not a sample: %q", i+1, line)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: bad value in %q: %w", i+1, line, err)
		}
		m[name] += v
	}
	return m, nil
}

// Has reports whether the exposition had the metric.
func (m Metrics) Has(name string) bool { _, ok := m[name]; return ok }

// Scrape reads and parses url (an ops listener's /metrics).
func Scrape(ctx context.Context, url string) (Metrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("cannot scrape %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("cannot scrape %s: %s", url, resp.Status)
	}
	m, err := ParseMetrics(string(body))
	if err != nil {
		return nil, fmt.Errorf("cannot parse %s: %w", url, err)
	}
	return m, nil
}
