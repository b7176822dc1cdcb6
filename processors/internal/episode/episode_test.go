package episode

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// An episode is one line when it starts and one when it ends, whatever the
// retries in between; the gauge follows it.
func TestOneLinePerEpisode(t *testing.T) {
	var logs bytes.Buffer
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "ready"})
	tr := New("join", slog.New(slog.NewTextHandler(&logs, nil)), g)
	if tr.EverOK() || tr.Err() != nil {
		t.Fatal("a new tracker is ok, or was ok once")
	}
	for i := 0; i < 5; i++ {
		tr.Set(errors.New("broker down"))
	}
	if testutil.ToFloat64(g) != 0 || tr.Err() == nil {
		t.Fatal("not failing during the episode")
	}
	tr.Set(nil)
	tr.Set(nil)
	if testutil.ToFloat64(g) != 1 || tr.Err() != nil || !tr.EverOK() {
		t.Fatal("not ready after the episode")
	}
	if n := strings.Count(logs.String(), "\n"); n != 2 || !strings.Contains(logs.String(), "join: Kafka fault; not ready") || !strings.Contains(logs.String(), "join: Kafka fault over") {
		t.Fatalf("%d lines, want a start and an end:\n%s", n, logs.String())
	}
}
