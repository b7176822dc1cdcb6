package sinktest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Every check runs with the commit watcher (fixture.checkCommit) on, and
// ends with fixture.check: no commit passed an unwritten record, nothing
// was lost, nothing written twice unless the destination is idempotent.

func ready(r *running) func() bool { return func() bool { return r.c.Ready() == nil } }

func notReadyNaming(r *running, dep string) func() bool {
	return func() bool { err := r.c.Ready(); return err != nil && strings.Contains(err.Error(), dep) }
}

// oneEpisode: an outage of dep is logged once when it starts and once when
// it ends, not once per retry.
func oneEpisode(t *testing.T, x *fixture, dep string) {
	t.Helper()
	if b, e := x.logs.Count(dep+" outage began"), x.logs.Count(dep+" outage over"); b != 1 || e != 1 {
		t.Errorf("%d start and %d end lines for one %s outage, want 1 and 1", b, e, dep)
	}
}

// destinationOutage: while every write fails, nothing is committed, Run
// holds (retrying) instead of ending, and (when readiness follows the
// destination) the consumer says it is not ready; once the destination is
// back, every item arrives and is committed.
func destinationOutage(t *testing.T, x *fixture) {
	a := x.start(t, false)
	x.wait(t, 10*time.Second, "ready", ready(a), a)
	x.dest.SetDown(true)
	x.produce(t, 20, -1)
	if x.f.Destination != "" {
		x.wait(t, 10*time.Second, "not ready naming "+x.f.Destination, notReadyNaming(a, x.f.Destination), a)
	}
	time.Sleep(time.Second) // several retries
	a.alive(t)
	if c := x.committed(); c != 0 {
		t.Errorf("%d records committed while the destination refused every write", c)
	}
	x.dest.SetDown(false)
	x.wait(t, 15*time.Second, "every item written and committed, and ready", func() bool { return x.done() && a.c.Ready() == nil }, a)
	a.stop(t)
	x.check(t)
	if x.f.Destination != "" {
		oneEpisode(t, x, x.f.Destination)
	}
}

// cancel: Run returns nil soon after its context ends; a consumer that
// buffers has written and committed what it held by then; a new member
// carries on from the committed offsets without losing anything.
func cancel(t *testing.T, x *fixture) {
	x.produce(t, 30, -1)
	a := x.start(t, true)
	x.stable(t, 1)
	time.Sleep(time.Second) // it reads all 30 meanwhile
	if x.f.FlushesOnCancel && !x.nothingWritten() {
		t.Fatal("the consumer wrote although told to hold: this check cannot see a flush on cancel")
	}
	a.stop(t)
	if x.f.FlushesOnCancel && !x.done() {
		t.Errorf("after Run returned: %d of %d records committed, all written: %v; want everything it held flushed and committed",
			x.committed(), x.records(), x.allWritten())
	}
	b := x.start(t, false)
	x.wait(t, 15*time.Second, "every item written and committed", x.done, b)
	b.stop(t)
	x.check(t)
}

// poison: a poison record is set aside (a dead letter with the standard
// headers, or skipped) and the records after it are written and committed.
// With dead letters, no commit passes it while Kafka refuses its dead
// letter; the consumer holds, not ready, and goes on once Kafka takes it.
func poison(t *testing.T, x *fixture) {
	a := x.start(t, false)
	x.wait(t, 10*time.Second, "ready", ready(a), a)
	x.produce(t, 5, 0)
	x.producePoison(t, 0, true)
	x.produce(t, 5, 0)
	x.wait(t, 10*time.Second, "the items around the poison record written and committed", x.done, a)
	if !x.f.DeadLetters {
		a.stop(t)
		x.check(t)
		return
	}
	x.checkDeadLetters(t)

	allow := x.k.RefuseProduce(x.h.dlq, kerr.NotEnoughReplicas.Code)
	x.produce(t, 5, 0)
	held := x.producePoison(t, 0, false)
	x.produce(t, 5, 0)
	x.wait(t, 10*time.Second, "not ready naming Kafka while the dead letter is refused", notReadyNaming(a, "Kafka"), a)
	time.Sleep(1500 * time.Millisecond) // past a delivery timeout: retries must not time out at once
	a.alive(t)
	x.pass(held) // from now on the dead letter can be written
	allow()
	x.wait(t, 10*time.Second, "everything committed and ready", func() bool { return x.done() && a.c.Ready() == nil }, a)
	a.stop(t)
	x.check(t)
	x.checkDeadLetters(t)
}

// rebalance: members join, lose their session and leave while items are
// in flight; nothing is lost. A join revokes partitions only between
// writes, so it writes nothing twice; the items in flight when a member
// loses its session or stops may be written again (their commits may not
// have made it) unless the destination is idempotent.
func rebalance(t *testing.T, x *fixture) {
	a := x.start(t, false)
	x.wait(t, 10*time.Second, "ready", ready(a), a)
	x.produce(t, 200, -1)
	b := x.start(t, false) // joins while the first works
	x.stable(t, 2)
	x.wait(t, 10*time.Second, "the items around the join written and committed", x.done, a, b)
	x.produce(t, 200, -1, repeatable)
	a.stop(t) // it leaves with items in flight
	x.stable(t, 1)
	x.wait(t, 10*time.Second, "the items around the leave written and committed", x.done, b)

	// A new member joins, and its heartbeat is refused: its partitions are
	// lost, not revoked, and it joins again.
	c := x.start(t, false)
	g := x.stable(t, 2)
	var member string
	for _, m := range g.Members {
		if m.ClientID == c.client {
			member = m.MemberID
		}
	}
	lost := x.k.Fake().Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Heartbeat}, Group: x.group, Err: kerr.UnknownMemberID,
		When: func(r kmsg.Request) bool { return r.(*kmsg.HeartbeatRequest).MemberID == member }})
	x.produce(t, 20, -1, repeatable)
	ctx, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	if err := lost.Wait(ctx, 1); err != nil {
		t.Fatalf("the new member's heartbeat was never refused: %v", err)
	}
	x.stable(t, 2)
	x.wait(t, 10*time.Second, "the items around the lost session written and committed", x.done, b, c)

	// It leaves with items in flight: the other takes every partition.
	x.produce(t, 200, -1, repeatable)
	c.stop(t)
	x.stable(t, 1)
	x.wait(t, 10*time.Second, "the items around the second leave written and committed", x.done, b)
	b.stop(t)
	x.check(t)
}

// brokerRestart: the only broker goes away and comes back. The consumer
// stays up, is not ready meanwhile and ready after, logs the episode once
// each way (and warns of nothing else), and loses nothing.
func brokerRestart(t *testing.T, x *fixture) {
	x.produce(t, 20, -1)
	a := x.start(t, false)
	x.wait(t, 10*time.Second, "written, committed and ready", func() bool { return x.done() && a.c.Ready() == nil }, a)
	x.k.Stop()
	x.wait(t, 5*time.Second, "not ready naming Kafka with the broker gone", notReadyNaming(a, "Kafka"), a)
	time.Sleep(2 * time.Second) // long enough for the group session and fetches to fail
	a.alive(t)
	x.k.Start()
	x.produce(t, 20, -1)
	x.wait(t, 15*time.Second, "written, committed and ready again", func() bool { return x.done() && a.c.Ready() == nil }, a)
	a.stop(t)
	x.check(t)
	oneEpisode(t, x, "Kafka")
	if n := x.logs.Count("level=WARN"); n > 1 {
		t.Errorf("%d warnings for one outage, want only the episode's", n)
	}
}

// startsWithoutKafka: a consumer started with no broker waits, not ready,
// and consumes once the broker is there.
func startsWithoutKafka(t *testing.T, x *fixture) {
	x.produce(t, 20, -1)
	x.k.Stop()
	a := x.start(t, false)
	time.Sleep(time.Second)
	a.alive(t)
	if a.c.Ready() == nil {
		t.Fatal("ready without a broker")
	}
	x.k.Start()
	x.wait(t, 15*time.Second, "written, committed and ready", func() bool { return x.done() && a.c.Ready() == nil }, a)
	a.stop(t)
	x.check(t)
}

// failedCommit: the commits after the writes fail and nothing else
// arrives. The consumer commits again by itself (else a restart writes it
// all again), is not ready until it has, and writes nothing twice.
func failedCommit(t *testing.T, x *fixture) {
	a := x.start(t, false)
	x.wait(t, 10*time.Second, "ready", ready(a), a)
	x.k.FailCommits(3, kerr.UnknownServerError.Code)
	x.produce(t, 20, -1)
	x.wait(t, 10*time.Second, "written, committed again and ready", func() bool { return x.done() && a.c.Ready() == nil }, a)
	a.stop(t)
	x.check(t)
	oneEpisode(t, x, "Kafka")
}
