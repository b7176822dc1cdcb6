package refundroute

import (
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// health is the router's readiness through Kafka faults. A fault episode is
// logged once when it starts (with its first error) and once when it ends
// (with how long it lasted), never once per retry.
type health struct {
	log *slog.Logger
	m   prometheus.Gauge

	mu    sync.Mutex
	cur   error     // the fault of the current episode; nil when healthy
	since time.Time // when the episode started
	ok    bool      // healthy at least once
}

// set records the outcome of the latest attempt: nil ends an episode, an
// error starts one (or goes on with it, silently).
func (h *health) set(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		if h.cur != nil {
			h.log.Info("refund router: Kafka fault over; processing again", "lasted", time.Since(h.since).Round(time.Millisecond).String())
		}
		h.cur, h.ok = nil, true
		h.m.Set(1)
		return
	}
	if h.cur == nil {
		h.since = time.Now()
		h.log.Warn("refund router: Kafka fault; not ready, retrying by itself", "err", err)
	}
	h.cur = err
	h.m.Set(0)
}

func (h *health) err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cur
}

func (h *health) everOK() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ok
}
