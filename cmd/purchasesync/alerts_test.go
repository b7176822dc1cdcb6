package main

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// alertRule is what the tests need of one rule of deploy/prometheus/alerts.yml.
type alertRule struct {
	Alert       string
	Expr        string
	For         string
	Labels      map[string]string
	Annotations map[string]string
}

// readAlerts reads deploy/prometheus/alerts.yml. The repository has no YAML
// module, and the file keeps to a small subset (maps, `- alert:` items,
// plain, quoted and `|` scalars), which this reads; TestAlertRulesPromtool
// checks that promtool finds as many rules.
func readAlerts(t *testing.T) []alertRule {
	t.Helper()
	b, err := os.ReadFile("../../deploy/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	indent := func(s string) int { return len(s) - len(strings.TrimLeft(s, " ")) }
	unquote := func(s string) string {
		s = strings.TrimSpace(s)
		if len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"' || s[0] == '\'' && s[len(s)-1] == '\'') {
			return s[1 : len(s)-1]
		}
		return s
	}
	// value reads the scalar after "key:" on line i: inline, or a | block
	// of more-indented lines. It returns the value and the next line.
	value := func(i int, rest string) (string, int) {
		if strings.TrimSpace(rest) != "|" {
			return unquote(rest), i + 1
		}
		base := indent(lines[i])
		var block []string
		j := i + 1
		for ; j < len(lines) && (strings.TrimSpace(lines[j]) == "" || indent(lines[j]) > base); j++ {
			block = append(block, lines[j])
		}
		cut := -1
		for _, l := range block {
			if strings.TrimSpace(l) != "" && (cut < 0 || indent(l) < cut) {
				cut = indent(l)
			}
		}
		for k, l := range block {
			if len(l) >= cut {
				block[k] = l[cut:]
			}
		}
		return strings.TrimRight(strings.Join(block, "\n"), "\n") + "\n", j
	}
	var rules []alertRule
	var cur *alertRule
	section, ruleIndent := "", 0
	for i := 0; i < len(lines); {
		l := lines[i]
		trim := strings.TrimSpace(l)
		if trim == "" || strings.HasPrefix(trim, "#") {
			i++
			continue
		}
		if name, ok := strings.CutPrefix(trim, "- alert:"); ok {
			rules = append(rules, alertRule{Alert: strings.TrimSpace(name), Labels: map[string]string{}, Annotations: map[string]string{}})
			cur, section, ruleIndent = &rules[len(rules)-1], "", indent(l)+2
			i++
			continue
		}
		if cur == nil || indent(l) < ruleIndent || strings.HasPrefix(trim, "- ") {
			cur = nil
			i++
			continue
		}
		key, rest, _ := strings.Cut(trim, ":")
		if indent(l) == ruleIndent {
			section = ""
			switch key {
			case "labels", "annotations":
				section = key
				i++
			case "expr":
				cur.Expr, i = value(i, rest)
			case "for":
				cur.For, i = value(i, rest)
			default:
				t.Fatalf("alerts.yml:%d: unexpected key %q in rule %s", i+1, key, cur.Alert)
			}
			continue
		}
		var v string
		v, i = value(i, rest)
		switch section {
		case "labels":
			cur.Labels[key] = v
		case "annotations":
			cur.Annotations[key] = v
		}
	}
	if len(rules) < 10 {
		t.Fatalf("read %d alert rules from alerts.yml; the reader is probably broken", len(rules))
	}
	return rules
}

// TestAlertRulesPromtool: promtool accepts the rules, and the unit tests in
// alerts_test.yml pass.
func TestAlertRulesPromtool(t *testing.T) {
	promtool := lookPathOrSkip(t, "promtool")
	out, err := exec.Command(promtool, "check", "rules", "../../deploy/prometheus/alerts.yml").CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	n := len(readAlerts(t))
	if m := regexp.MustCompile(`(\d+) rules found`).FindStringSubmatch(string(out)); m == nil || m[1] != strconv.Itoa(n) {
		t.Errorf("promtool found %q rules, the test's reader %d: fix readAlerts or the file's layout\n%s", m, n, out)
	}
	// The local stack's Prometheus loads the same rules.
	if out, err := exec.Command(promtool, "check", "config", "../../deploy/local/prometheus/prometheus.yml").CombinedOutput(); err != nil {
		t.Errorf("promtool check config deploy/local/prometheus/prometheus.yml: %v\n%s", err, out)
	} else if !strings.Contains(string(out), "1 rule files found") {
		t.Errorf("deploy/local/prometheus/prometheus.yml does not load deploy/prometheus/alerts.yml:\n%s", out)
	}
	cmd := exec.Command(promtool, "test", "rules", "alerts_test.yml")
	cmd.Dir = "../../deploy/prometheus"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

// TestAlertRulesRunbooks: every alert says how urgent it is and what to do,
// and has a unit test in which it fires.
func TestAlertRulesRunbooks(t *testing.T) {
	tests, err := os.ReadFile("../../deploy/prometheus/alerts_test.yml")
	if err != nil {
		t.Fatal(err)
	}
	fires := map[string]bool{}
	tl := strings.Split(string(tests), "\n")
	for i, l := range tl {
		if name, ok := strings.CutPrefix(strings.TrimSpace(l), "alertname: "); ok && i+1 < len(tl) &&
			strings.TrimSpace(tl[i+1]) == "exp_alerts:" {
			fires[name] = true
		}
	}
	seen := map[string]bool{}
	for _, a := range readAlerts(t) {
		if seen[a.Alert] {
			t.Errorf("%s is defined twice", a.Alert)
		}
		seen[a.Alert] = true
		if !strings.HasPrefix(a.Alert, "Purchasesync") {
			t.Errorf("%s: alert names start with Purchasesync (the dashboard's annotation query relies on it)", a.Alert)
		}
		if s := a.Labels["severity"]; s != "page" && s != "warning" {
			t.Errorf("%s: severity %q, want page or warning", a.Alert, s)
		}
		for _, k := range []string{"summary", "description", "runbook"} {
			if strings.TrimSpace(a.Annotations[k]) == "" {
				t.Errorf("%s: no %s annotation", a.Alert, k)
			}
		}
		if strings.TrimSpace(a.Expr) == "" {
			t.Errorf("%s: no expr", a.Alert)
		}
		if !fires[a.Alert] {
			t.Errorf("%s: no case in alerts_test.yml where it fires", a.Alert)
		}
	}
}
