package join

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when a goroutine outlives them: every
// Run here must wait for what it started. A functional test runs join
// processors as child processes (this test binary re-executed with
// JOIN_CHILD=1, functional_test.go), so it can kill -9 them.
func TestMain(m *testing.M) {
	if os.Getenv("JOIN_CHILD") == "1" {
		os.Exit(childMain())
	}
	goleak.VerifyTestMain(m)
}
