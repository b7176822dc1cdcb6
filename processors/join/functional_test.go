package join

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/deploy/testenv"
	"purchasesync/processors/sites/sitestest"
	"purchasesync/schemas"
)

// staticSites knows every site: order_id mode, syncing on, the given grace.
func staticSites(grace time.Duration) *sitestest.Registry {
	r := sitestest.New()
	r.Any = func(site string) schemas.Site {
		return schemas.Site{Site: site, ShopDomain: site + ".myshopify.com", OrderKey: schemas.OrderKeyID, PurchaseSyncing: true, Grace: schemas.Duration(grace)}
	}
	return r
}

func childMain() int {
	grace, _ := time.ParseDuration(os.Getenv("JOIN_GRACE"))
	cfg := configFor(schemas.Topics{Prefix: os.Getenv("JOIN_PREFIX")}, os.Getenv("JOIN_INSTANCE"))
	cfg.Group = os.Getenv("JOIN_GROUP")
	cfg.TickInterval = 200 * time.Millisecond
	cfg.TransactionTimeout = 5 * time.Second
	cfg.SessionTimeout = 6 * time.Second
	lvl := slog.LevelInfo
	if os.Getenv("JOIN_DEBUG") == "1" {
		lvl = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	clientOpts := []kgo.Opt{kgo.SeedBrokers(strings.Split(os.Getenv("PURCHASESYNC_KAFKA_BROKERS"), ",")...), kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgoLevel(), nil))}
	if b, _ := strconv.Atoi(os.Getenv("JOIN_FETCH_PARTITION_BYTES")); b > 0 {
		// Small fetches: the inputs advance by bytes, not by time, so one
		// runs ahead of the other across polls (the lag of a cold join).
		clientOpts = append(clientOpts, kgo.FetchMaxPartitionBytes(int32(b)))
	}
	p, err := New(cfg, Deps{
		KafkaOpts: clientOpts,
		Sites:     staticSites(grace), Registerer: prometheus.NewRegistry(), Logger: log,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { io.Copy(io.Discard, os.Stdin); cancel() }() // parent closes stdin to stop us gracefully
	if err := p.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "join child:", err)
		return 1
	}
	return 0
}

// child is a join processor in a child process: a JOIN_CHILD re-exec of
// this test binary (main_test.go), which stops when its stdin closes.
type child struct {
	*testenv.Process
	stdin io.WriteCloser
}

func startChild(t *testing.T, env []string, instance string) *child {
	t.Helper()
	cmd := testenv.Self("", slices.Concat(env, []string{"JOIN_CHILD=1", "JOIN_INSTANCE=" + instance})...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{Process: testenv.StartCmd(t, cmd), stdin: stdin}
	c.Grace = 0 // what a test does not stop it kills
	return c
}

func (c *child) kill() { c.Kill() }

func (c *child) stop() {
	c.stdin.Close()
	if !c.WaitFor(30 * time.Second) {
		c.Kill()
	}
}

// scenario produces, for order i: 0 both sides, 1 both with a differing
// subtotal, 2 webhook only, 3 storefront only — each with a redelivery.
func produceOrders(t *testing.T, cl *kgo.Client, topics schemas.Topics, from, to int, pace time.Duration) {
	t.Helper()
	ctx := context.Background()
	for i := from; i < to; i++ {
		id := strconv.FormatUint(9007199254740993+uint64(i), 10)
		key := []byte(schemas.Key("demo", id))
		now := []byte(time.Now().UTC().Format(time.RFC3339Nano))
		hdr := []kgo.RecordHeader{{Key: schemas.HeaderReceivedAt, Value: now}}
		sub := "23.97"
		if i%4 == 1 {
			sub = "30.00"
		}
		sfBody := fmt.Sprintf(`{"purchase":{"order_number":"%s","subtotal":"%s","currency_iso_code":"USD"},"customer":{"email":"buyer%d@example.com"}}`, id, sub, i)
		whBody := fmt.Sprintf(`{"id":%s,"name":"#%d","order_number":%d,"email":"buyer%d@example.com","presentment_currency":"USD","subtotal_price_set":{"presentment_money":{"amount":"23.97","currency_code":"USD"}}}`, id, 1000+i, 1000+i, i)
		// Every input twice (a redelivery), as two records: franz-go stamps
		// a buffered record's length and timestamp delta on the Record
		// itself, for its place in exactly one batch (kgo/sink.go), so one
		// Record produced twice can go out with a wrong stamp, and the
		// broker once refused such a batch with INVALID_RECORD.
		var recs []*kgo.Record
		if i%4 != 2 {
			for range 2 {
				recs = append(recs, &kgo.Record{Topic: topics.Name(schemas.TopicStorefrontPurchases), Key: key, Value: []byte(sfBody), Headers: hdr})
			}
		}
		if i%4 != 3 {
			for range 2 {
				recs = append(recs, &kgo.Record{Topic: topics.Name(schemas.TopicShopifyOrders), Key: key, Value: []byte(whBody), Headers: hdr})
			}
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		if pace > 0 {
			time.Sleep(pace)
		}
	}
}

type ledgerView struct {
	regs     map[string][]string // key → registered_via of every version-1 record
	maxVer   map[string]uint64
	disc     map[string]int // key|kind|field → count
	total    int
	webhookN int
}

// readLedger reads purchases.v1 and discrepancies.v1 read_committed to their end.
func readLedger(t *testing.T, brokers []string, topics schemas.Topics) ledgerView {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(topics.Name(schemas.TopicPurchases), topics.Name(schemas.TopicDiscrepancies)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	v := ledgerView{regs: map[string][]string{}, maxVer: map[string]uint64{}, disc: map[string]int{}}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		if fs.NumRecords() == 0 {
			return v
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Topic == topics.Name(schemas.TopicPurchases) {
				p, err := schemas.UnmarshalPurchase(r.Value)
				if err != nil {
					t.Errorf("bad purchase: %v", err)
					return
				}
				if p.Version == 1 {
					v.regs[p.Key()] = append(v.regs[p.Key()], p.RegisteredVia)
					v.total++
					if p.RegisteredVia == schemas.ViaWebhook {
						v.webhookN++
					}
				}
				v.maxVer[p.Key()] = max(v.maxVer[p.Key()], p.Version)
				return
			}
			d, err := schemas.UnmarshalDiscrepancy(r.Value)
			if err != nil {
				t.Errorf("bad discrepancy: %v", err)
				return
			}
			v.disc[d.Key()+"|"+d.Kind+"|"+d.Field]++
		})
	}
}

func childEnv(brokers []string, topics schemas.Topics, group string, grace time.Duration) []string {
	return []string{"PURCHASESYNC_KAFKA_BROKERS=" + strings.Join(brokers, ","), "JOIN_PREFIX=" + topics.Prefix,
		"JOIN_GROUP=" + group, "JOIN_GRACE=" + grace.String()}
}

func checkLedger(t *testing.T, v ledgerView, n int) {
	t.Helper()
	want := n // every order registers once: storefront ones, and webhook-only ones after the grace
	if v.total != want {
		t.Errorf("%d registrations, want %d", v.total, want)
	}
	for k, regs := range v.regs {
		if len(regs) != 1 {
			t.Errorf("%s registered %d times: %v", k, len(regs), regs)
		}
	}
	if v.webhookN != n/4 {
		t.Errorf("%d webhook registrations, want %d (the webhook-only orders)", v.webhookN, n/4)
	}
	subtotal := 0
	for k, c := range v.disc {
		if c != 1 {
			t.Errorf("discrepancy %s emitted %d times", k, c)
		}
		if strings.HasSuffix(k, "|subtotal") {
			subtotal++
		}
	}
	if subtotal != n/4 {
		t.Errorf("%d subtotal discrepancies, want %d", subtotal, n/4)
	}
}

// TestFunctionalCrashesAndRebalances: members join and are killed -9
// mid-stream; every order ends with exactly one registration and no doubled
// discrepancy, read read_committed. Holds survive moves between members.
func TestFunctionalCrashesAndRebalances(t *testing.T) {
	brokers := testenv.Kafka(t)
	topics := testenv.Topics(t, brokers, 4)
	group := testenv.Name(t)
	env := childEnv(brokers, topics, group, 2*time.Second)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topics.Name(schemas.TopicShopifyOrders)))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	const n = 400
	a := startChild(t, env, "a")
	b := startChild(t, env, "b")
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); produceOrders(t, cl, topics, 0, n, 25*time.Millisecond) }()
	time.Sleep(3 * time.Second)
	c := startChild(t, env, "c") // rebalance to three members
	time.Sleep(2 * time.Second)
	a.kill() // crash mid-stream; its transaction is fenced when "a" comes back
	time.Sleep(time.Second)
	a = startChild(t, env, "a")
	time.Sleep(2 * time.Second)
	c.kill()
	time.Sleep(time.Second)
	b.kill()
	b = startChild(t, env, "b")
	wg.Wait()
	// c is gone for good: its partitions move after its session times out.
	var v ledgerView
	testenv.Eventually(t, 90*time.Second, "every order registered", func() bool {
		v = readLedger(t, brokers, topics)
		return v.total >= n
	})
	time.Sleep(3 * time.Second) // let anything doubled show up
	a.stop()
	b.stop()
	checkLedger(t, readLedger(t, brokers, topics), n)
}

// TestFunctionalCatchUp: with the processor down, webhooks and their
// storefront events pile up past the grace; on start nothing of those is
// registered from a webhook (rule 9).
func TestFunctionalCatchUp(t *testing.T) {
	brokers := testenv.Kafka(t)
	topics := testenv.Topics(t, brokers, 2)
	group := testenv.Name(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	// Webhooks first (all of them), then their storefront events, so a
	// processor that released holds before reading the storefront topic
	// would register from webhooks.
	const n = 200
	for i := 0; i < n; i++ {
		id := strconv.Itoa(5000000000 + i)
		at := []byte(time.Now().UTC().Format(time.RFC3339Nano))
		body := fmt.Sprintf(`{"id":%s,"email":"b%d@example.com","subtotal_price":"10.00"}`, id, i)
		cl.Produce(ctx, &kgo.Record{Topic: topics.Name(schemas.TopicShopifyOrders), Key: []byte(schemas.Key("demo", id)), Value: []byte(body),
			Headers: []kgo.RecordHeader{{Key: schemas.HeaderReceivedAt, Value: at}}}, nil)
	}
	for i := 0; i < n; i++ {
		id := strconv.Itoa(5000000000 + i)
		at := []byte(time.Now().UTC().Format(time.RFC3339Nano))
		body := fmt.Sprintf(`{"purchase":{"order_number":"%s","subtotal":"10.00"},"customer":{"email":"b%d@example.com"}}`, id, i)
		cl.Produce(ctx, &kgo.Record{Topic: topics.Name(schemas.TopicStorefrontPurchases), Key: []byte(schemas.Key("demo", id)), Value: []byte(body),
			Headers: []kgo.RecordHeader{{Key: schemas.HeaderReceivedAt, Value: at}}}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // past the 1 s grace of every webhook
	p := startChild(t, childEnv(brokers, topics, group, time.Second), "x")
	var v ledgerView
	testenv.Eventually(t, 60*time.Second, "all orders registered", func() bool {
		v = readLedger(t, brokers, topics)
		return v.total >= n
	})
	p.stop()
	if v.webhookN != 0 {
		t.Fatalf("%d purchases registered from webhooks although their storefront events were in the topic", v.webhookN)
	}
	for k, regs := range v.regs {
		if len(regs) != 1 {
			t.Errorf("%s registered %d times", k, len(regs))
		}
	}
}

// TestFunctionalReplayIsDeterministic: replaying the same input twice gives
// the same ledger, and it agrees with what the live processor registered.
func TestFunctionalReplayIsDeterministic(t *testing.T) {
	brokers := testenv.Kafka(t)
	topics := testenv.Topics(t, brokers, 2)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const n = 80
	produceOrders(t, cl, topics, 0, n, 0)
	p := startChild(t, childEnv(brokers, topics, testenv.Name(t), time.Second), "r")
	var live ledgerView
	testenv.Eventually(t, 60*time.Second, "live registrations", func() bool {
		live = readLedger(t, brokers, topics)
		return live.total >= n
	})
	p.stop()
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...)}
	cfg := ReplayConfig{Input: topics, From: time.Now().Add(-time.Hour), WebhookWait: 24 * time.Hour, DedupeHorizon: 7 * 24 * time.Hour}
	var phases []string
	s1, err := Replay(context.Background(), cfg, ReplayDeps{KafkaOpts: opts, Sites: staticSites(time.Second), Progress: func(ph string, _, _ int64) { phases = append(phases, ph) }})
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Replay(context.Background(), cfg, ReplayDeps{KafkaOpts: opts, Sites: staticSites(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if len(s1.Purchases) != n || fmt.Sprint(s1.Purchases) != fmt.Sprint(s2.Purchases) || fmt.Sprint(s1.Discrepancies) != fmt.Sprint(s2.Discrepancies) {
		t.Fatalf("replays differ or are incomplete:\n%v\n%v", s1, s2)
	}
	for k, regs := range live.regs {
		if s1.Purchases[k] != regs[0] {
			t.Errorf("%s: live registered via %s, replay via %s", k, regs[0], s1.Purchases[k])
		}
	}
	if s1.Discrepancies["subtotal"] != n/4 {
		t.Errorf("replay found %d subtotal discrepancies, want %d", s1.Discrepancies["subtotal"], n/4)
	}
	if len(phases) == 0 {
		t.Error("no progress reported")
	}
	if _, err := Replay(context.Background(), ReplayConfig{Input: topics, Output: &topics}, ReplayDeps{KafkaOpts: opts, Sites: staticSites(0)}); err == nil {
		t.Error("replay into the live topics must be refused")
	}
}

func kgoLevel() kgo.LogLevel {
	if os.Getenv("JOIN_DEBUG") == "1" {
		return kgo.LogLevelInfo
	}
	return kgo.LogLevelWarn
}
