package sites

import (
	"context"
	"log/slog"
	"purchasesync/deploy/testenv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/deploy/testenv/kafkatest"
	"purchasesync/schemas"
)

// TestRegistryRidesOutKafka: started with the broker away for longer than
// ReadyTimeout, the registry keeps trying (Run does not return), loads
// once the broker is there, then follows the topic through a restart,
// saying so through ReadyErr, one log line each way per outage.
func TestRegistryRidesOutKafka(t *testing.T) {
	const topic = "t.sites.v1"
	k := kafkatest.New(t, kfake.SeedTopics(1, topic))
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	w := Writer{Client: cl, Topic: topic}
	ctx := context.Background()
	if _, err := w.Put(ctx, schemas.Site{Site: "early", ShopDomain: "early.myshopify.com"}); err != nil {
		t.Fatal(err)
	}
	k.Stop()

	cfg := DefaultConfig()
	cfg.Topics = schemas.Topics{Prefix: "t."}
	cfg.ReadyTimeout, cfg.HealthInterval = 300*time.Millisecond, 100*time.Millisecond
	logs := &testenv.Log{}
	reg, err := New(cfg, Deps{KafkaOpts: []kgo.Opt{kgo.SeedBrokers(k.Addrs()...)}, Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- reg.Run(rctx) }()
	ended := false
	defer func() {
		cancel()
		if ended {
			return
		}
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	wait := func(d time.Duration, what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		for !cond() {
			select {
			case err := <-done:
				ended = true
				t.Fatalf("Run returned by itself: %v\n%s", err, logs)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s\n%s", what, logs)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	wait(5*time.Second, "the still-not-loaded error", func() bool { return logs.Count("still not loaded") == 1 })
	time.Sleep(300 * time.Millisecond) // past ReadyTimeout, well past
	if reg.Ready() || reg.ReadyErr() == nil {
		t.Fatal("ready without a broker")
	}
	k.Start()
	wait(10*time.Second, "loaded and ready", func() bool { return reg.Ready() && reg.ReadyErr() == nil })
	if _, ok := reg.Get("early"); !ok {
		t.Fatal("the site written before start is not there")
	}

	k.Stop()
	wait(5*time.Second, "ReadyErr during the outage", func() bool { return reg.ReadyErr() != nil })
	if err := reg.ReadyErr(); !strings.Contains(err.Error(), "Kafka") || !reg.Ready() {
		t.Errorf("during the outage: ReadyErr %v, Ready %v; want Kafka named and still loaded", err, reg.Ready())
	}
	time.Sleep(time.Second)
	k.Start()
	if _, err := w.Put(ctx, schemas.Site{Site: "late", ShopDomain: "late.myshopify.com"}); err != nil {
		t.Fatal(err)
	}
	wait(10*time.Second, "the put after the restart visible and ready", func() bool {
		_, ok := reg.Get("late")
		return ok && reg.ReadyErr() == nil
	})
	if n := logs.Count("still not loaded"); n != 1 {
		t.Errorf("%d 'still not loaded' lines, want 1:\n%s", n, logs)
	}
	if b, e := logs.Count("Kafka outage began"), logs.Count("Kafka outage over"); b != 2 || e != 2 {
		t.Errorf("%d start and %d end lines for two outages, want 2 and 2:\n%s", b, e, logs)
	}
}
