package sites

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
)

// Writer writes site records to sites.v1 with a synchronous produce, so a
// caller that gets nil knows Kafka holds the record.
//
// PutVisible and DeleteVisible also wait until View shows the write: the
// one home of "write, then wait until the registry shows it", which the
// admin API (so that a GET right after a PUT sees it) and the control
// plane's switch and watchdog (so that their next read does) need. Those
// stages cannot import this package (no stage imports another); they
// declare the two methods in their SiteWriter interface and cmd passes
// Registry.Writer.
type Writer struct {
	Client *kgo.Client
	Topic  string // full name of sites.v1
	// View is the registry PutVisible and DeleteVisible wait on; nil: they
	// do not wait.
	View View
	// VisibleTimeout bounds that wait.
	VisibleTimeout time.Duration
	Logger         *slog.Logger // nil: discard
}

// View is what a write waits on: a registry's reads and its change
// broadcast (Registry; sitestest.Registry in tests).
type View interface {
	Get(site string) (schemas.Site, bool)
	// Changed returns a channel closed at the next applied change.
	Changed() <-chan struct{}
}

// Writer is a Writer on this registry's topic through client (a producer
// with acks=all), whose PutVisible and DeleteVisible wait on r.
func (r *Registry) Writer(client *kgo.Client) Writer {
	return Writer{Client: client, Topic: r.cfg.topic(), View: r, VisibleTimeout: r.cfg.VisibleTimeout, Logger: r.log}
}

// Put stores a site record (normalized and validated first).
func (w Writer) Put(ctx context.Context, s schemas.Site) (schemas.Site, error) {
	s.Normalize()
	if err := s.Validate(); err != nil {
		return schemas.Site{}, err
	}
	if s.UpdatedAt.IsZero() {
		s.UpdatedAt = time.Now().UTC()
	}
	b, err := schemas.MarshalSite(s)
	if err != nil {
		return schemas.Site{}, fmt.Errorf("cannot encode site: %w", err)
	}
	if err := w.Client.ProduceSync(ctx, &kgo.Record{Topic: w.Topic, Key: []byte(s.Site), Value: b}).FirstErr(); err != nil {
		return schemas.Site{}, fmt.Errorf("cannot write site %s to %s: %w", s.Site, w.Topic, err)
	}
	return s, nil
}

// Delete writes a tombstone for site.
func (w Writer) Delete(ctx context.Context, site string) error {
	if err := w.Client.ProduceSync(ctx, &kgo.Record{Topic: w.Topic, Key: []byte(site)}).FirstErr(); err != nil {
		return fmt.Errorf("cannot delete site %s from %s: %w", site, w.Topic, err)
	}
	return nil
}

// PutVisible is Put, then a wait until View shows the stored record (by its
// UpdatedAt: give s a fresh stamp, or leave it zero for now). visible is
// false when VisibleTimeout passed first (logged) or ctx ended.
func (w Writer) PutVisible(ctx context.Context, s schemas.Site) (stored schemas.Site, visible bool, err error) {
	stored, err = w.Put(ctx, s)
	if err != nil {
		return schemas.Site{}, false, err
	}
	return stored, w.await(ctx, "put", stored.Site, SiteIs(w.View, stored)), nil
}

// DeleteVisible is Delete, then a wait until View no longer holds site.
func (w Writer) DeleteVisible(ctx context.Context, site string) (visible bool, err error) {
	if err := w.Delete(ctx, site); err != nil {
		return false, err
	}
	return w.await(ctx, "delete", site, SiteGone(w.View, site)), nil
}

func (w Writer) await(ctx context.Context, op, site string, cond func() bool) bool {
	if w.View == nil {
		return true
	}
	if AwaitVisible(ctx, w.View, w.VisibleTimeout, cond) {
		return true
	}
	if ctx.Err() == nil && w.Logger != nil {
		w.Logger.Warn("site write not yet visible in the site registry", "op", op, "site", site, "timeout", w.VisibleTimeout.String())
	}
	return false
}

// SiteIs is the condition of PutVisible: view holds stored, as stamped.
func SiteIs(view View, stored schemas.Site) func() bool {
	return func() bool {
		got, ok := view.Get(stored.Site)
		return ok && got.UpdatedAt.Equal(stored.UpdatedAt)
	}
}

// SiteGone is the condition of DeleteVisible: view no longer holds site.
func SiteGone(view View, site string) func() bool {
	return func() bool {
		_, ok := view.Get(site)
		return !ok
	}
}

// AwaitVisible waits until cond holds for view, at most timeout; false
// when the timeout passed or ctx ended first.
func AwaitVisible(ctx context.Context, view View, timeout time.Duration, cond func() bool) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		ch := view.Changed() // taken before the check, so no change is missed
		if cond() {
			return true
		}
		select {
		case <-ch:
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}
