package topicadmin

import (
	"strings"
	"testing"
)

func TestForBrokersPicksReplicationFromTheCluster(t *testing.T) {
	for _, c := range []struct {
		rf, isr     int
		brokers     int
		wantRF      int16
		wantISR     int
		wantErrPart string
	}{
		{0, 0, 1, 1, 1, ""},
		{0, 0, 2, 2, 1, ""},
		{0, 0, 3, 3, 2, ""},
		{0, 0, 5, 3, 2, ""},
		{1, 0, 3, 1, 1, ""}, // an explicit flag wins
		{3, 3, 3, 3, 3, ""}, // both explicit
		{0, 1, 3, 3, 1, ""}, // explicit min ISR, picked RF
		{3, 0, 1, 0, 0, "more than the 1 broker(s)"},
		{2, 3, 3, 0, 0, "min.insync.replicas"},
	} {
		cfg := DefaultConfig()
		cfg.ReplicationFactor, cfg.MinInsyncReplicas = int16(c.rf), c.isr
		got, err := cfg.ForBrokers(c.brokers)
		if c.wantErrPart != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErrPart) {
				t.Errorf("rf %d isr %d on %d brokers: err %v, want one with %q", c.rf, c.isr, c.brokers, err, c.wantErrPart)
			}
			continue
		}
		if err != nil || got.ReplicationFactor != c.wantRF || got.MinInsyncReplicas != c.wantISR {
			t.Errorf("rf %d isr %d on %d brokers: got rf %d isr %d (err %v), want rf %d isr %d",
				c.rf, c.isr, c.brokers, got.ReplicationFactor, got.MinInsyncReplicas, err, c.wantRF, c.wantISR)
		}
	}
}
