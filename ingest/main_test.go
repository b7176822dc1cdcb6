package ingest

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when a goroutine outlives them: every
// Run here must wait for what it started.
//
// Ignored: fasthttp's housekeeping goroutines, which have no stop and end
// on their own only after a sleep of theirs: the date-header ticker
// (package-level, started once, never stops), a server's idle-worker
// cleaner (it looks at its stop channel every MaxIdleWorkerDuration, 10 s),
// a client's cleaners of idle connections (the tests' clients; they end up
// to 10 s after the last connection closed), and the cleaner of the
// package-level dialer's address cache (it ends once the cache is empty, a
// minute after the last dial). A server that was not shut down still
// shows, by its accept loop and workers.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*HostClient).connsCleaner"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*Client).mCleaner"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*TCPDialer).tcpAddrsClean"),
	)
}
