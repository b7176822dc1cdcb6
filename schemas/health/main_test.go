package health

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when a goroutine outlives them: every
// Run here must wait for what it started.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
