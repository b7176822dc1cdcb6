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
	mu          sync.Mutex
	m           map[K]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newTokenBuckets[K comparable](rate float64, burst int) *tokenBuckets[K] {
	if rate <= 0 {
		return nil
	}
	return &tokenBuckets[K]{rate: rate, burst: float64(burst), m: map[K]*bucket{}}
}

// allow takes a token for k; when there is none it says how long until one.
func (b *tokenBuckets[K]) allow(k K, now time.Time) (bool, time.Duration) {
	if b == nil {
		return true, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	bk := b.m[k]
	if bk == nil {
		if len(b.m) >= maxBuckets {
			b.sweepLocked(now)
			if len(b.m) >= maxBuckets {
				return false, time.Second
			}
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
		return true, 0
	}
	return false, time.Duration((1 - bk.tokens) / b.rate * float64(time.Second))
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
