package freshness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
)

// Querier is the part of a ClickHouse connection (driver.Conn) the monitor
// uses.
type Querier interface {
	QueryRow(ctx context.Context, query string, args ...any) driver.Row
}

// Deps are what a Monitor needs from its process.
type Deps struct {
	// Conn is a connection to the sink's database
	// (sinks/clickhouse.Open(cfg, cfg.Database)); the caller closes it.
	Conn       Querier
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Monitor publishes the newest row's time of each table; see the package doc.
type Monitor struct {
	cfg     Config
	conn    Querier
	log     *slog.Logger
	m       *metrics
	failing map[string]time.Time // table → since when its reads fail (logged once each way); Run's goroutine only
}

// New checks cfg and registers the metrics. It does not query: Run does.
func New(cfg Config, deps Deps) (*Monitor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Conn == nil {
		return nil, errors.New("freshness: Conn is required")
	}
	reg := deps.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Monitor{cfg: cfg, conn: deps.Conn, log: log,
		m: newMetrics(reg, cfg.Tables), failing: map[string]time.Time{}}, nil
}

// Run reads every table each Interval until ctx ends; it returns nil then.
// Failed reads are counted and logged once until they succeed again.
func (m *Monitor) Run(ctx context.Context) error {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		m.Poll(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Poll reads every table once and publishes what it found.
func (m *Monitor) Poll(ctx context.Context) {
	for _, t := range m.cfg.Tables {
		start := time.Now()
		newest, err := m.newest(ctx, t)
		if ctx.Err() != nil {
			return // stopping
		}
		if err != nil {
			m.m.errors.WithLabelValues(t.Name).Inc()
			if _, ok := m.failing[t.Name]; !ok {
				m.log.Warn("cannot read the newest row; its age keeps growing on the dashboard", "table", t.Name, "err", err)
				m.failing[t.Name] = time.Now()
			}
			continue
		}
		if since, ok := m.failing[t.Name]; ok {
			m.log.Info("newest row readable again", "table", t.Name, "lasted", time.Since(since).Round(time.Millisecond).String())
			delete(m.failing, t.Name)
		}
		m.m.duration.WithLabelValues(t.Name).Observe(time.Since(start).Seconds())
		if newest > 0 { // max() of an empty table is 1970-01-01
			m.m.newest.WithLabelValues(t.Name).Set(float64(newest))
		}
	}
}

// newest is the Unix time of t's newest row, 0 when it has none.
// toUInt32 keeps the query portable (ClickHouse 18.16 and current) and the
// result free of time zones.
func (m *Monitor) newest(ctx context.Context, t Table) (uint32, error) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
	defer cancel()
	var v uint32
	q := fmt.Sprintf("SELECT toUInt32(max(%s)) FROM %s", t.Column, t.Name)
	if err := m.conn.QueryRow(ctx, q).Scan(&v); err != nil {
		return 0, fmt.Errorf("cannot query %s: %w", t.Name, err)
	}
	return v, nil
}
