package ingest

import (
	"net/netip"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// inflightLimiter caps the records awaiting Kafka's acknowledgement. When
// Kafka slows down, requests queue here for at most maxWait and then get 503
// with Retry-After, instead of piling up goroutines and bodies without bound.
type inflightLimiter struct {
	slots      chan struct{}
	maxWait    time.Duration
	retryAfter time.Duration
	m          *metrics
}

func newInflightLimiter(capacity int, maxWait, retryAfter time.Duration, m *metrics) *inflightLimiter {
	m.inflightCapacity.Set(float64(capacity))
	return &inflightLimiter{slots: make(chan struct{}, capacity), maxWait: maxWait, retryAfter: retryAfter, m: m}
}

// acquire takes a slot, waiting at most maxWait; the caller must release it.
func (l *inflightLimiter) acquire() error {
	select {
	case l.slots <- struct{}{}:
		l.m.inflightCurrent.Inc()
		return nil
	default:
	}
	l.m.limitReached.Inc()
	t := time.NewTimer(l.maxWait)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		l.m.inflightCurrent.Inc()
		return nil
	case <-t.C:
		l.m.limitTimeouts.Inc()
		return &StatusError{Code: fasthttp.StatusServiceUnavailable, RetryAfter: l.retryAfter,
			Err: errTooBusy}
	}
}

func (l *inflightLimiter) release() {
	<-l.slots
	l.m.inflightCurrent.Dec()
}

// maxBuckets bounds the memory of a token-bucket table: a flood from many
// addresses cannot grow it further. New keys are refused while it is full
// of recently active ones.
const maxBuckets = 1 << 20

// tokenBuckets is one token bucket per key (client IP or site): rate tokens
// a second, at most burst saved up. A nil *tokenBuckets allows everything.
type tokenBuckets[K comparable] struct {
	rate, burst float64
	capacity    int // maxBuckets; smaller in tests
	mu          sync.Mutex
	m           map[K]*bucket
	// fullSweep is when a full table was last swept for room: at most
	// once a second, since a sweep visits every bucket under mu.
	fullSweep time.Time
	sweeps    int // full-table sweeps done for room (tests)
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newTokenBuckets[K comparable](rate float64, burst int) *tokenBuckets[K] {
	if rate <= 0 {
		return nil
	}
	return &tokenBuckets[K]{rate: rate, burst: float64(burst), capacity: maxBuckets, m: map[K]*bucket{}}
}

// allow takes a token for k; when there is none it says how long until one.
func (b *tokenBuckets[K]) allow(k K, now time.Time) (bool, time.Duration) {
	ok, wait, _ := b.take(k, now)
	return ok, wait
}

// take is allow that also reports how many tokens of the burst k has
// spent, this one included (0 for a nil table).
func (b *tokenBuckets[K]) take(k K, now time.Time) (bool, time.Duration, float64) {
	if b == nil {
		return true, 0, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	bk := b.m[k]
	if bk == nil {
		if len(b.m) >= b.capacity && now.Sub(b.fullSweep) >= time.Second {
			// Without the bound, every request of a new key would sweep
			// the whole table while holding the lock.
			b.fullSweep = now
			b.sweeps++
			b.sweepLocked(now)
		}
		if len(b.m) >= b.capacity {
			return false, time.Second, b.burst
		}
		bk = &bucket{tokens: b.burst, last: now}
		b.m[k] = bk
	}
	if el := now.Sub(bk.last); el > 0 {
		bk.tokens = min(b.burst, bk.tokens+el.Seconds()*b.rate)
		bk.last = now
	}
	if bk.tokens >= 1 {
		bk.tokens--
		return true, 0, b.burst - bk.tokens
	}
	return false, time.Duration((1 - bk.tokens) / b.rate * float64(time.Second)), b.burst
}

// sweep forgets buckets that have refilled: they behave exactly like new ones.
func (b *tokenBuckets[K]) sweep(now time.Time) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sweepLocked(now)
}

func (b *tokenBuckets[K]) sweepLocked(now time.Time) {
	for k, bk := range b.m {
		if bk.tokens+now.Sub(bk.last).Seconds()*b.rate >= b.burst {
			delete(b.m, k)
		}
	}
}

func (b *tokenBuckets[K]) len() int {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}

// rateKey is the address a client is limited by: an IPv6 client owns its
// whole /64, so it is charged per /64, or it could rotate addresses freely.
func rateKey(a netip.Addr) netip.Addr {
	if a.Is6() && !a.Is4In6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a.Unmap()
}

// netKey is the wider network an IPv6 client is also limited by: its /48,
// the usual allocation to one site or customer. A /56 holds 256 /64s, so
// per-/64 buckets alone let one residential line send 256 times the
// per-client rate.
func netKey(a netip.Addr) (netip.Addr, bool) {
	if a.Is6() && !a.Is4In6() {
		p, _ := a.Prefix(48)
		return p.Addr(), true
	}
	return netip.Addr{}, false
}

// netFactor is how many clients' rate and burst an IPv6 /48 gets.
const netFactor = 16

// lightSpent is how much of its burst a client may have spent and still
// count as light: when a site is over its rate only heavy clients are
// refused, so a few addresses flooding a site cannot lock its shoppers out.
// A shopper sends one event per purchase, two with a reload of the
// thank-you page.
const lightSpent = 2
