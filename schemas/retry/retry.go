// Package retry is the project's one capped exponential backoff, with the
// context-bound sleep and the HTTP Retry-After parsing that go with it. The
// sinks retry until their context ends (a sink that gave up would either
// lose rows or have to commit offsets it did not write); the control plane
// (the Admin API client, reconciliation, uninstalls) and the compliance
// consumer use the same policy.
//
// It lives beside the contract, like deadletter and topicadmin, because both
// processors/ and sinks/ need it and the top level has no internal/: a
// package under sinks/internal is out of the processors' reach.
package retry

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Delay is the wait before retry attempt (1, 2, …): initial, 2×initial,
// 4×initial … capped at ceiling, each with ±10% jitter so that several
// instances that lost a dependency together do not come back in lockstep.
// For callers that count their attempts themselves; Backoff counts them.
func Delay(attempt int, initial, ceiling time.Duration) time.Duration {
	d := initial
	for i := 1; i < attempt && d < ceiling; i++ {
		d *= 2
	}
	d = min(d, ceiling)
	jitter := time.Duration(rand.Int64N(int64(d)/5+1)) - d/10
	return max(d+jitter, time.Millisecond)
}

// Backoff yields Delay(1, Initial, Max), Delay(2, …) … until Reset. The zero
// value is not usable; set both fields.
type Backoff struct {
	Initial time.Duration
	Max     time.Duration
	n       int
}

// Next returns the delay before the next attempt.
func (b *Backoff) Next() time.Duration {
	b.n++
	return Delay(b.n, b.Initial, b.Max)
}

// Attempts reports how many delays Next has handed out since the last Reset.
func (b *Backoff) Attempts() int { return b.n }

// Reset starts the sequence again after a success.
func (b *Backoff) Reset() { b.n = 0 }

// AfterRun is the delay before restarting something that ran for ran and
// then failed (a processor's Kafka session): a run longer than Max counts
// as a success, so a new episode starts again from Initial.
func (b *Backoff) AfterRun(ran time.Duration) time.Duration {
	if ran > b.Max {
		b.Reset()
	}
	return b.Next()
}

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
