package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// promqlMetrics returns the metric names an expression selects. It is a
// tokenizer, not a parser (github.com/prometheus/prometheus would be a large
// module for one test): it skips strings, label matchers {…}, ranges […],
// Grafana variables, numbers and durations, the label lists of
// by/without/on/ignoring/group_left/group_right, keywords, and names called
// as functions or aggregations. The syntax itself is checked by promtool
// (TestDashboardQueriesParse) and by the real Prometheus
// (TestPrometheusIntegration).
func promqlMetrics(expr string) ([]string, error) {
	type tok struct{ s string }
	var toks []tok
	rs := []rune(expr)
	ident := func(r rune, first bool) bool {
		return r == '_' || r == ':' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (!first && r >= '0' && r <= '9')
	}
	skipTo := func(i int, open, close rune) (int, error) {
		depth := 0
		for j := i; j < len(rs); j++ {
			switch rs[j] {
			case '"', '\'', '`':
				q := rs[j]
				for j++; j < len(rs) && rs[j] != q; j++ {
					if rs[j] == '\\' {
						j++
					}
				}
			case open:
				depth++
			case close:
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, fmt.Errorf("unbalanced %c in %q", open, expr)
	}
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case r == ' ' || r == '\n' || r == '\t' || r == '\r':
			i++
		case r == '"' || r == '\'' || r == '`':
			j := i + 1
			for ; j < len(rs) && rs[j] != r; j++ {
				if rs[j] == '\\' {
					j++
				}
			}
			if j >= len(rs) {
				return nil, fmt.Errorf("unterminated string in %q", expr)
			}
			i = j + 1
		case r == '{':
			j, err := skipTo(i, '{', '}')
			if err != nil {
				return nil, err
			}
			i = j
		case r == '[':
			j, err := skipTo(i, '[', ']')
			if err != nil {
				return nil, err
			}
			i = j
		case r == '$': // Grafana variable: $name or ${name}
			i++
			if i < len(rs) && rs[i] == '{' {
				j, err := skipTo(i, '{', '}')
				if err != nil {
					return nil, err
				}
				i = j
			}
			for i < len(rs) && ident(rs[i], false) {
				i++
			}
		case (r >= '0' && r <= '9') || r == '.': // number or duration (5m, 1e3, 0x1f)
			for i < len(rs) && (ident(rs[i], false) || rs[i] == '.') {
				i++
			}
		case ident(r, true):
			j := i
			for j < len(rs) && ident(rs[j], false) {
				j++
			}
			toks = append(toks, tok{string(rs[i:j])})
			i = j
		default:
			toks = append(toks, tok{string(r)})
			i++
		}
	}
	labelLists := map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}
	keywords := map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true, "inf": true, "nan": true}
	aggregations := map[string]bool{"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
		"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true, "limitk": true, "limit_ratio": true}
	var out []string
	for i := 0; i < len(toks); i++ {
		s := toks[i].s
		next := ""
		if i+1 < len(toks) {
			next = toks[i+1].s
		}
		lower := strings.ToLower(s)
		switch {
		case !ident([]rune(s)[0], true):
		case labelLists[lower]:
			if next == "(" {
				depth := 0
				for i++; i < len(toks); i++ {
					if toks[i].s == "(" {
						depth++
					} else if toks[i].s == ")" {
						if depth--; depth == 0 {
							break
						}
					}
				}
			}
		case keywords[lower], aggregations[lower], next == "(":
		default:
			out = append(out, s)
		}
	}
	return out, nil
}

func TestPromqlMetrics(t *testing.T) {
	f := func(expr string, want ...string) {
		t.Helper()
		got, err := promqlMetrics(expr)
		if err != nil {
			t.Fatalf("%q: %v", expr, err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%q: got %v, want %v", expr, got, want)
		}
	}
	f(`up`, "up")
	f(`sum by (endpoint, code) (rate(a_total{job=~"$job", code!~"2.."}[$__rate_interval]))`, "a_total")
	f(`histogram_quantile(0.99, sum by (le, topic) (rate(x_seconds_bucket{job=~"$job"}[5m])))`, "x_seconds_bucket")
	f(`sum(rate(a[1h])) / ignoring (field) group_left () sum(rate(b{l="by (x)"}[1h] offset 1h))`, "a", "b")
	f(`time() - max by (table) (ts_seconds{table="raw_events"}) > 600 and on () sum(c) > 0`, "ts_seconds", "c")
	f(`sum(x) without (instance) unless count(y) by (job) >bool 2e3`, "x", "y")
	f(`delta(o[10m]) == 0 and on (group, topic, partition) delta(l[${__range}]) > 0`, "o", "l")
	f(`rate(process_cpu_seconds_total{job=~"${job}"}[$__rate_interval])`, "process_cpu_seconds_total")
	f(`ALERTS{alertname=~"P.*"}`, "ALERTS")
	if _, err := promqlMetrics(`rate(x[5m)`); err == nil {
		t.Error("an unbalanced [ was accepted")
	}
}

// builtins are series that Prometheus makes itself.
var builtins = map[string]bool{"up": true, "ALERTS": true, "ALERTS_FOR_STATE": true, "scrape_duration_seconds": true}

// documented reports whether name is in the catalogue (or a histogram's or
// summary's _bucket, _sum, _count series of one that is).
func documented(rows map[string]catalogueRow, name string) bool {
	if _, ok := lookup(rows, name); ok || builtins[name] {
		return true
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suf); ok {
			if r, ok := rows[base]; ok && (r.typ == "histogram" || r.typ == "summary") {
				return true
			}
		}
	}
	return false
}

// dashboardQuery is one PromQL expression of the dashboard and where it is.
type dashboardQuery struct{ where, expr string }

func dashboardQueries(t *testing.T) (queries []dashboardQuery, variableMetrics []string) {
	t.Helper()
	b, err := os.ReadFile("../../deploy/grafana/purchasesync.json")
	if err != nil {
		t.Fatal(err)
	}
	type target struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	}
	type panel struct {
		Title   string   `json:"title"`
		Type    string   `json:"type"`
		Targets []target `json:"targets"`
		Panels  []panel  `json:"panels"`
	}
	var d struct {
		UID        string  `json:"uid"`
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Annotations struct {
			List []struct {
				Name string `json:"name"`
				Expr string `json:"expr"`
			} `json:"list"`
		} `json:"annotations"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("deploy/grafana/purchasesync.json: %v", err)
	}
	if d.UID == "" {
		t.Error("the dashboard has no uid: a re-import would create a copy instead of replacing it")
	}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("panel %q query %s is empty", p.Title, tg.RefID)
				}
				queries = append(queries, dashboardQuery{fmt.Sprintf("panel %q query %s", p.Title, tg.RefID), tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			queries = append(queries, dashboardQuery{fmt.Sprintf("annotation %q", a.Name), a.Expr})
		}
	}
	lv := regexp.MustCompile(`^label_values\(([a-zA-Z_:][a-zA-Z0-9_:]*),\s*[a-zA-Z_]+\)$`)
	for _, v := range d.Templating.List {
		var q string
		switch x := v.Query.(type) {
		case string:
			q = x
		case map[string]any:
			q, _ = x["query"].(string)
		}
		if v.Name == "datasource" {
			continue
		}
		m := lv.FindStringSubmatch(q)
		if m == nil {
			t.Errorf("variable %s: query %q is not label_values(metric, label)", v.Name, q)
			continue
		}
		variableMetrics = append(variableMetrics, m[1])
	}
	return queries, variableMetrics
}

// TestDashboardMetricsExist: every query of the Grafana dashboard selects
// metrics of the catalogue, and the dashboard covers what SRE asked for.
func TestDashboardMetricsExist(t *testing.T) {
	rows := readCatalogue(t)
	queries, vars := dashboardQueries(t)
	if len(queries) < 30 {
		t.Fatalf("found %d queries in the dashboard; the walk is probably broken", len(queries))
	}
	used := map[string]bool{}
	for _, q := range queries {
		names, err := promqlMetrics(q.expr)
		if err != nil {
			t.Errorf("%s: %v", q.where, err)
			continue
		}
		if len(names) == 0 {
			t.Errorf("%s selects no metric: %s", q.where, q.expr)
		}
		for _, n := range names {
			used[n] = true
			if !documented(rows, n) {
				t.Errorf("%s uses %s, which is not in deploy/metrics.md", q.where, n)
			}
		}
	}
	for _, n := range vars {
		if !documented(rows, n) {
			t.Errorf("a dashboard variable uses %s, which is not in deploy/metrics.md", n)
		}
	}
	// Issue 7's list of panels, by the metric each needs.
	for _, want := range []string{
		"purchasesync_ingest_requests_total",                  // ingest rate and errors by code
		"purchasesync_ingest_signature_failures_total",        // signature failures
		"purchasesync_ingest_produce_duration_seconds_bucket", // produce latency
		"purchasesync_join_decisions_total",                   // decisions by outcome, browser-miss rate
		"purchasesync_join_held_purchases",                    // held purchases
		"purchasesync_join_discrepancies_total",               // discrepancy rate by field
		"purchasesync_consumer_lag_records",                   // lag
		"purchasesync_sink_rows_total",                        // ClickHouse insert rate
		"purchasesync_sink_batch_duration_seconds_bucket",     // insert latency
		"purchasesync_sink_insert_errors_total",               // insert errors
		"purchasesync_sink_end_to_end_latency_seconds_bucket", // end-to-end latency
		"purchasesync_freshness_newest_row_timestamp_seconds", // freshness
	} {
		if !used[want] {
			t.Errorf("no dashboard query uses %s", want)
		}
	}
}

// grafanaVars replaces Grafana's variables so that promtool or Prometheus
// can parse a dashboard query.
var grafanaVars = strings.NewReplacer("$__rate_interval", "1m", "$__interval", "30s", "${__range}", "1h", "$__range", "1h",
	`=~"$job"`, `=~".*"`, `=~"${job}"`, `=~".*"`)

// TestDashboardQueriesParse: promtool parses every dashboard query (as a
// recording rule, after substituting Grafana's variables).
func TestDashboardQueriesParse(t *testing.T) {
	promtool := lookPathOrSkip(t, "promtool")
	queries, _ := dashboardQueries(t)
	type rule struct {
		Record string `json:"record"`
		Expr   string `json:"expr"`
	}
	var rules []rule
	for i, q := range queries {
		rules = append(rules, rule{fmt.Sprintf("dashboard:query_%d", i), grafanaVars.Replace(q.expr)})
	}
	b, _ := json.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	file := filepath.Join(t.TempDir(), "dashboard.rules.json") // JSON is YAML
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput()
	if err != nil {
		// promtool names the rule; map it back to the panel.
		msg := string(out)
		for i := len(queries) - 1; i >= 0; i-- {
			msg = strings.ReplaceAll(msg, fmt.Sprintf("dashboard:query_%d", i), queries[i].where)
		}
		t.Fatalf("promtool check rules: %v\n%s", err, msg)
	}
	if !strings.Contains(string(out), fmt.Sprintf("%d rules found", len(rules))) {
		t.Errorf("promtool did not check all %d queries:\n%s", len(rules), out)
	}
}

// TestAlertRulesUseCatalogue: every metric an alert rule selects is in the
// catalogue.
func TestAlertRulesUseCatalogue(t *testing.T) {
	rows := readCatalogue(t)
	alerts := readAlerts(t)
	for _, a := range alerts {
		names, err := promqlMetrics(a.Expr)
		if err != nil {
			t.Errorf("%s: %v", a.Alert, err)
		}
		sort.Strings(names)
		for _, n := range names {
			if !documented(rows, n) {
				t.Errorf("alert %s uses %s, which is not in deploy/metrics.md", a.Alert, n)
			}
		}
	}
}
