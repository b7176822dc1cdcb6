package discrepancy

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
)

// receiver is a Slack-compatible incoming webhook.
type receiver struct {
	mu       sync.Mutex
	texts    []string
	failNext int
	down     bool // answer 503 to everything
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var body struct {
		Text string `json:"text"`
	}
	if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" || json.NewDecoder(req.Body).Decode(&body) != nil || body.Text == "" {
		http.Error(w, "invalid_payload", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failNext > 0 || r.down {
		r.failNext = max(r.failNext-1, 0)
		w.Header().Set("Retry-After", "0")
		http.Error(w, "service unavailable", http.StatusServiceUnavailable)
		return
	}
	r.texts = append(r.texts, body.Text)
	_, _ = io.WriteString(w, "ok")
}

func (r *receiver) messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.texts...)
}

// SetDown makes the webhook answer 503 until SetDown(false)
// (sinktest.Destination).
func (r *receiver) SetDown(down bool) { r.mu.Lock(); r.down = down; r.mu.Unlock() }

var digestHead = regexp.MustCompile(`^\*purchasesync\*: (\d+) discrepanc(?:y|ies) on site \*([^*]+)\*`)

// Written is how many discrepancies the received digests reported, per site
// (sinktest.Destination).
func (r *receiver) Written() map[string]int {
	out := map[string]int{}
	for _, m := range r.messages() {
		if g := digestHead.FindStringSubmatch(m); g != nil {
			n, _ := strconv.Atoi(g[1])
			out[g[2]] += n
		}
	}
	return out
}

func TestDigestsPerSiteAtMostOncePerInterval(t *testing.T) {
	topics := schemas.Topics{Prefix: "t."}
	topic := topics.Name(schemas.TopicDiscrepancies)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, _ := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	defer cl.Close()
	produce := func(site, order, field, sf, sh string) {
		kind := schemas.KindFieldMismatch
		if field == "" {
			kind = schemas.KindWebhookMissing
		}
		b, _ := schemas.MarshalDiscrepancy(&schemas.Discrepancy{Site: site, OrderNumber: order, Kind: kind, Field: field,
			StorefrontValue: sf, ShopifyValue: sh, DetectedAt: time.Now()})
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Key: []byte(site + "/" + order), Value: b}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		produce("acme", "10"+string(rune('0'+i)), "email", "jane.doe@example.com", "jdoe@example.com")
	}
	produce("acme", "200", "subtotal", "10.00", "12.50")
	produce("acme", "201", "", "", "")
	produce("beta", "300", "shipping_zip", "94107", "94110")

	rcv := &receiver{failNext: 1}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	cfg := DefaultConfig()
	cfg.URL, cfg.Topics, cfg.Group, cfg.Interval, cfg.RetryInitial = srv.URL+"/hooks/T000/B000/secret", topics, "n", 2*time.Second, 10*time.Millisecond
	n, err := New(cfg, Deps{KafkaOpts: []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, Registerer: prometheus.NewRegistry(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() { cancel(); <-done }()

	wait := func(count int) []string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for len(rcv.messages()) < count {
			if time.Now().After(deadline) {
				t.Fatalf("got %d messages, want %d: %q", len(rcv.messages()), count, rcv.messages())
			}
			time.Sleep(20 * time.Millisecond)
		}
		return rcv.messages()
	}
	msgs := wait(2)
	first := time.Now()
	var acme, beta string
	for _, m := range msgs {
		switch {
		case strings.Contains(m, "*acme*"):
			acme = m
		case strings.Contains(m, "*beta*"):
			beta = m
		}
	}
	if !strings.Contains(acme, "7 discrepancies") || !strings.Contains(acme, "• email: 5") || !strings.Contains(acme, "• subtotal: 1") ||
		!strings.Contains(acme, "• webhook_missing: 1") || strings.Count(acme, "• order ") != 3 {
		t.Errorf("acme digest:\n%s", acme)
	}
	if !strings.Contains(beta, "1 discrepancy on site") || !strings.Contains(beta, "`94***`") {
		t.Errorf("beta digest:\n%s", beta)
	}
	fullEmail := regexp.MustCompile(`[A-Za-z0-9._%+-]{2,}@`)
	for _, m := range msgs {
		if fullEmail.MatchString(m) {
			t.Errorf("a message shows a full email address:\n%s", m)
		}
	}

	// More for acme right away: nothing until the interval has passed.
	produce("acme", "400", "currency", "USD", "EUR")
	time.Sleep(time.Second)
	if got := len(rcv.messages()); got != 2 {
		t.Fatalf("%d messages within the interval, want still 2", got)
	}
	msgs = wait(3)
	if since := time.Since(first); since < cfg.Interval-200*time.Millisecond {
		t.Errorf("second acme message after %s, within the %s interval", since, cfg.Interval)
	}
	if !strings.Contains(msgs[2], "*acme*") || !strings.Contains(msgs[2], "1 discrepancy") || !strings.Contains(msgs[2], "currency") {
		t.Errorf("second acme digest:\n%s", msgs[2])
	}
	// Everything delivered: all offsets committed.
	deadline := time.Now().Add(5 * time.Second)
	for {
		offs, err := kadm.NewClient(cl).FetchOffsets(context.Background(), "n")
		var total int64
		if err == nil {
			offs.Each(func(o kadm.OffsetResponse) { total += o.At })
		}
		if total == 9 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("committed %d offsets, want 9", total)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A site's undelivered digest holds back its partition's commit.
func TestCommitStopsAtUndeliveredDigest(t *testing.T) {
	n := &Notifier{cfg: DefaultConfig(), topic: "t", sites: map[string]*siteState{}, consumed: map[int32]kgo.EpochOffset{}, now: time.Now}
	n.consumed[0] = kgo.EpochOffset{Offset: 50}
	n.consumed[1] = kgo.EpochOffset{Offset: 70}
	n.sites["acme"] = &siteState{parts: map[int32]*partDigest{0: {first: 12}}}
	offs := n.commitOffsets(nil)["t"]
	if offs[0].Offset != 12 || offs[1].Offset != 70 {
		t.Fatalf("commit offsets = %v, want partition 0 at 12 and 1 at 70", offs)
	}
}

// TestDigestEscapesMarkup: order numbers and values come from storefront
// events; in a digest they cannot ping a channel, make a link or leave
// their code span (L1 of the security review).
func TestDigestEscapesMarkup(t *testing.T) {
	n := &Notifier{cfg: DefaultConfig()}
	s := &siteState{parts: map[int32]*partDigest{0: {counts: map[string]int{"email": 1, "webhook_missing": 1}, since: time.Unix(0, 0),
		examples: []example{
			{order: "<!channel>", field: "email", storefront: "a`<https://evil.example|click>`", shopify: "b&c"},
			{order: "<@U123>", field: "webhook_missing"},
		}}}}
	got := n.digest("acme", s, time.Unix(60, 0))
	for _, bad := range []string{"<!channel>", "<https://", "<@U123>", "a`"} {
		if strings.Contains(got, bad) {
			t.Errorf("digest contains %q:\n%s", bad, got)
		}
	}
	for _, want := range []string{"&lt;!channel&gt;", "&lt;@U123&gt;", "b&amp;c"} {
		if !strings.Contains(got, want) {
			t.Errorf("digest lacks %q:\n%s", want, got)
		}
	}
}
