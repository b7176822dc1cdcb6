// Package sitestest is the one in-memory site registry of the tests, in
// place of a hand-written fake per package: the read side of
// processors/sites (Get, ByShop, All, Changed, Ready) and the write side of
// its Writer (Put, Delete), with the knobs tests need to imitate the real
// sites.v1 topic: writes that reach readers late, writes that fail, and a
// registry that has not loaded yet.
package sitestest

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"purchasesync/processors/internal/follow"
	"purchasesync/processors/sites"
	"purchasesync/schemas"
)

// Registry is an in-memory site registry. The zero value is not usable:
// make one with New.
type Registry struct {
	// Delay is how long a Put or Delete takes to reach readers, as the
	// topic's round trip does; zero shows it at once. Set it before use.
	Delay time.Duration
	// Any, when set, answers Get for every site not stored (a join test
	// that sees many sites of one shape). Set it before use.
	Any func(site string) schemas.Site
	// VisibleTimeout bounds the wait of PutVisible and DeleteVisible, as
	// sites.Config's does; zero: the real default. Set it before use.
	VisibleTimeout time.Duration

	mu       sync.Mutex
	sites    map[string]schemas.Site
	changed  follow.Broadcast
	puts     int
	failPuts int // Puts left to fail; negative: every Put
	failErr  error
	notReady bool
}

// New is a loaded registry holding sites, each normalised; an invalid site
// is a bug in the test and panics.
func New(sites ...schemas.Site) *Registry {
	r := &Registry{sites: map[string]schemas.Site{}}
	for _, s := range sites {
		r.Seed(s)
	}
	return r
}

// Seed stores s at once, without a change notification (test setup).
func (r *Registry) Seed(s schemas.Site) {
	s.Normalize()
	if err := s.Validate(); err != nil {
		panic("sitestest: bad test site " + s.Site + ": " + err.Error())
	}
	r.mu.Lock()
	r.sites[s.Site] = s
	r.mu.Unlock()
}

// Get returns a site by name.
func (r *Registry) Get(site string) (schemas.Site, bool) {
	r.mu.Lock()
	s, ok := r.sites[site]
	r.mu.Unlock()
	if !ok && r.Any != nil {
		return r.Any(site), true
	}
	return s, ok
}

// ByShop returns the site of a shop domain, spelled as normalised (as the
// real registry, which leaves normalising the domain to its callers).
func (r *Registry) ByShop(domain string) (schemas.Site, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.sites {
		if s.ShopDomain == domain {
			return s, true
		}
	}
	return schemas.Site{}, false
}

// All returns every site, by name.
func (r *Registry) All() []schemas.Site {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]schemas.Site, 0, len(r.sites))
	for _, s := range r.sites {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b schemas.Site) int { return strings.Compare(a.Site, b.Site) })
	return out
}

// Changed is closed at the next change readers can see.
func (r *Registry) Changed() <-chan struct{} { return r.changed.Wait() }

// Ready reports whether the registry has loaded (SetReady).
func (r *Registry) Ready() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.notReady
}

// SetReady makes the registry loaded or not.
func (r *Registry) SetReady(ready bool) {
	r.mu.Lock()
	r.notReady = !ready
	r.mu.Unlock()
}

// FailPuts makes the next n Puts fail with err (n < 0: every Put), as when
// Kafka refuses the write.
func (r *Registry) FailPuts(n int, err error) {
	r.mu.Lock()
	r.failPuts, r.failErr = n, err
	r.mu.Unlock()
}

// Puts counts the Puts that were accepted.
func (r *Registry) Puts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.puts
}

// Put normalises and validates s and stores it; readers see it after Delay.
func (r *Registry) Put(_ context.Context, s schemas.Site) (schemas.Site, error) {
	r.mu.Lock()
	if r.failPuts != 0 {
		if r.failPuts > 0 {
			r.failPuts--
		}
		err := r.failErr
		r.mu.Unlock()
		return schemas.Site{}, err
	}
	r.mu.Unlock()
	s.Normalize()
	if err := s.Validate(); err != nil {
		return schemas.Site{}, err
	}
	r.mu.Lock()
	r.puts++
	r.mu.Unlock()
	r.apply(func() { r.sites[s.Site] = s })
	return s, nil
}

// Delete removes a site; readers see it after Delay.
func (r *Registry) Delete(_ context.Context, site string) error {
	r.apply(func() { delete(r.sites, site) })
	return nil
}

// PutVisible is Put, then a wait until readers see the write, as
// sites.Writer's (so a test with a Delay longer than VisibleTimeout sees a
// write that is not visible in time).
func (r *Registry) PutVisible(ctx context.Context, s schemas.Site) (schemas.Site, bool, error) {
	stored, err := r.Put(ctx, s)
	if err != nil {
		return schemas.Site{}, false, err
	}
	return stored, sites.AwaitVisible(ctx, r, r.visibleTimeout(), sites.SiteIs(r, stored)), nil
}

// DeleteVisible is Delete, then a wait until readers no longer see site.
func (r *Registry) DeleteVisible(ctx context.Context, site string) (bool, error) {
	if err := r.Delete(ctx, site); err != nil {
		return false, err
	}
	return sites.AwaitVisible(ctx, r, r.visibleTimeout(), sites.SiteGone(r, site)), nil
}

func (r *Registry) visibleTimeout() time.Duration {
	if r.VisibleTimeout > 0 {
		return r.VisibleTimeout
	}
	return sites.DefaultConfig().VisibleTimeout
}

// apply runs a write under the lock after Delay and notifies readers.
func (r *Registry) apply(write func()) {
	do := func() {
		r.mu.Lock()
		write()
		r.mu.Unlock()
		r.changed.Notify()
	}
	if r.Delay == 0 {
		do()
		return
	}
	go func() {
		time.Sleep(r.Delay)
		do()
	}()
}
