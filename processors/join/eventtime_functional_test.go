package join

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/deploy/testenv"
	"purchasesync/schemas"
)

// timedInput is one input record due at start+at.
type timedInput struct {
	at   time.Duration
	rec  kgo.Record // topic as a schemas name, resolved per topic set
	want string     // for webhooks: the registered_via the grace decides
}

// graceBoundaryOrders: per order (one every spacing), a webhook at W and
// its storefront event 0.8 s before its grace ends (via storefront), 0.8 s after (via webhook,
// then matched), none (via webhook), or before the webhook (via storefront).
func graceBoundaryOrders(n int, spacing, grace time.Duration) []timedInput {
	var in []timedInput
	for i := 0; i < n; i++ {
		id := strconv.FormatUint(9007199254740993+uint64(i), 10)
		key := []byte(schemas.Key("demo", id))
		w := time.Duration(i) * spacing
		sfBody := fmt.Sprintf(`{"purchase":{"order_number":"%s","subtotal":"23.97","currency_iso_code":"USD"},"customer":{"email":"buyer%d@example.com"}}`, id, i)
		// A long order note, as real orders carry line items and notes: a
		// webhook is then ~10x a storefront event.
		whBody := fmt.Sprintf(`{"id":%s,"name":"#%d","order_number":%d,"email":"buyer%d@example.com","note":"%s","presentment_currency":"USD","subtotal_price_set":{"presentment_money":{"amount":"23.97","currency_code":"USD"}}}`, id, 1000+i, 1000+i, i, strings.Repeat("gift wrap please ", 120))
		webhook := kgo.Record{Topic: schemas.TopicShopifyOrders, Key: key, Value: []byte(whBody)}
		browser := kgo.Record{Topic: schemas.TopicStorefrontPurchases, Key: key, Value: []byte(sfBody)}
		switch i % 4 {
		case 0:
			in = append(in, timedInput{at: w, rec: webhook, want: schemas.ViaStorefront}, timedInput{at: w + grace - 800*time.Millisecond, rec: browser})
		case 1:
			in = append(in, timedInput{at: w, rec: webhook, want: schemas.ViaWebhook}, timedInput{at: w + grace + 800*time.Millisecond, rec: browser})
		case 2:
			in = append(in, timedInput{at: w, rec: webhook, want: schemas.ViaWebhook})
		case 3:
			in = append(in, timedInput{at: w - 300*time.Millisecond, rec: browser}, timedInput{at: w, rec: webhook, want: schemas.ViaStorefront})
		}
	}
	sort.SliceStable(in, func(i, j int) bool { return in[i].at < in[j].at })
	return in
}

// produceTimed writes the inputs into topics stamped start+at; with pace,
// each is written at that moment (an ingest without lag), else all at once.
func produceTimed(t *testing.T, cl *kgo.Client, topics schemas.Topics, in []timedInput, start time.Time, pace bool) {
	t.Helper()
	ctx := context.Background()
	for _, x := range in {
		at := start.Add(x.at)
		if pace {
			time.Sleep(time.Until(at))
		}
		r := x.rec
		r.Topic = topics.Name(x.rec.Topic)
		r.Headers = []kgo.RecordHeader{{Key: schemas.HeaderReceivedAt, Value: []byte(at.UTC().Format(time.RFC3339Nano))}}
		cl.Produce(ctx, &r, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestFunctionalColdJoinEqualsReplay (issue 19): storefront events received
// just before and just after their webhook's grace. A join that reads them
// as they come, a cold join that finds the whole backlog (maximum lag, both
// inputs fetched in whatever proportion Kafka returns them) and a replay of
// that backlog decide the same, order by order, and as the received-at
// stamps say. JOIN_BURST_ORDERS and JOIN_BURST_SPACING scale it to a flash
// sale (issue 19's burst: 20000 and 1ms, about 1,750 events/s).
func TestFunctionalColdJoinEqualsReplay(t *testing.T) {
	brokers := testenv.Kafka(t)
	n, spacing, grace := 120, 50*time.Millisecond, 4*time.Second
	if v := os.Getenv("JOIN_BURST_ORDERS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	if v := os.Getenv("JOIN_BURST_SPACING"); v != "" {
		spacing, _ = time.ParseDuration(v)
	}
	in := graceBoundaryOrders(n, spacing, grace)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	// Without lag: the join runs while the orders come in.
	live := testenv.Topics(t, brokers, 3)
	lj := startChild(t, childEnv(brokers, live, testenv.Name(t)+"-live", grace), "live")
	start := time.Now().Add(3 * time.Second) // the join has started
	produceTimed(t, cl, live, in, start, true)

	// Maximum lag: the same records, stamped the same, all in the topics
	// before a join starts.
	// Small batches and small fetches: storefront bodies are shorter than
	// webhooks, so the storefront input is read ahead in time, poll after
	// poll, as in issue 19's flash sale.
	cold := testenv.Topics(t, brokers, 3)
	small, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerBatchMaxBytes(8192))
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	produceTimed(t, small, cold, in, start, false)
	cj := startChild(t, append(childEnv(brokers, cold, testenv.Name(t)+"-cold", grace), "JOIN_FETCH_PARTITION_BYTES=4096"), "cold")

	var lv, cv ledgerView
	wrong := 0
	defer func() {
		t.Logf("%d orders, %d input records over %s, grace %s: %d wrong decisions", n, len(in), in[len(in)-1].at-in[0].at, grace, wrong)
	}()
	testenv.Eventually(t, 90*time.Second, "both joins registered every order", func() bool {
		lv, cv = readLedger(t, brokers, live), readLedger(t, brokers, cold)
		return lv.total >= n && cv.total >= n
	})
	time.Sleep(time.Second) // anything doubled shows up
	lj.stop()
	cj.stop()
	lv, cv = readLedger(t, brokers, live), readLedger(t, brokers, cold)

	out := testenv.Topics(t, brokers, 3)
	cfg := ReplayConfig{Input: cold, Output: &out, From: start.Add(-time.Hour), WebhookWait: 24 * time.Hour, DedupeHorizon: 7 * 24 * time.Hour}
	if _, err := Replay(context.Background(), cfg, ReplayDeps{KafkaOpts: []kgo.Opt{kgo.SeedBrokers(brokers...)}, Sites: staticSites(grace)}); err != nil {
		t.Fatal(err)
	}
	// The replay's last transaction may take a moment to be readable on its
	// new topics: read again, for up to 30 s, while registrations seem
	// missing; the comparison below then says what is wrong, if anything.
	registered := map[string]bool{} // the orders that must be registered
	for _, x := range in {
		if x.want != "" {
			registered[string(x.rec.Key)] = true
		}
	}
	rv := readLedger(t, brokers, out)
	for deadline := time.Now().Add(30 * time.Second); rv.total < len(registered) && time.Now().Before(deadline); {
		time.Sleep(500 * time.Millisecond)
		rv = readLedger(t, brokers, out)
	}

	for _, x := range in {
		if x.want == "" {
			continue
		}
		k := string(x.rec.Key)
		want := []string{x.want}
		for name, v := range map[string]ledgerView{"live": lv, "cold": cv, "replay": rv} {
			if !reflect.DeepEqual(v.regs[k], want) {
				wrong++
				if wrong > 20 {
					continue
				}
				t.Errorf("%s join: %s registered %v, want %v (its received-at stamps decide)", name, k, v.regs[k], want)
			}
		}
	}
	if !reflect.DeepEqual(lv.disc, cv.disc) || !reflect.DeepEqual(lv.disc, rv.disc) {
		t.Errorf("discrepancies differ:\n live   %v\n cold   %v\n replay %v", lv.disc, cv.disc, rv.disc)
	}
	if lv.total != n || cv.total != n || rv.total != n {
		t.Errorf("registrations: live %d, cold %d, replay %d; want %d each", lv.total, cv.total, rv.total, n)
	}
}
