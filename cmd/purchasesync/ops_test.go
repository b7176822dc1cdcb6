package main

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestReadyReport(t *testing.T) {
	ok := func() error { return nil }
	down := func() error { return errors.New("Kafka not reachable") }
	for _, tc := range []struct {
		name    string
		checks  []namedCheck
		verbose bool
		status  int
		body    []string // substrings, in order
	}{
		{"all ready", []namedCheck{{"ingest", ok, false}, {"join", ok, false}}, false, 200, []string{"ready\n"}},
		{"gating down names the stage", []namedCheck{{"ingest", ok, false}, {"join", down, false}}, false, 503,
			[]string{"not ready: join: Kafka not reachable"}},
		{"first failing gate wins", []namedCheck{{"ingest", down, false}, {"join", down, false}}, false, 503,
			[]string{"not ready: ingest:"}},
		// A ClickHouse outage must not take the ingest out of its load balancer.
		{"advisory down stays ready", []namedCheck{{"ingest", ok, false}, {"clickhouse sink", down, true}}, false, 200, []string{"ready\n"}},
		{"verbose lists every check", []namedCheck{{"ingest", ok, false}, {"clickhouse sink", down, true}}, true, 200,
			[]string{"[+]ingest ok\n", "[-]clickhouse sink not ready (advisory", "ready\n"}},
		{"verbose when not ready", []namedCheck{{"ingest", down, false}, {"join", ok, false}}, true, 503,
			[]string{"[-]ingest not ready: Kafka not reachable\n", "[+]join ok\n"}},
		{"no checks", nil, false, 200, []string{"ready\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := readyReport(tc.checks, tc.verbose)
			if status != tc.status {
				t.Errorf("status %d, want %d (body %q)", status, tc.status, body)
			}
			rest := body
			for _, want := range tc.body {
				i := strings.Index(rest, want)
				if i < 0 {
					t.Fatalf("body %q lacks %q (in order)", body, want)
				}
				rest = rest[i+len(want):]
			}
			if status == http.StatusServiceUnavailable && strings.Contains(body, "ready\n") && !tc.verbose && !strings.HasPrefix(body, "not ready") {
				t.Errorf("503 body %q says ready", body)
			}
		})
	}
}

// TestRunReadinessCoversEveryStage: every stage of `run` that has a
// readiness check reports it, gating or advisory as documented.
func TestRunReadinessCoversEveryStage(t *testing.T) {
	_, _, actors := buildTestRun(t)
	want := map[string]bool{"ingest": true, "join": true, "site registry": true, "compliance": true,
		"clickhouse sink": true, "registrar": true, "discrepancy notifier": true, "control plane": true}
	for _, a := range actors {
		if want[a.name] && a.ready == nil {
			t.Errorf("stage %q of run has no readiness check", a.name)
		}
		delete(want, a.name)
	}
	for name := range want {
		t.Errorf("run has no stage %q", name)
	}
}

// L3 of the security review: with an admin token, /debug/pprof/ asks for it;
// without one (an ingest alone on loopback) it stays open.
func TestPprofTakesTheAdminToken(t *testing.T) {
	get := func(o *opsServer, auth string) int {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/debug/pprof/", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		o.handler().ServeHTTP(rec, req)
		return rec.Code
	}
	o := &opsServer{reg: prometheus.NewRegistry(), pprof: true, pprofToken: "s3cret-token"}
	for auth, want := range map[string]int{
		"":                    http.StatusUnauthorized,
		"Bearer wrong":        http.StatusUnauthorized,
		"Bearer s3cret-toke":  http.StatusUnauthorized,
		"s3cret-token":        http.StatusUnauthorized,
		"Bearer s3cret-token": http.StatusOK,
	} {
		if got := get(o, auth); got != want {
			t.Errorf("Authorization %q: %d, want %d", auth, got, want)
		}
	}
	if got := get(&opsServer{reg: prometheus.NewRegistry(), pprof: true}, ""); got != http.StatusOK {
		t.Errorf("no admin token: %d, want 200", got)
	}
	if got := get(&opsServer{reg: prometheus.NewRegistry(), pprofToken: "s3cret-token"}, "Bearer s3cret-token"); got != http.StatusNotFound {
		t.Errorf("-ops.pprof off: %d, want 404", got)
	}
}
