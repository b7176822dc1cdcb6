// Package episode is how a transactional processor (the join, the refund
// router) reports Kafka faults: a fault episode is logged once when it
// starts (with its first error) and once when it ends (with how long it
// lasted), never once per retry, and a ready gauge follows it.
package episode

import (
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Tracker is one processor's fault episodes. The zero value is not usable:
// see New.
type Tracker struct {
	stage string
	log   *slog.Logger
	ready prometheus.Gauge

	mu    sync.Mutex
	cur   error     // the fault of the current episode; nil when healthy
	since time.Time // when the episode started
	ok    bool      // healthy at least once
}

// New tracks stage ("join", "refund router"), which names it in log lines.
func New(stage string, log *slog.Logger, ready prometheus.Gauge) *Tracker {
	return &Tracker{stage: stage, log: log, ready: ready}
}

// Set records the outcome of the latest attempt: nil ends an episode, an
// error starts one (or goes on with it, silently).
func (t *Tracker) Set(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err == nil {
		if t.cur != nil {
			t.log.Info(t.stage+": Kafka fault over; processing again", "lasted", time.Since(t.since).Round(time.Millisecond).String())
		}
		t.cur, t.ok = nil, true
		t.ready.Set(1)
		return
	}
	if t.cur == nil {
		t.since = time.Now()
		t.log.Warn(t.stage+": Kafka fault; not ready, retrying by itself", "err", err)
	}
	t.cur = err
	t.ready.Set(0)
}

// Err is the current episode's fault, nil when healthy.
func (t *Tracker) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cur
}

// EverOK reports whether an attempt ever succeeded.
func (t *Tracker) EverOK() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ok
}
