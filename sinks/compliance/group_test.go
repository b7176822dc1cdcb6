package compliance

import (
	"testing"

	"purchasesync/schemas"
)

// TestGroupFollowsThePrefix: the default group is the one deployments
// already use, and every other topic prefix gets a group of its own (test
// pipelines side by side once shared one, and waited on each other's
// rebalances).
func TestGroupFollowsThePrefix(t *testing.T) {
	if g := DefaultConfig().withGroup().Group; g != "purchasesync-compliance" {
		t.Errorf("default group %q, want purchasesync-compliance", g)
	}
	c := DefaultConfig()
	c.Topics = schemas.Topics{Prefix: "t1."}
	if g := c.withGroup().Group; g != "t1-compliance" {
		t.Errorf("group under prefix t1.: %q, want t1-compliance", g)
	}
	c.Group = "chosen"
	if g := c.withGroup().Group; g != "chosen" {
		t.Errorf("an explicit group became %q", g)
	}
}
