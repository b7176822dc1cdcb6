package lagmon

import (
	"context"
	"log/slog"
	"net"
	"purchasesync/deploy/testenv"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestMonitorRidesOutBrokerRestart: with the only broker gone, Run goes on,
// counts the failed reads and keeps the last values, logs once; when the
// broker is back (same address and data) the lag is read again and the
// episode's end is logged once, with how long it lasted.
func TestMonitorRidesOutBrokerRestart(t *testing.T) {
	dir := t.TempDir()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(dir), kfake.SeedTopics(1, "in"))
	if err != nil {
		t.Fatal(err)
	}
	addr := c.ListenAddrs()[0]
	_, port, _ := net.SplitHostPort(addr)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "in", Value: []byte("x")}, &kgo.Record{Topic: "in", Value: []byte("y")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if _, err := kadm.NewClient(cl).CommitOffsets(ctx, "g", kadm.Offsets{"in": {0: {Topic: "in", Partition: 0, At: 1}}}); err != nil {
		t.Fatal(err)
	}

	cfg := withGroups("g")
	cfg.Interval, cfg.Timeout = 100*time.Millisecond, 500*time.Millisecond
	logs := &testenv.Log{}
	m, err := New(cfg, Deps{KafkaOpts: []kgo.Opt{kgo.SeedBrokers(addr)}, Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(rctx) }()
	ended := false
	defer func() {
		cancel()
		if !ended {
			<-done
		}
	}()
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			select {
			case err := <-done:
				ended = true
				t.Fatalf("Run returned by itself: %v", err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s\n%s", what, logs)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	lag := func() float64 { return value(m.m.lag.WithLabelValues("g", "in", "0")) }
	wait("the lag", func() bool { return lag() == 1 })

	c.Close()
	wait("failed reads", func() bool { return value(m.m.errors.WithLabelValues("g")) >= 3 })
	if lag() != 1 {
		t.Errorf("lag %v during the outage, want the last value 1", lag())
	}
	p, _ := strconv.Atoi(port)
	var back *kfake.Cluster
	for range 50 {
		if back, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(dir), kfake.Ports(p)); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	if _, err := kadm.NewClient(cl).CommitOffsets(ctx, "g", kadm.Offsets{"in": {0: {Topic: "in", Partition: 0, At: 2}}}); err != nil {
		t.Fatal(err)
	}
	wait("the lag read again", func() bool { return lag() == 0 })
	if w, i := logs.Count("cannot read consumer lag"), logs.Count("consumer lag readable again"); w != 1 || i != 1 || logs.Count("lasted=") != 1 {
		t.Errorf("%d failure and %d recovery lines (with how long it lasted), want 1 and 1:\n%s", w, i, logs)
	}
}
