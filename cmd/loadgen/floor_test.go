package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/cmd/kafkaconf"
	"purchasesync/cmd/kafkaconf/kafkaconftest"
	"purchasesync/deploy/testenv"
)

// TestFloorRunKfake runs -baseline -floor against an in-memory Kafka.
func TestFloorRunKfake(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	for _, inprocess := range []bool{false, true} {
		t.Run(modeName(inprocess), func(t *testing.T) {
			checkFloorRun(t, []string{"-kafka.brokers", strings.Join(cluster.ListenAddrs(), ",")}, nil, "lz4", inprocess)
		})
	}
}

// TestFloorRunSASLSSL runs -floor against an in-memory Kafka that wants
// SCRAM over TLS, the password in a _FILE variable: the floor's client, and
// the child's, connect with the -kafka.* settings.
func TestFloorRunSASLSSL(t *testing.T) {
	ca := kafkaconftest.NewCA(t, "ca")
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(ca.ServerTLS(t, nil)),
		kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "loadgen", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	pwFile := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"PURCHASESYNC_KAFKA_BROKERS":            strings.Join(cluster.ListenAddrs(), ","),
		"PURCHASESYNC_KAFKA_SASL_MECHANISM":     "scram-sha-512",
		"PURCHASESYNC_KAFKA_SASL_PASSWORD_FILE": pwFile,
	}
	args := []string{"-kafka.tls.caFile", ca.File, "-kafka.sasl.username", "loadgen"}
	for _, inprocess := range []bool{false, true} {
		t.Run(modeName(inprocess), func(t *testing.T) { checkFloorRun(t, args, func(k string) string { return env[k] }, "lz4", inprocess) })
	}

	// A wrong password is its one line, before any topic or server.
	o, err := parse(append([]string{"-floor", "-target", "", "-secret", "x", "-requests", "10", "-quiet",
		"-kafka.sasl.password", "hunter2-wrong"}, args...), func(k string) string { return env[k] }, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	o.onServer = func(name, _ string, _ int) { t.Errorf("the %s server started", name) }
	var out bytes.Buffer
	err = execute(context.Background(), o, &out)
	var ce *kafkaconf.ConfigError
	if !errors.As(err, &ce) || ce.Flag != "-kafka.sasl.password" || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("wrong password: %v, want the one-line error naming -kafka.sasl.password", err)
	}
	if out.Len() != 0 {
		t.Errorf("printed a report:\n%s", out.String())
	}
}

// TestFloorRunRealKafka is the same against the real broker
// (PURCHASESYNC_KAFKA_BROKERS; see deploy/testenv).
func TestFloorRunRealKafka(t *testing.T) {
	brokers := testenv.Kafka(t)
	for _, inprocess := range []bool{false, true} {
		t.Run(modeName(inprocess), func(t *testing.T) {
			checkFloorRun(t, []string{"-kafka.brokers", strings.Join(brokers, ",")}, nil, "none", inprocess)
		})
	}
}

// TestFloorRunRealCluster is the same against the stack's three-broker
// SASL_SSL cluster (testenv.KafkaCluster), configured by its
// PURCHASESYNC_KAFKA_* variables alone, as an operator would.
func TestFloorRunRealCluster(t *testing.T) {
	cluster := testenv.KafkaCluster(t)
	for _, inprocess := range []bool{false, true} {
		t.Run(modeName(inprocess), func(t *testing.T) { checkFloorRun(t, nil, cluster.Getenv, "lz4", inprocess) })
	}
}

// checkFloorRun drives n signed webhooks at the baseline and the floor
// (connected with the -kafka.* flags kafkaArgs and the environment env) and
// checks that every floor request got 200, that the scratch topic held
// exactly the n bodies sent (keys 0..n-1), that the ratios are printed and
// that the topic is gone afterwards, as are the child processes unless
// inprocess.
func checkFloorRun(t *testing.T, kafkaArgs []string, getenv func(string) string, compression string, inprocess bool) {
	const n = 200
	args := append([]string{"-baseline", "-floor", "-target", "", "-secret", "x", "-scenario", "webhook",
		"-requests", strconv.Itoa(n), "-duration", "0", "-concurrency", "8", "-quiet", "-kafka.compression", compression}, kafkaArgs...)
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	o, err := parse(append(args, modeArgs(inprocess)...), getenv, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	opts, err := o.kafka.Opts()
	if err != nil {
		t.Fatal(err)
	}
	servers := map[string]string{} // name -> address
	o.onServer = func(name, addr string, pid int) {
		servers[name] = addr
		if inprocess != (pid == os.Getpid()) {
			t.Errorf("the %s server ran in pid %d; loadgen is %d", name, pid, os.Getpid())
		}
	}
	want := map[string]int{} // body -> times sent
	for _, r := range buildPool(o)[:n] {
		want[string(r.body)]++
	}
	var topic string
	o.floorCheck = func(tp string) error {
		topic = tp
		if !strings.HasPrefix(tp, floorTopicPrefix) || len(tp) <= len(floorTopicPrefix) {
			return fmt.Errorf("scratch topic %q lacks the prefix %q and a suffix", tp, floorTopicPrefix)
		}
		return checkTopic(opts, tp, n, want)
	}
	var out bytes.Buffer
	if err := execute(context.Background(), o, &out); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	t.Logf("report:\n%s", s)
	if topic == "" {
		t.Fatal("the floor check was never called")
	}
	if len(servers) != 2 {
		t.Errorf("servers started: %v, want baseline and floor", servers)
	}
	for name, addr := range servers {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("the %s server at %s still accepts connections after the run", name, addr)
		}
	}
	for _, re := range []string{
		fmt.Sprintf(`(?m)^\s*baseline\s+webhook\s+%d\s.*\s200:%d\s+-\s*$`, n, n),
		fmt.Sprintf(`(?m)^\s*floor\s+webhook\s+%d\s.*\s200:%d\s+-\s*$`, n, n),
		`(?m)^ratio webhook: floor/baseline = \d+\.\d\d$`,
	} {
		if !regexp.MustCompile(re).MatchString(s) {
			t.Errorf("report does not match %s", re)
		}
	}
	if strings.Contains(s, "ingest") {
		t.Errorf("report mentions an ingest that was not run")
	}
	// Deleted: the topic no longer shows in the broker's metadata (a real
	// broker may take a moment to propagate the deletion).
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	testenv.Eventually(t, 10*time.Second, "scratch topic "+topic+" to be deleted", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		td, err := adm.ListTopics(ctx)
		return err == nil && !td.Has(topic)
	})
}

// checkTopic checks that topic holds exactly n records whose values are the
// bodies in want (with multiplicity) and whose keys are 0..n-1.
func checkTopic(conn []kgo.Opt, topic string, n int, want map[string]int) error {
	cl, err := kgo.NewClient(append(conn, kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// -duration 0 above: with loadgen's default 10 s the run also stopped
	// at 10 s, which on the slow TLS cluster in CI was after 192 of the 200
	// requests (twice), so the topic held 192.
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("end offsets: %w", err)
	}
	if err := ends.Error(); err != nil {
		return fmt.Errorf("end offsets: %w", err)
	}
	var total int64
	parts := 0
	ends.Each(func(o kadm.ListedOffset) {
		total += o.Offset
		parts++
	})
	if parts != floorPartitions {
		return fmt.Errorf("scratch topic has %d partitions, want %d", parts, floorPartitions)
	}
	if total != int64(n) {
		return fmt.Errorf("scratch topic holds %d records, want exactly %d", total, n)
	}
	// Replicated as migrate replicates the ingest's topics: RF 3 on a
	// three-broker cluster, so the floor pays what the ingest pays.
	adm := kadm.NewClient(cl)
	brokers, err := adm.ListBrokers(ctx)
	if err != nil {
		return fmt.Errorf("brokers: %w", err)
	}
	td, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("topic: %w", err)
	}
	for _, p := range td[topic].Partitions {
		if want := min(3, len(brokers)); len(p.Replicas) != want {
			return fmt.Errorf("scratch topic partition %d has %d replicas on %d brokers, want %d", p.Partition, len(p.Replicas), len(brokers), want)
		}
	}
	left := make(map[string]int, len(want))
	for k, v := range want {
		left[k] = v
	}
	keys := map[string]bool{}
	got := 0
	for got < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("consumed %d of %d records: %w", got, n, err)
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = errors.Join(ferr, err) })
		if ferr != nil {
			return fmt.Errorf("consume: %w", ferr)
		}
		for _, r := range fs.Records() {
			got++
			if left[string(r.Value)] == 0 {
				return fmt.Errorf("record %s/%d@%d holds a body that was not sent (or too often): %.80q", r.Topic, r.Partition, r.Offset, r.Value)
			}
			left[string(r.Value)]--
			if keys[string(r.Key)] {
				return fmt.Errorf("key %q seen twice", r.Key)
			}
			keys[string(r.Key)] = true
		}
	}
	for i := range n {
		if !keys[strconv.Itoa(i)] {
			return fmt.Errorf("no record with key %d", i)
		}
	}
	return nil
}

// TestFloorKafkaDown: an unreachable Kafka, refusing connections or
// accepting them and never answering, is a clear error within
// floorAdminTimeout.
func TestFloorKafkaDown(t *testing.T) {
	defer func(d time.Duration) { floorAdminTimeout = d }(floorAdminTimeout)
	floorAdminTimeout = time.Second
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		var held []net.Conn // accepted and never answered
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	refused, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedAddr := refused.Addr().String()
	refused.Close()
	for _, c := range []struct {
		addr, want string
		inprocess  bool
	}{
		{refusedAddr, "is Kafka running?", false},
		{silent.Addr().String(), "no answer within 1s", false},
		{refusedAddr, "is Kafka running?", true},
		{silent.Addr().String(), "no answer within 1s", true},
	} {
		o, err := parse(append([]string{"-floor", "-target", "", "-secret", "x", "-requests", "10", "-quiet",
			"-kafka.brokers", c.addr}, modeArgs(c.inprocess)...), func(string) string { return "" }, &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		var out bytes.Buffer
		err = execute(context.Background(), o, &out)
		t.Logf("%s: %v", c.addr, err)
		if err == nil || !strings.Contains(err.Error(), "scratch topic "+floorTopicPrefix) ||
			!strings.Contains(err.Error(), c.addr) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("execute = %v, want an error naming the scratch topic and %s, saying %q", err, c.addr, c.want)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("%s: took %s to give up", c.addr, took)
		}
		if out.Len() != 0 {
			t.Errorf("printed a report:\n%s", out.String())
		}
	}
}

func TestParseFloor(t *testing.T) {
	noenv := func(string) string { return "" }
	o, err := parse([]string{"-floor", "-target", "", "-secret", "x"}, noenv, &bytes.Buffer{})
	if err != nil || !o.floor || strings.Join(o.kafka.Brokers, ",") != "127.0.0.1:19092" || o.kafka.ClientID != floorClientID || o.kafkaCompression != "lz4" || o.inprocess {
		t.Fatalf("parse: %+v %v", o, err)
	}
	if o, err := parse([]string{"-floor", "-baseline", "-inprocess", "-target", "", "-secret", "x"}, noenv, &bytes.Buffer{}); err != nil || !o.inprocess {
		t.Fatalf("parse -inprocess: %+v %v", o, err)
	}
	env := func(k string) string {
		return map[string]string{"PURCHASESYNC_KAFKA_BROKERS": "127.0.0.1:59092,127.0.0.1:59093"}[k]
	}
	if o, err := parse([]string{"-floor", "-secret", "x"}, env, &bytes.Buffer{}); err != nil || strings.Join(o.kafka.Brokers, ",") != "127.0.0.1:59092,127.0.0.1:59093" {
		t.Fatalf("parse with the env: %+v %v", o, err)
	}
	if o, err := parse([]string{"-floor", "-secret", "x", "-kafka.brokers", "127.0.0.1:1"}, env, &bytes.Buffer{}); err != nil || strings.Join(o.kafka.Brokers, ",") != "127.0.0.1:1" {
		t.Fatalf("the flag does not beat the env: %+v %v", o, err)
	}
	for _, args := range [][]string{
		{"-floor", "-secret", "x", "-kafka.compression", "zstd"},
		{"-floor", "-secret", "x", "-kafka.brokers", " , "},
		{"-floor", "-secret", "x", "-kafka.brokers", "127.0.0.1:9092,192.0.2.1:9092"}, // not this machine
	} {
		if _, err := parse(args, noenv, &bytes.Buffer{}); err == nil {
			t.Errorf("parse(%q) succeeded", args)
		}
	}
}

// TestReportRatios checks that every ratio the results allow is printed and
// that the ingest/baseline line keeps its format.
func TestReportRatios(t *testing.T) {
	res := func(name string, n int) *result {
		lat := make([]time.Duration, n)
		for i := range lat {
			lat[i] = time.Millisecond
		}
		return &result{name: name, elapsed: time.Second, kinds: map[string]*kindStats{
			"webhook": {lat: lat, codes: map[int]int{200: n}, errors: map[string]int{}}}}
	}
	o := options{scenario: scenarioWebhook, concurrency: 1, pool: 1}
	for _, c := range []struct {
		names []string
		want  []string
		not   []string
	}{
		{[]string{"baseline", "floor", "ingest"}, []string{
			"ratio webhook: ingest/baseline requests/s = 0.30 (p99 1.00ms vs 1.00ms)\n",
			"ratio webhook: ingest/baseline = 0.30, floor/baseline = 0.40, ingest/floor = 0.75\n"}, nil},
		{[]string{"baseline", "ingest"}, []string{"ratio webhook: ingest/baseline requests/s = 0.30 (p99 1.00ms vs 1.00ms)\n"},
			[]string{"floor"}},
		{[]string{"baseline", "floor"}, []string{"ratio webhook: floor/baseline = 0.40\n"}, []string{"ingest"}},
		{[]string{"floor", "ingest"}, []string{"ratio webhook: ingest/floor = 0.75\n"}, []string{"baseline"}},
		{[]string{"ingest"}, nil, []string{"ratio"}},
	} {
		n := map[string]int{"baseline": 100, "floor": 40, "ingest": 30}
		var rs []*result
		for _, name := range c.names {
			rs = append(rs, res(name, n[name]))
		}
		var out bytes.Buffer
		report(&out, o, rs)
		s := out.String()
		for _, w := range c.want {
			if !strings.Contains(s, w) {
				t.Errorf("%v: report lacks %q:\n%s", c.names, w, s)
			}
		}
		for _, line := range strings.Split(s, "\n") {
			for _, bad := range c.not {
				if strings.HasPrefix(line, "ratio") && strings.Contains(line, bad) {
					t.Errorf("%v: ratio line mentions %s: %q", c.names, bad, line)
				}
			}
		}
	}
}

// TestBaselineKeptWhenFloorFails: a floor that cannot start (Kafka down)
// still leaves the baseline measured before it on the output.
func TestBaselineKeptWhenFloorFails(t *testing.T) {
	defer func(d time.Duration) { floorAdminTimeout = d }(floorAdminTimeout)
	floorAdminTimeout = time.Second
	refused, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := refused.Addr().String()
	refused.Close()
	o, err := parse([]string{"-baseline", "-floor", "-target", "", "-secret", "x", "-requests", "20", "-concurrency", "2", "-quiet",
		"-kafka.brokers", addr}, func(string) string { return "" }, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = execute(context.Background(), o, &out)
	if err == nil || !strings.Contains(err.Error(), "is Kafka running?") {
		t.Fatalf("execute = %v, want the floor's Kafka error", err)
	}
	if !strings.Contains(out.String(), "baseline") || !strings.Contains(out.String(), "200:20") {
		t.Fatalf("the baseline measured before the floor failed is missing:\n%s", out.String())
	}
}
