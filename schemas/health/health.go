// Package health is how a stage rides out faults of what it depends on
// (Kafka, ClickHouse): it turns the stage's failed attempts into outage
// episodes, each logged once when it starts (with its first error) and once
// when it ends (with how long it lasted), never once per retry; and it says
// whether the stage is ready, for /readyz and a ready gauge.
//
// A Dep is one dependency. It fails while any of its sources fails: a source
// is one kind of attempt (a probe, a commit, an insert), failed by Fail and
// cleared by OK, or cleared by itself after a quiet period (FailQuiet) when
// no attempt can prove it recovered.
//
// It lives under schemas, beside retry, because processors and sinks both
// need it and neither may import the other's packages; it was two
// identical copies under their internal folders before.
package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Probe is the source a Dep's probe fails and clears.
const Probe = "probe"

// FetchQuiet is how long a fetch error keeps Kafka failing after the last
// one: franz-go repeats a persistent fetch error on every metadata refresh,
// and a successful fetch of an idle partition is not visible.
const FetchQuiet = 10 * time.Second

// Health is a stage's readiness: not ready until Started, then ready while
// none of its dependencies fails.
type Health struct {
	stage   string
	log     *slog.Logger
	ready   prometheus.Gauge
	outages *prometheus.CounterVec

	mu       sync.Mutex
	deps     []*Dep
	started  bool
	starting string // why not started yet
}

// New registers <prefix>ready and <prefix>outages_total{dependency} on reg
// (nil: none) for stage, which names the stage in log lines.
func New(stage, prefix string, reg prometheus.Registerer, log *slog.Logger) *Health {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := promauto.With(reg)
	return &Health{
		stage: stage, log: log, starting: "starting",
		ready: f.NewGauge(prometheus.GaugeOpts{Name: prefix + "ready",
			Help: "1 while the " + stage + " works normally; 0 before it started and during an outage of one of its dependencies."}),
		outages: f.NewCounterVec(prometheus.CounterOpts{Name: prefix + "outages_total",
			Help: "Outage episodes of the " + stage + "'s dependencies (one per episode, however many retries it took)."}, []string{"dependency"}),
	}
}

// Dep adds a dependency named name ("Kafka"); its metric label is the name
// in lower case.
func (h *Health) Dep(name string) *Dep {
	d := &Dep{h: h, name: name, label: strings.ToLower(name)}
	h.outages.WithLabelValues(d.label)
	h.mu.Lock()
	h.deps = append(h.deps, d)
	h.mu.Unlock()
	return d
}

// Starting says why the stage is not started yet (shown by Err).
func (h *Health) Starting(why string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.started {
		h.starting = why
	}
}

// Started marks the stage as working; it stays started.
func (h *Health) Started() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.started = true
	h.refreshLocked()
}

// Err is nil when the stage is ready, else why not.
func (h *Health) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.errLocked()
}

func (h *Health) errLocked() error {
	for _, d := range h.deps {
		if err := d.errLocked(); err != nil {
			return err
		}
	}
	if !h.started {
		return fmt.Errorf("%s: %s", h.stage, h.starting)
	}
	return nil
}

func (h *Health) refreshLocked() {
	if h.errLocked() == nil {
		h.ready.Set(1)
	} else {
		h.ready.Set(0)
	}
}

// Dep is one dependency of a stage; see the package doc.
type Dep struct {
	h           *Health
	name, label string
	sources     []*source // failing ones, in the order they failed; h.mu
	since       time.Time // start of the current episode
	failures    int       // attempts failed in the current episode
}

type source struct {
	name  string
	err   error
	last  time.Time
	quiet time.Duration // > 0: cleared quiet after last
}

// Fail records a failed attempt of source. The first failure of an episode
// logs it; the others only count.
func (d *Dep) Fail(source string, err error) { d.fail(source, err, 0) }

// FailQuiet is Fail for a source that clears by itself once quiet has passed
// without another failure.
func (d *Dep) FailQuiet(source string, err error, quiet time.Duration) { d.fail(source, err, quiet) }

func (d *Dep) fail(name string, err error, quiet time.Duration) {
	if err == nil {
		err = errors.New("unknown error")
	}
	h := d.h
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	if len(d.sources) == 0 {
		d.since, d.failures = now, 0
		h.outages.WithLabelValues(d.label).Inc()
		h.log.Warn(h.stage+": "+d.name+" outage began; not ready, retrying by itself", "dependency", d.label, "source", name, "err", err)
	}
	d.failures++
	for _, s := range d.sources {
		if s.name == name {
			s.err, s.last, s.quiet = err, now, quiet
			h.refreshLocked()
			return
		}
	}
	d.sources = append(d.sources, &source{name: name, err: err, last: now, quiet: quiet})
	h.refreshLocked()
}

// OK records a successful attempt of source; when no source fails any more,
// the episode ends.
func (d *Dep) OK(source string) {
	h := d.h
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, s := range d.sources {
		if s.name == source {
			d.sources = append(d.sources[:i], d.sources[i+1:]...)
			d.endLocked()
			return
		}
	}
}

// expire clears the quiet sources whose quiet period has passed.
func (d *Dep) expire(now time.Time) {
	h := d.h
	h.mu.Lock()
	defer h.mu.Unlock()
	kept := d.sources[:0]
	for _, s := range d.sources {
		if s.quiet <= 0 || now.Sub(s.last) < s.quiet {
			kept = append(kept, s)
		}
	}
	if len(kept) == len(d.sources) {
		return
	}
	clear(d.sources[len(kept):])
	d.sources = kept
	d.endLocked()
}

func (d *Dep) endLocked() {
	h := d.h
	if len(d.sources) == 0 {
		h.log.Info(h.stage+": "+d.name+" outage over; ready again", "dependency", d.label,
			"lasted", time.Since(d.since).Round(time.Millisecond).String(), "failed_attempts", d.failures)
	}
	h.refreshLocked()
}

// Failing reports whether the dependency is in an outage episode.
func (d *Dep) Failing() bool {
	d.h.mu.Lock()
	defer d.h.mu.Unlock()
	return len(d.sources) > 0
}

// Err is nil when the dependency works, else why not.
func (d *Dep) Err() error {
	d.h.mu.Lock()
	defer d.h.mu.Unlock()
	return d.errLocked()
}

func (d *Dep) errLocked() error {
	if len(d.sources) == 0 {
		return nil
	}
	s := d.sources[0]
	for _, o := range d.sources {
		if o.name == Probe { // unreachable explains everything else
			s = o
		}
	}
	if s.name == Probe {
		return fmt.Errorf("%s not reachable (since %s): %w", d.name, d.since.UTC().Format(time.TimeOnly), s.err)
	}
	return fmt.Errorf("%s failing (since %s): %w", d.name, d.since.UTC().Format(time.TimeOnly), s.err)
}

// Probe calls probe every interval until ctx ends (each call bounded by
// timeout), failing or clearing the Probe source, and expires quiet
// sources. A stage runs it beside its loop, so that it notices an outage
// (and its end) while it is idle or blocked in a retry.
func (d *Dep) Probe(ctx context.Context, interval, timeout time.Duration, probe func(context.Context) error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, timeout)
		err := probe(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			d.Fail(Probe, err)
		} else {
			d.OK(Probe)
		}
		d.expire(time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Fetches records the errors franz-go put into one poll: a lost group
// session fails the source "group" (cleared by OK("group") when the
// partitions are assigned again); any other fetch error fails "fetch" for
// FetchQuiet. Errors of stopping (ctx, a closed client) are ignored.
func (d *Dep) Fetches(fs kgo.Fetches) {
	fs.EachError(func(topic string, p int32, err error) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kgo.ErrClientClosed) {
			return
		}
		var ge *kgo.ErrGroupSession
		if errors.As(err, &ge) {
			d.Fail("group", fmt.Errorf("consumer group session lost: %w", err))
			return
		}
		d.FailQuiet("fetch", fmt.Errorf("cannot fetch %s[%d]: %w", topic, p, err), FetchQuiet)
	})
}
