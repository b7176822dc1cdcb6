package retry

import (
	"context"
	"net/http"
	"testing"
	"time"
)

func TestBackoffGrowsAndCaps(t *testing.T) {
	b := Backoff{Initial: 100 * time.Millisecond, Max: time.Second}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		w *= time.Millisecond
		got := b.Next()
		if got < w*9/10 || got > w*11/10 {
			t.Fatalf("attempt %d: got %v, want %v ±10%%", i, got, w)
		}
	}
	if b.Attempts() != len(want) {
		t.Fatalf("Attempts = %d, want %d", b.Attempts(), len(want))
	}
	b.Reset()
	if got := b.Next(); got > 110*time.Millisecond {
		t.Fatalf("after Reset: got %v, want about 100ms", got)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f := func(v string, want time.Duration, wantOK bool) {
		t.Helper()
		got, ok := ParseRetryAfter(v, now)
		if got != want || ok != wantOK {
			t.Fatalf("ParseRetryAfter(%q) = %v, %v; want %v, %v", v, got, ok, want, wantOK)
		}
	}
	f("", 0, false)
	f("3", 3*time.Second, true)
	f(" 0 ", 0, true)
	f("-1", 0, false)
	f("soon", 0, false)
	f(now.Add(90*time.Second).Format(http.TimeFormat), 90*time.Second, true)
	f(now.Add(-time.Hour).Format(http.TimeFormat), 0, true)
}

func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if err := Sleep(ctx, time.Hour); err == nil {
		t.Fatal("Sleep on a cancelled context returned nil")
	}
	if time.Since(start) > time.Second {
		t.Fatal("Sleep did not return at once on a cancelled context")
	}
}

func TestDelayIsBackoffsSequence(t *testing.T) {
	f := func(attempt int, want time.Duration) {
		t.Helper()
		got := Delay(attempt, 100*time.Millisecond, time.Second)
		if got < want*9/10 || got > want*11/10 {
			t.Fatalf("Delay(%d) = %v, want %v ±10%%", attempt, got, want)
		}
	}
	f(1, 100*time.Millisecond)
	f(2, 200*time.Millisecond)
	f(4, 800*time.Millisecond)
	f(5, time.Second)
	f(1000, time.Second) // no overflow far past the cap
}

// TestAfterRun: a failed run shorter than Max backs off further; a longer
// one starts a new episode at Initial.
func TestAfterRun(t *testing.T) {
	b := Backoff{Initial: 100 * time.Millisecond, Max: time.Second}
	within := func(d, want time.Duration) bool { return d >= want*9/10 && d <= want*11/10 }
	for i, want := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		if d := b.AfterRun(10 * time.Millisecond); !within(d, want*time.Millisecond) {
			t.Fatalf("short run %d: %s, want about %dms", i+1, d, want)
		}
	}
	if d := b.AfterRun(2 * time.Second); !within(d, 100*time.Millisecond) {
		t.Fatalf("after a long run: %s, want about 100ms", d)
	}
}
