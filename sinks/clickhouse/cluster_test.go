package clickhouse

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/deploy/testenv"
	"purchasesync/schemas"
	"purchasesync/sinks/internal/chschema"
)

func TestClusterStatements(t *testing.T) {
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	// Every statement of the real migrations has a cluster form.
	for _, m := range ms {
		for _, st := range m.Statements {
			cs, err := clusterStatements(st, "db", "c")
			if err != nil {
				t.Fatalf("migration %04d: %v", m.Version, err)
			}
			for _, c := range cs {
				if !strings.Contains(c.SQL, " ON CLUSTER `c`") {
					t.Errorf("migration %04d: not ON CLUSTER: %.100s", m.Version, c.SQL)
				}
			}
		}
	}
	f := func(sql string, want ...string) {
		t.Helper()
		st, err := splitStatements(sql)
		if err != nil || len(st) != 1 {
			t.Fatalf("split %q: %v", sql, err)
		}
		cs, err := clusterStatements(st[0], "db", "c")
		if err != nil {
			t.Fatalf("%q: %v", sql, err)
		}
		var got []string
		for _, c := range cs {
			got = append(got, strings.Join(strings.Fields(c.SQL), " "))
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("cluster form of %q:\n got: %s\nwant: %s", sql, strings.Join(got, "\n      "), strings.Join(want, "\n      "))
		}
	}
	f("CREATE TABLE IF NOT EXISTS purchases (\n  site String,\n  version UInt64\n) ENGINE = ReplacingMergeTree(version)\nORDER BY (site, order_number);",
		"CREATE TABLE IF NOT EXISTS `db`.`purchases_local` ON CLUSTER `c` ( site String, version UInt64 ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/purchases_local', '{replica}', version) ORDER BY (site, order_number)",
		"CREATE TABLE IF NOT EXISTS `db`.`purchases` ON CLUSTER `c` AS `db`.`purchases_local` ENGINE = Distributed(`c`, `db`, `purchases_local`, cityHash64(site, order_number))")
	f("CREATE TABLE IF NOT EXISTS raw_events (k String) ENGINE = ReplacingMergeTree\nPARTITION BY toYYYYMM(received_at)\nORDER BY k;",
		"CREATE TABLE IF NOT EXISTS `db`.`raw_events_local` ON CLUSTER `c` (k String) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/raw_events_local', '{replica}') PARTITION BY toYYYYMM(received_at) ORDER BY k",
		"CREATE TABLE IF NOT EXISTS `db`.`raw_events` ON CLUSTER `c` AS `db`.`raw_events_local` ENGINE = Distributed(`c`, `db`, `raw_events_local`, cityHash64(site, order_number))")
	f("CREATE VIEW IF NOT EXISTS v AS\nSELECT a FROM purchases FINAL ANY LEFT JOIN (SELECT a FROM discrepancies FINAL) USING a;",
		"CREATE VIEW IF NOT EXISTS `db`.`v` ON CLUSTER `c` AS SELECT a FROM `db`.`purchases` FINAL ANY LEFT JOIN (SELECT a FROM `db`.`discrepancies` FINAL) USING a")
	f("ALTER TABLE purchases ADD COLUMN note String DEFAULT '' AFTER site;",
		"ALTER TABLE `db`.`purchases_local` ON CLUSTER `c` ADD COLUMN note String DEFAULT '' AFTER site",
		"DROP TABLE IF EXISTS `db`.`purchases` ON CLUSTER `c`",
		"CREATE TABLE IF NOT EXISTS `db`.`purchases` ON CLUSTER `c` AS `db`.`purchases_local` ENGINE = Distributed(`c`, `db`, `purchases_local`, cityHash64(site, order_number))")

	for _, bad := range []string{
		"CREATE TABLE IF NOT EXISTS unknown_table (a String) ENGINE = MergeTree ORDER BY a;", // no sharding key
		"ALTER TABLE purchases DROP COLUMN note;",                                            // no cluster form
	} {
		st, _ := splitStatements(bad)
		if _, err := clusterStatements(st[0], "db", "c"); err == nil {
			t.Errorf("%q has a cluster form; want an error", bad)
		}
	}
}

// clusterConfig is the stack's two-replica ClickHouse over TLS with a
// password (testenv.ClickHouseCluster), in cluster mode, with a database of
// the test's own, dropped on the cluster at the end.
func clusterConfig(t *testing.T) (Config, testenv.CHCluster) {
	t.Helper()
	cl := testenv.ClickHouseCluster(t)
	cfg := DefaultConfig()
	cfg.Addr = cl.Addrs
	cfg.Username = cl.Getenv("PURCHASESYNC_CLICKHOUSE_USER")
	cfg.Password = cl.Getenv("PURCHASESYNC_CLICKHOUSE_PASSWORD")
	cfg.Cluster = cl.Getenv("PURCHASESYNC_CLICKHOUSE_CLUSTER")
	pem, err := os.ReadFile(cl.Getenv("PURCHASESYNC_CLICKHOUSE_TLS_CAFILE"))
	if err != nil {
		t.Fatalf("the cluster's CA: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	if cfg.Cluster == "" || len(cfg.Addr) != 2 {
		t.Fatalf("the cluster's lines name no cluster or not two replicas: %v %q", cfg.Addr, cfg.Cluster)
	}
	cfg.Database = testenv.Name(t)
	t.Cleanup(func() {
		conn, err := Open(cfg, "")
		if err == nil {
			_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS `"+cfg.Database+"` ON CLUSTER `"+cfg.Cluster+"`")
			conn.Close()
		}
	})
	return cfg, cl
}

// replica is a connection to node n (1-based) alone.
func replica(t *testing.T, cfg Config, n int) driver.Conn {
	t.Helper()
	one := cfg
	one.Addr = []string{cfg.Addr[n-1]}
	return openDB(t, one)
}

func TestFunctionalClusterMigrations(t *testing.T) {
	cfg, _ := clusterConfig(t)
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	if v, err := Migrate(ctx, cfg, quiet); err != nil || v != len(ms) {
		t.Fatalf("fresh migrate on the cluster: version %d, %v", v, err)
	}
	r1, r2 := replica(t, cfg, 1), replica(t, cfg, 2)
	want := schemaOf(t, r1, cfg.Database)
	if got := schemaOf(t, r2, cfg.Database); got != want {
		t.Fatalf("the replicas' schemas differ:\nnode 1: %s\nnode 2: %s", want, got)
	}
	for _, tbl := range []string{"table purchases Distributed", "table purchases_local ReplicatedReplacingMergeTree", "table schema_migrations ReplicatedReplacingMergeTree", "table purchases_daily View"} {
		if !strings.Contains(want, tbl+"\n") {
			t.Fatalf("%q missing after a cluster migrate:\n%s", tbl, want)
		}
	}
	// Again, from the other server alone: nothing to apply.
	two := cfg
	two.Addr = []string{cfg.Addr[1]}
	logs := &testenv.Log{}
	if v, err := Migrate(ctx, two, logs.Logger()); err != nil || v != len(ms) {
		t.Fatalf("second migrate from node 2: version %d, %v", v, err)
	}
	if n := logs.Count("applied ClickHouse migration"); n != 0 {
		t.Fatalf("second migrate from node 2 applied %d migrations, want 0:\n%s", n, logs)
	}
	// From every earlier version: the same schema on both replicas.
	for k := 1; k < len(ms); k++ {
		c, _ := clusterConfig(t)
		if v, err := MigrateWith(ctx, c, ms[:k], quiet); err != nil || v != k {
			t.Fatalf("migrate the cluster to version %d: %d, %v", k, v, err)
		}
		if v, err := Migrate(ctx, c, quiet); err != nil || v != len(ms) {
			t.Fatalf("from version %d: %d, %v", k, v, err)
		}
		for n := 1; n <= 2; n++ {
			got := strings.ReplaceAll(schemaOf(t, replica(t, c, n), c.Database), c.Database, cfg.Database)
			if got != want {
				t.Errorf("from version %d, node %d's schema differs:\n got: %s\nwant: %s", k, n, got, want)
			}
		}
	}
}

// timedWriter records when each insert succeeded, for the longest stall.
type timedWriter struct {
	inner writer
	mu    sync.Mutex
	at    []time.Time
	rows  int
}

func (w *timedWriter) insert(ctx context.Context, tb *table) error {
	if err := w.inner.insert(ctx, tb); err != nil {
		return err
	}
	w.mu.Lock()
	w.at = append(w.at, time.Now())
	w.rows += tb.len()
	w.mu.Unlock()
	return nil
}

// longestGap is the longest time between two successful inserts in [from, to].
func (w *timedWriter) longestGap(from, to time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var longest time.Duration
	prev := from
	for _, a := range w.at {
		if a.Before(from) || a.After(to) {
			continue
		}
		longest = max(longest, a.Sub(prev))
		prev = a
	}
	return max(longest, to.Sub(prev))
}

// finalOn counts the purchases at version 2 in purchases FINAL on one
// replica's local table (FINAL keeps one row per purchase: a count of n
// means each once, at its latest version), with a checksum of all rows.
func finalOn(t *testing.T, conn driver.Conn) (n, sum uint64) {
	t.Helper()
	err := conn.QueryRow(ctxT(t), "SELECT countIf(version = 2 AND email = 'changed@example.com'), sum(cityHash64(site, order_number, version, email)) FROM purchases_local FINAL").Scan(&n, &sum)
	if err != nil {
		t.Fatalf("read purchases_local: %v", err)
	}
	return n, sum
}

// TestChaosClickHouseReplicaKill: the sink over TLS into the two-replica
// cluster while node 1, its first address, is SIGKILLed mid-stream and
// restarted. It kills a server other tests use, so it runs only with
// PURCHASESYNC_CHAOS_TESTS=1, as deploy/local/test.sh sets it in its last,
// one-package-at-a-time phase.
func TestChaosClickHouseReplicaKill(t *testing.T) {
	if os.Getenv("PURCHASESYNC_CHAOS_TESTS") != "1" {
		t.Skip("chaos test: it kills a ClickHouse replica other tests use, so it runs only with PURCHASESYNC_CHAOS_TESTS=1, as deploy/local/test.sh sets it in its last phase")
	}
	cfg, cl := clusterConfig(t)
	if _, err := Migrate(ctxT(t), cfg, quiet); err != nil {
		t.Fatal(err)
	}
	k := newKafka(t, 4)
	conn, err := Open(cfg, cfg.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tw := &timedWriter{inner: &chWriter{conn: conn, cluster: true}}
	s, _ := testSink(t, k, nil, func(c *Config) {
		c.Addr, c.Database, c.Cluster, c.TLS, c.Username, c.Password = cfg.Addr, cfg.Database, cfg.Cluster, cfg.TLS, cfg.Username, cfg.Password
		c.FlushInterval = 100 * time.Millisecond
		c.RetryInitial, c.RetryMax = 50*time.Millisecond, 500*time.Millisecond
	})
	s.w = tw
	cancel := runSink(t, s)

	// Purchases 0..n-1, each in two versions, produced in rounds while
	// node 1, the sink's first address, is killed and restarted.
	const n, rounds = 3000, 6
	produce := func(r int) {
		// Version 1, a redelivery of it (same row, same version), then
		// version 2 (a later change of the purchase).
		for pass := range 3 {
			var recs []*kgo.Record
			for i := r * n / rounds; i < (r+1)*n/rounds; i++ {
				p := samplePurchase()
				p.Site, p.OrderNumber, p.Version = "acme", fmt.Sprint(1000+i), 1
				if pass == 2 {
					p.Version, p.Email = 2, "changed@example.com"
				}
				b, err := schemas.MarshalPurchase(p)
				if err != nil {
					t.Fatal(err)
				}
				recs = append(recs, &kgo.Record{Topic: k.topics.Name(schemas.TopicPurchases), Key: []byte(p.Key()), Value: b})
			}
			k.produce(t, recs...)
		}
	}
	produce(0)
	waitFor(t, "the first round in ClickHouse", func() bool { tw.mu.Lock(); defer tw.mu.Unlock(); return tw.rows >= n/rounds })
	killedAt := time.Now()
	testenv.Stack(t, append([]string{"stop-clickhouse", "--node", "1", "--kill"}, cl.Profile...)...)
	restarted := false
	defer func() {
		if !restarted {
			testenv.Stack(t, append([]string{"start-clickhouse", "--node", "1"}, cl.Profile...)...)
		}
	}()
	for r := 1; r < rounds-2; r++ {
		produce(r)
		time.Sleep(500 * time.Millisecond)
	}
	testenv.Stack(t, append([]string{"start-clickhouse", "--node", "1"}, cl.Profile...)...)
	restarted = true
	for r := rounds - 2; r < rounds; r++ {
		produce(r)
	}
	doneAt := time.Now()
	r1, r2 := replica(t, cfg, 1), replica(t, cfg, 2)
	deadline := time.Now().Add(60 * time.Second)
	var n1, s1, n2, s2 uint64
	for {
		n1, s1 = finalOn(t, r1)
		n2, s2 = finalOn(t, r2)
		if n1 == n && n2 == n && s1 == s2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the kill: node 1 has %d purchases (checksum %d), node 2 %d (%d); want %d on both, equal", n1, s1, n2, s2, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := cancel(); err != nil {
		t.Fatal(err)
	}
	t.Logf("every purchase once in FINAL on both replicas (%d, checksum %d); longest insert stall after the SIGKILL of node 1: %s",
		n1, s1, tw.longestGap(killedAt, doneAt).Round(time.Millisecond))
}

// syncReplicas waits until every replica holds every part of the local
// tables (SYSTEM SYNC REPLICA on each).
func syncReplicas(t *testing.T, cfg Config) {
	t.Helper()
	for n := 1; n <= len(cfg.Addr); n++ {
		r := replica(t, cfg, n)
		for tbl := range shardingKeys {
			if err := r.Exec(ctxT(t), "SYSTEM SYNC REPLICA `"+cfg.Database+"`.`"+tbl+chschema.LocalSuffix+"`"); err != nil {
				t.Fatalf("sync %s on node %d: %v", tbl, n, err)
			}
		}
	}
}

// TestFunctionalClusterSinkThroughput measures the whole sink (Kafka fetch
// from an in-process kfake, decode, batch, insert, commit) into the single
// plaintext server and into the two-replica TLS cluster, in one run. Only
// with PURCHASESYNC_SINK_BENCH=1:
//
//	PURCHASESYNC_SINK_BENCH=1 go test ./sinks/clickhouse -run ClusterSinkThroughput -v
func TestFunctionalClusterSinkThroughput(t *testing.T) {
	if os.Getenv("PURCHASESYNC_SINK_BENCH") != "1" {
		t.Skip("set PURCHASESYNC_SINK_BENCH=1 to measure the sink's rows/s on one server and on the cluster")
	}
	const n = 200_000
	k := newKafka(t, 6)
	for start := 0; start < n; start += 10_000 {
		var recs []*kgo.Record
		for i := start; i < start+10_000; i++ {
			v, _ := schemas.MarshalPurchase(benchPurchase(i))
			recs = append(recs, &kgo.Record{Topic: k.topics.Name(schemas.TopicPurchases), Key: []byte(fmt.Sprint(i)), Value: v})
		}
		k.produce(t, recs...)
	}
	single := testConfig(t)
	cluster, _ := clusterConfig(t)
	for _, c := range []struct {
		name string
		cfg  Config
	}{{"single plaintext server", single}, {"two-replica TLS cluster", cluster}} {
		if _, err := Migrate(ctxT(t), c.cfg, quiet); err != nil {
			t.Fatal(err)
		}
		conn := openDB(t, c.cfg)
		s, _ := testSink(t, k, nil, func(sc *Config) {
			sc.Addr, sc.Database, sc.Cluster, sc.TLS, sc.Username, sc.Password = c.cfg.Addr, c.cfg.Database, c.cfg.Cluster, c.cfg.TLS, c.cfg.Username, c.cfg.Password
			sc.Group = "bench-" + c.cfg.Database
			sc.FlushInterval = time.Second
		})
		s.w = &chWriter{conn: conn, cluster: c.cfg.Cluster != ""} // testSink's is a fake
		cancel := runSink(t, s)
		var start time.Time
		var startRows uint64
		deadline := time.Now().Add(5 * time.Minute)
		for {
			var got uint64
			if err := conn.QueryRow(ctxT(t), "SELECT count() FROM purchases").Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got > 0 && start.IsZero() {
				start, startRows = time.Now(), got
			}
			if got >= n {
				t.Logf("%s: %.0f rows/s (%d purchases, from the first batch in ClickHouse to the last)", c.name, float64(n-startRows)/time.Since(start).Seconds(), n)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d of %d rows after 5 minutes", c.name, got, n)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := cancel(); err != nil {
			t.Fatal(err)
		}
	}
}

// An ADD COLUMN migration on the cluster: the local tables and the
// Distributed table of both replicas get the column, and the sink's inserts
// still land (the Distributed table was made again).
func TestFunctionalClusterAddColumn(t *testing.T) {
	cfg, _ := clusterConfig(t)
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	st, err := splitStatements("ALTER TABLE purchases ADD COLUMN cluster_test_note String DEFAULT '';")
	if err != nil {
		t.Fatal(err)
	}
	extra := append(append([]Migration(nil), ms...), Migration{Version: len(ms) + 1, Name: "note", Checksum: "x", Statements: st})
	ctx := ctxT(t)
	for range 2 { // the second time: recorded, nothing to do
		if v, err := MigrateWith(ctx, cfg, extra, quiet); err != nil || v != len(extra) {
			t.Fatalf("migrate with an ADD COLUMN on the cluster: %d, %v", v, err)
		}
	}
	for n := 1; n <= 2; n++ {
		r := replica(t, cfg, n)
		var got uint64
		if err := r.QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = currentDatabase() AND name = 'cluster_test_note' AND table IN ('purchases', 'purchases_local')").Scan(&got); err != nil || got != 2 {
			t.Errorf("node %d: the column is on %d of purchases and purchases_local (%v), want both", n, got, err)
		}
	}
	w := &chWriter{conn: openDB(t, cfg), cluster: true}
	tb := newPurchasesTable()
	r, err := purchaseRowFrom(mustMarshal(t, benchPurchase(1)))
	if err != nil {
		t.Fatal(err)
	}
	tb.add(r, rowRef{}, 0)
	if err := w.insert(ctx, &tb.table); err != nil {
		t.Fatalf("insert after the ADD COLUMN: %v", err)
	}
}

func mustMarshal(t *testing.T, p *schemas.Purchase) []byte {
	t.Helper()
	b, err := schemas.MarshalPurchase(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
