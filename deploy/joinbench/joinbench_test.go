package joinbench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"purchasesync/schemas"
)

func testConfig(orders int) Config {
	cfg := DefaultConfig()
	cfg.Orders = orders
	return cfg
}

// TestBacklogShape: the backlog has issue 16's shape, and every record
// reads back as the ingest's (the key its router and storefront handler
// compute from the body, the headers schemas' parsers read, received-at
// on the planned timeline).
func TestBacklogShape(t *testing.T) {
	cfg := testConfig(4000)
	cfg.OrdersPerSecond = 12
	end := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	tl := newTimeline(cfg, end)
	evs := plan(cfg, tl)
	topics := schemas.Topics{Prefix: "t."}
	sites := BenchSites(cfg)
	bySlug := map[string]schemas.Site{}
	for _, s := range sites {
		if err := s.Validate(); err != nil {
			t.Fatalf("site %s: %v", s.Site, err)
		}
		bySlug[s.Site] = s
	}
	if len(sites) != 20 {
		t.Fatalf("%d sites, want 20", len(sites))
	}
	var webhooks, storefront, full, late int
	var bytes int64
	webhookAt := map[string]time.Time{}
	storefrontAt := map[string]time.Time{}
	for i, ev := range evs {
		if i > 0 && ev.at < evs[i-1].at {
			t.Fatalf("event %d is before event %d", i, i-1)
		}
		r := buildRecord(cfg, topics, sites, tl, ev)
		bytes += int64(recordBytes(r))
		at, ok := schemas.ReceivedAtOf(r.Headers)
		if !ok || at.UnixNano() != ev.at || !r.Timestamp.Equal(at) || at.After(end) {
			t.Fatalf("record %d: received-at %v (ok %v), timestamp %v, planned %v, end %v", i, at, ok, r.Timestamp, time.Unix(0, ev.at), end)
		}
		if last := r.Headers[len(r.Headers)-1]; last.Key != schemas.HeaderReceivedAt {
			t.Fatalf("record %d: last header %s, the ingest writes received-at last", i, last.Key)
		}
		site, _, err := schemas.SplitKey(string(r.Key))
		if err != nil {
			t.Fatal(err)
		}
		s := bySlug[site]
		if ev.storefront {
			storefront++
			if r.Topic != topics.Name(schemas.TopicStorefrontPurchases) {
				t.Fatalf("storefront event on %s", r.Topic)
			}
			h := schemas.ParseStorefrontHeaders(r.Headers)
			p, err := schemas.ParseStorefrontPurchase(r.Value)
			if err != nil {
				t.Fatalf("storefront event %d: %v", i, err)
			}
			if want := schemas.Key(s.Site, p.OrderNumberFor(s.OrderKey)); string(r.Key) != want || string(h.Site) != s.Site {
				t.Fatalf("storefront event %d: key %s site %s, the ingest would write %s", i, r.Key, h.Site, want)
			}
			storefrontAt[string(r.Key)] = at
			continue
		}
		webhooks++
		if r.Topic != topics.Name(schemas.TopicShopifyOrders) {
			t.Fatalf("webhook on %s", r.Topic)
		}
		h := schemas.ParseWebhookHeaders(r.Headers)
		number, _, err := schemas.ShopifyOrderKeys(r.Value, s.OrderKey)
		if err != nil {
			t.Fatalf("webhook %d: %v", i, err)
		}
		if want := schemas.Key(s.Site, number); string(r.Key) != want || string(h.ShopDomain) != s.ShopDomain ||
			string(h.Topic) != "orders/create" || h.IsRefund() || len(h.WebhookID) != 36 {
			t.Fatalf("webhook %d: key %s, headers %+v; the ingest would write key %s", i, r.Key, h, want)
		}
		if len(r.Value) > 4000 {
			full++
		}
		webhookAt[string(r.Key)] = at
	}
	if webhooks != cfg.Orders {
		t.Errorf("%d webhooks, want one per order (%d)", webhooks, cfg.Orders)
	}
	if share := float64(storefront) / float64(cfg.Orders); share < 0.88 || share > 0.92 {
		t.Errorf("%.3f of the orders have a storefront event, want about 0.9", share)
	}
	if share := float64(full) / float64(webhooks); share < 0.004 || share > 0.02 {
		t.Errorf("%.3f of the webhooks have a full body, want about 0.01", share)
	}
	mean := float64(bytes) / float64(len(evs))
	if mean < 1350 || mean > 1480 {
		t.Errorf("mean record %.0f bytes, want about 1.4 KB", mean)
	}
	for key, sf := range storefrontAt {
		wh, ok := webhookAt[key]
		if !ok {
			t.Fatalf("storefront event %s without its webhook", key)
		}
		switch d := sf.Sub(wh); {
		case d >= cfg.StorefrontEarliest && d <= cfg.StorefrontLatest:
		case d > cfg.Grace && d <= 5*cfg.Grace:
			late++
		default:
			t.Fatalf("storefront event %s is %s after its webhook", key, d)
		}
	}
	if share := float64(late) / float64(storefront); share < 0.01 || share > 0.035 {
		t.Errorf("%.3f of the storefront events come after the grace, want about 0.02", share)
	}
	if span := time.Unix(0, evs[len(evs)-1].at).Sub(time.Unix(0, evs[0].at)); span < 333*time.Second || span > 333*time.Second+30*time.Second {
		t.Errorf("the backlog spans %s of event time, want 4000 orders at 12/s (5m33s) and the last storefront delays", span)
	}
	t.Logf("mean record %.0f bytes; %d late storefront events", mean, late)
}

// TestBuildRecordDeterministic: an event builds the same record each time,
// whichever goroutine builds it (Fill builds chunks in parallel).
func TestBuildRecordDeterministic(t *testing.T) {
	cfg := testConfig(50)
	tl := newTimeline(cfg, time.Now())
	sites := BenchSites(cfg)
	for _, ev := range plan(cfg, tl) {
		a, b := buildRecord(cfg, schemas.Topics{}, sites, tl, ev), buildRecord(cfg, schemas.Topics{}, sites, tl, ev)
		if !bytes.Equal(a.Key, b.Key) || !bytes.Equal(a.Value, b.Value) || len(a.Headers) != len(b.Headers) {
			t.Fatalf("order %d built twice differs", ev.order)
		}
	}
	other := cfg
	other.Seed++
	ev := event{at: tl.webhookAt(7).UnixNano(), order: 7}
	if bytes.Equal(buildRecord(cfg, schemas.Topics{}, sites, tl, ev).Value, buildRecord(other, schemas.Topics{}, sites, tl, ev).Value) {
		t.Fatal("another seed built the same order")
	}
}

func TestParseStatus(t *testing.T) {
	const status = "Name:\tpurchasesync\nVmPeak:\t 2600000 kB\nVmSize:\t 2500000 kB\nVmHWM:\t 2441216 kB\nVmRSS:\t 1048576 kB\nThreads:\t12\n"
	m, err := ParseStatus(strings.NewReader(status))
	if err != nil {
		t.Fatal(err)
	}
	if m.HWM != 2441216*1024 || m.RSS != 1<<30 {
		t.Fatalf("got %+v", m)
	}
	if _, err := ParseStatus(strings.NewReader("Name:\tkthreadd\nThreads:\t1\n")); err == nil {
		t.Fatal("a status without VmRSS/VmHWM parsed")
	}
	if _, err := ParseStatus(strings.NewReader("VmHWM:\t 12 MB\nVmRSS:\t 1 kB\n")); err == nil {
		t.Fatal("a status in MB parsed")
	}
}

func TestParseMetrics(t *testing.T) {
	const text = `# HELP go_memstats_heap_inuse_bytes Number of heap bytes that are in use.
# TYPE go_memstats_heap_inuse_bytes gauge
go_memstats_heap_inuse_bytes 2.4117248e+09
purchasesync_join_state_keys 500000
purchasesync_join_restore_seconds_bucket{le="0.01"} 0
purchasesync_join_restore_seconds_sum 9.5
purchasesync_join_restore_seconds_count 6
purchasesync_join_decisions_total{outcome="matched"} 10
purchasesync_join_decisions_total{outcome="weird } label",x="a\"b"} 5
purchasesync_join_lag 3 1700000000000
`
	m, err := ParseMetrics(text)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{
		"go_memstats_heap_inuse_bytes": 2411724800, "purchasesync_join_state_keys": 500000,
		"purchasesync_join_restore_seconds_sum": 9.5, "purchasesync_join_restore_seconds_count": 6,
		"purchasesync_join_decisions_total": 15, "purchasesync_join_lag": 3,
	} {
		if m[name] != want {
			t.Errorf("%s = %v, want %v", name, m[name], want)
		}
	}
	if m.Has("go_gc_heap_live_bytes") || !m.Has("purchasesync_join_state_keys") {
		t.Error("Has is wrong")
	}
	for _, bad := range []string{"metric_without_value", `x{a="b" 1`, "x one"} {
		if _, err := ParseMetrics(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestBehind(t *testing.T) {
	ends := Offsets{"a": {0: 10, 1: 20}, "b": {0: 5}}
	if n := Behind(ends, Offsets{}); n != 35 {
		t.Fatalf("nothing committed: %d behind, want 35", n)
	}
	if n := Behind(ends, Offsets{"a": {0: 10, 1: 15}, "b": {0: -1}}); n != 10 {
		t.Fatalf("%d behind, want 10 (5 of a/1, all 5 of b/0)", n)
	}
	if n := Behind(ends, Offsets{"a": {0: 10, 1: 20}, "b": {0: 5}, "other": {0: 3}}); n != 0 {
		t.Fatalf("all committed: %d behind", n)
	}
	if ends.Total() != 35 {
		t.Fatalf("total %d", ends.Total())
	}
}

func TestParseRestoredLines(t *testing.T) {
	log := `{"time":"x","level":"INFO","msg":"join: partitions assigned","component":"join","partitions":"[0 1]"}
{"time":"x","level":"INFO","msg":"join: partition restored","component":"join","partition":1,"records":675,"keys":335,"held":2,"took":"18.874704ms"}
not json at all "join: partition restored"
{"time":"x","level":"INFO","msg":"join: partition restored","component":"join","partition":0,"records":700,"keys":350,"held":0,"took":"1.5s"}
`
	lines, err := ParseRestoredLines(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2: %+v", len(lines), lines)
	}
	var r Restore
	r.add(lines)
	if r.Partitions != 2 || r.Keys != 685 || r.Records != 1375 || r.Held != 2 || r.LongestPartition != 1500*time.Millisecond {
		t.Fatalf("got %+v", r)
	}
}

func TestReport(t *testing.T) {
	rep := Report{
		Backlog: Backlog{Orders: 500000, Webhooks: 500000, Storefront: 449958, Bytes: 1330000000, Partitions: 6, Sites: 20, Grace: 5 * time.Second, OrdersPerSecond: 12},
		Join:    Drain{Name: "purchasesync", Records: 949958, Took: 40 * time.Second, PeakRSS: 2 << 30, Heap: 1e9, StateKeys: 500000},
		Peer:    &Drain{Name: "kstreams", Records: 949958, Took: 50 * time.Second, PeakRSS: 1 << 30, Heap: 3e8, StateKeys: 0},
		Restore: &Restore{Ready: 9 * time.Second, Partitions: 6, Keys: 500000},
	}
	tr, rss, ok := rep.Ratios()
	if !ok || tr != 1.25 || rss != 2 {
		t.Fatalf("ratios %v %v %v, want 1.25 (40 s vs 50 s) and 2", tr, rss, ok)
	}
	if rep.Join.HeapPerKey() != 2000 || rep.Peer.HeapPerKey() != 0 {
		t.Fatalf("heap per key %v %v", rep.Join.HeapPerKey(), rep.Peer.HeapPerKey())
	}
	if m := rep.Backlog.MeanRecordBytes(); m < 1400 || m > 1401 {
		t.Fatalf("mean record %v", m)
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"949,958 records", "23,749", "throughput 1.25×, peak RSS 2.00×", "2.00 GiB", "1.95 KiB", "/readyz 200 after 9.0 s"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, table.String())
		}
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(js.String()), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		kinds[v["kind"].(string)]++
		if v["kind"] == "ratio" && (v["throughput"] != 1.25 || v["peak_rss"] != 2.0) {
			t.Errorf("ratio line %s", line)
		}
	}
	if kinds["backlog"] != 1 || kinds["drain"] != 2 || kinds["ratio"] != 1 || kinds["restore"] != 1 {
		t.Fatalf("kinds %v", kinds)
	}
	rep.Peer = nil
	if _, _, ok := rep.Ratios(); ok {
		t.Fatal("ratios without a peer")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("the default: %v", err)
	}
	for name, mut := range map[string]func(*Config){
		"peer":   func(c *Config) { c.Peer = "flink" },
		"orders": func(c *Config) { c.Orders = 0 },
		"delays": func(c *Config) { c.StorefrontEarliest = 10 * time.Second },
		"share":  func(c *Config) { c.BothShare = 1.5 },
		"rate":   func(c *Config) { c.OrdersPerSecond = 0 },
	} {
		c := DefaultConfig()
		mut(&c)
		if c.Validate() == nil {
			t.Errorf("%s: an invalid config passed", name)
		}
	}
}
