// Package retry holds the capped exponential backoff the sinks share, and the
// parsing of HTTP Retry-After. Sinks retry until their context ends: a sink
// that gave up would either lose rows or have to commit offsets it did not
// write.
package retry

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Backoff yields Initial, 2×Initial, 4×Initial … capped at Max, each with
// ±20% jitter so that several sink instances that lost ClickHouse together do
// not reconnect in lockstep. The zero value is not usable; set both fields.
type Backoff struct {
	Initial time.Duration
	Max     time.Duration
	n       int
}

// Next returns the delay before the next attempt.
func (b *Backoff) Next() time.Duration {
	d := b.Initial
	for i := 0; i < b.n && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	b.n++
	jitter := time.Duration(rand.Int64N(int64(d)/5+1)) - d/10
	return max(d+jitter, time.Millisecond)
}

// Attempts reports how many delays Next has handed out since the last Reset.
func (b *Backoff) Attempts() int { return b.n }

// Reset starts the sequence again after a success.
func (b *Backoff) Reset() { b.n = 0 }

// Sleep waits d or until ctx ends, whichever is first, and returns ctx's
// error in the second case.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// ParseRetryAfter reads an HTTP Retry-After value: delay-seconds or an HTTP
// date. It reports false for an empty or malformed value.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}
