package follow

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when a goroutine outlives them: Run
// must wait for its probe and close its client.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
