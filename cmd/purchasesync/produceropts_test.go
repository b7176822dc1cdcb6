package main

import (
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestProducersUseAcksAllAndIdempotence: the producer options cmd/
// really builds (every role that produces, and the base options the join's
// transactional producer starts from) keep acks=all and idempotent writes:
// "200 only once Kafka holds it" depends on them (DESIGN §2). The ingest's
// tests build their own options, so a mutation here survived the suite.
func TestProducersUseAcksAllAndIdempotence(t *testing.T) {
	fs := newFlagSet("test", func(string) string { return "" })
	kf := addKafkaFlags(fs)
	if err := fs.parse([]string{"-kafka.brokers", "127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	if err := kf.validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	check := func(role string, opts []kgo.Opt, producer bool) {
		t.Helper()
		cl, err := kgo.NewClient(opts...) // no connection until used
		if err != nil {
			t.Fatalf("%s: %v", role, err)
		}
		defer cl.Close()
		if disabled, _ := cl.OptValue(kgo.DisableIdempotentWrite).(bool); disabled {
			t.Errorf("%s: idempotent writes disabled", role)
		}
		if producer {
			if acks, _ := cl.OptValue(kgo.RequiredAcks).(kgo.Acks); acks != kgo.AllISRAcks() {
				t.Errorf("%s: acks %v, want all", role, acks)
			}
		}
	}
	for _, role := range []string{"ingest", "control", "sink", "registrar"} {
		opts, err := kf.producerOpts(log, nil, role, 2*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", role, err)
		}
		check(role, opts, true)
	}
	check("join (base options of its transactional producer)", kf.baseOpts(log, nil, "join"), true)
}
