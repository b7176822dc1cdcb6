package lagmon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Deps are what a Monitor needs from its process.
type Deps struct {
	// KafkaOpts build the monitor's own Kafka client (seeds, client id,
	// logger); it must not join a group.
	KafkaOpts  []kgo.Opt
	Registerer prometheus.Registerer
	Logger     *slog.Logger // nil: discard
}

// Monitor publishes the lag of consumer groups; see the package doc.
type Monitor struct {
	cfg  Config
	opts []kgo.Opt
	log  *slog.Logger
	m    *metrics

	// Owned by the Run goroutine.
	known   map[string]map[partKey]bool // group → series published last time
	failing map[string]time.Time        // group → since when its reads fail (logged once each way)
}

type partKey struct {
	topic     string
	partition int32
}

// New checks cfg and registers the metrics. It does not connect: Run does.
func New(cfg Config, deps Deps) (*Monitor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	reg := deps.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Monitor{
		cfg: cfg, opts: deps.KafkaOpts, log: log, m: newMetrics(reg, cfg.Groups),
		known: map[string]map[partKey]bool{}, failing: map[string]time.Time{},
	}, nil
}

// Run reads the lag every Interval until ctx ends; it returns nil then.
// Failed reads are counted and logged, never fatal: the brokers may be away
// for a while, which is when the last published lag matters most.
func (m *Monitor) Run(ctx context.Context) error {
	cl, err := kgo.NewClient(m.opts...)
	if err != nil {
		return fmt.Errorf("lagmon: cannot create Kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		m.Poll(ctx, adm)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Poll reads the lag of every group once and publishes it.
func (m *Monitor) Poll(ctx context.Context, adm *kadm.Client) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
	defer cancel()
	lags, lagErr := adm.Lag(ctx, m.cfg.Groups...)
	for _, g := range m.cfg.Groups {
		l, ok := lags[g]
		err := lagErr
		switch {
		case err != nil:
		case !ok:
			err = errors.New("no answer for the group")
		default:
			err = l.Error()
		}
		if err != nil {
			if errors.Is(ctx.Err(), context.Canceled) {
				return // stopping
			}
			m.m.errors.WithLabelValues(g).Inc()
			if _, ok := m.failing[g]; !ok {
				m.log.Warn("cannot read consumer lag; keeping the last values", "group", g, "err", err)
				m.failing[g] = time.Now()
			}
			continue
		}
		if since, ok := m.failing[g]; ok {
			m.log.Info("consumer lag readable again", "group", g, "lasted", time.Since(since).Round(time.Millisecond).String())
			delete(m.failing, g)
		}
		m.publish(g, l)
	}
}

// publish sets the gauges of one group and removes the series of partitions
// the group no longer has (a deleted topic, an offset reset).
func (m *Monitor) publish(group string, l kadm.DescribedGroupLag) {
	m.m.members.WithLabelValues(group).Set(float64(len(l.Members)))
	seen := map[partKey]bool{}
	for _, pl := range l.Lag.Sorted() {
		k := partKey{pl.Topic, pl.Partition}
		seen[k] = true
		if pl.Err != nil || pl.Lag < 0 {
			continue // keep the last value; the next read usually succeeds
		}
		p := strconv.Itoa(int(pl.Partition))
		m.m.lag.WithLabelValues(group, pl.Topic, p).Set(float64(pl.Lag))
		if pl.Commit.At >= 0 {
			m.m.committed.WithLabelValues(group, pl.Topic, p).Set(float64(pl.Commit.At))
		}
	}
	for k := range m.known[group] {
		if !seen[k] {
			p := strconv.Itoa(int(k.partition))
			m.m.lag.DeleteLabelValues(group, k.topic, p)
			m.m.committed.DeleteLabelValues(group, k.topic, p)
		}
	}
	m.known[group] = seen
}
