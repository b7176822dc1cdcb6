package joinbench

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/ingest/ingesttest"
	"purchasesync/schemas"
)

// Constants of the records the ingest would have written for the backlog.
const (
	apiVersion = "2025-10"
	userAgent  = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)

// BenchSites are the backlog's sites: bench-00 … in the default order_id
// mode, each with the grace and Purchase Syncing on, each its own shop.
func BenchSites(cfg Config) []schemas.Site {
	out := make([]schemas.Site, cfg.Sites)
	for i := range out {
		slug := fmt.Sprintf("bench-%02d", i)
		out[i] = schemas.Site{Site: slug, ShopDomain: slug + ".myshopify.com", OrderKey: schemas.OrderKeyID,
			PurchaseSyncing: true, Grace: schemas.Duration(cfg.Grace)}
	}
	return out
}

// event is one record of the backlog, before it is built: the backlog is
// planned as these (16 bytes each), sorted by received-at, and the records
// are built from them chunk by chunk, so that a million orders never sit
// in memory as bodies.
type event struct {
	at         int64 // received-at, Unix nanoseconds
	order      int32
	storefront bool
}

// shape is the per-order randomness the plan needs: whether the order has
// a storefront event and how long after its webhook it was received. It
// has its own random stream (odd stream ids), apart from the purchase's
// (even), so that building an order's records needs no other order.
func shape(cfg Config, order int) (both bool, delay time.Duration) {
	rng := rand.New(rand.NewPCG(cfg.Seed, uint64(order)<<1|1))
	if rng.Float64() >= cfg.BothShare {
		return false, 0
	}
	if rng.Float64() < cfg.LateShare {
		// After the hold ends: between one and five graces late.
		g := max(cfg.Grace, time.Second)
		return true, g + time.Duration(rng.Int64N(int64(4*g)+1))
	}
	span := int64(cfg.StorefrontLatest - cfg.StorefrontEarliest)
	return true, cfg.StorefrontEarliest + time.Duration(rng.Int64N(span+1))
}

// timeline gives the webhooks' received-at stamps: one every
// 1/OrdersPerSecond, ending early enough that every stamp of the backlog
// (storefront events included) is at most end.
type timeline struct {
	start time.Time
	step  time.Duration
}

func newTimeline(cfg Config, end time.Time) timeline {
	step := time.Duration(float64(time.Second) / cfg.OrdersPerSecond)
	latest := max(cfg.StorefrontLatest, 5*max(cfg.Grace, time.Second), 0)
	return timeline{start: end.Add(-time.Duration(cfg.Orders)*step - latest), step: step}
}

func (t timeline) webhookAt(order int) time.Time { return t.start.Add(time.Duration(order) * t.step) }

// plan lists the backlog's records in received-at order (the order the
// ingest wrote them in); ties keep webhooks first.
func plan(cfg Config, tl timeline) []event {
	evs := make([]event, 0, cfg.Orders+int(float64(cfg.Orders)*cfg.BothShare*1.01)+16)
	for i := range cfg.Orders {
		at := tl.webhookAt(i)
		evs = append(evs, event{at: at.UnixNano(), order: int32(i)})
		if both, delay := shape(cfg, i); both {
			evs = append(evs, event{at: at.Add(delay).UnixNano(), order: int32(i), storefront: true})
		}
	}
	slices.SortStableFunc(evs, func(a, b event) int {
		switch {
		case a.at < b.at:
			return -1
		case a.at > b.at:
			return 1
		}
		return 0
	})
	return evs
}

// purchase renders order number order of the backlog: site round-robin, a
// body of 1 to 3 line items, trimmed unless it is one of the full ones,
// and maybe a storefront drift. Its Shopify timestamps precede its
// received-at by Shopify's usual second or two.
func purchase(cfg Config, tl timeline, order int) (ingesttest.Purchase, int) {
	rng := rand.New(rand.NewPCG(cfg.Seed, uint64(order)<<1))
	p := ingesttest.NewPurchase(rng, int64(order), 1+rng.IntN(3))
	p.Trimmed = rng.Float64() >= cfg.FullBodyShare
	p.Drift = ""
	if rng.Float64() < cfg.MismatchShare {
		p.Drift = ingesttest.Drifts[rng.IntN(len(ingesttest.Drifts))]
	}
	p.CreatedAt = tl.webhookAt(order).Add(-time.Duration(1+rng.IntN(2)) * time.Second).Truncate(time.Second)
	return p, order % cfg.Sites
}

// buildRecord builds one record exactly as the ingest writes it: the key
// its router computes, the body, and the headers of schemas' builders in
// the ingest's order with received-at last. Its timestamp is its
// received-at, as if the ingest had produced it then.
func buildRecord(cfg Config, topics schemas.Topics, sites []schemas.Site, tl timeline, ev event) *kgo.Record {
	p, si := purchase(cfg, tl, int(ev.order))
	site := sites[si]
	at := time.Unix(0, ev.at).UTC()
	received := schemas.AppendReceivedAt(nil, at)
	key := []byte(p.Key(site.Site, site.OrderKey))
	if ev.storefront {
		hs, n := schemas.StorefrontHeaderList[kgo.RecordHeader](&schemas.StorefrontHeaders{
			Site:       []byte(site.Site),
			ClientIP:   []byte(p.BrowserIP),
			UserAgent:  []byte(userAgent),
			Origin:     []byte("https://" + site.ShopDomain),
			ReceivedAt: received,
		})
		return &kgo.Record{Topic: topics.Name(schemas.TopicStorefrontPurchases), Key: key,
			Value: p.StorefrontBody(site.OrderKey), Headers: hs[:n:n], Timestamp: at}
	}
	var ids [32]byte
	binary.LittleEndian.PutUint64(ids[0:], p.ID)
	binary.LittleEndian.PutUint64(ids[8:], cfg.Seed)
	binary.LittleEndian.PutUint64(ids[16:], p.CustomerID)
	binary.LittleEndian.PutUint64(ids[24:], uint64(ev.order))
	hs, n := schemas.WebhookHeaderList[kgo.RecordHeader](&schemas.WebhookHeaders{
		ShopDomain:  []byte(site.ShopDomain),
		WebhookID:   []byte(uuid(ids[0:16])),
		EventID:     []byte(uuid(ids[16:32])),
		Topic:       []byte(schemas.WebhookOrdersCreate),
		APIVersion:  []byte(apiVersion),
		TriggeredAt: []byte(p.CreatedAt.Format(time.RFC3339Nano)),
		ReceivedAt:  received,
	})
	return &kgo.Record{Topic: topics.Name(schemas.TopicShopifyOrders), Key: key,
		Value: p.OrderBody(), Headers: hs[:n:n], Timestamp: at}
}

func uuid(b []byte) string {
	h := hex.EncodeToString(b[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// recordBytes is a record's size as the benchmark counts it: key, value
// and headers (names and values), as Kafka stores them before batching.
func recordBytes(r *kgo.Record) int {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// FillStats says what Fill wrote.
type FillStats struct {
	Orders, Webhooks, Storefront int
	Bytes                        int64
	FirstAt, LastAt              time.Time // received-at span
	Took                         time.Duration
}

// Records is the number of records written.
func (s FillStats) Records() int { return s.Webhooks + s.Storefront }

// MeanRecordBytes is the mean record size (recordBytes).
func (s FillStats) MeanRecordBytes() float64 {
	if s.Records() == 0 {
		return 0
	}
	return float64(s.Bytes) / float64(s.Records())
}

// fillChunk is how many records one worker builds at a time.
const fillChunk = 2048

// Fill writes the backlog to the raw topics under topics, in received-at
// order, with stamps ending at end. Records are built on several
// goroutines a chunk at a time and produced in order (acks=all,
// idempotent, the compression of cfg).
func Fill(ctx context.Context, cl *kgo.Client, cfg Config, topics schemas.Topics, end time.Time) (FillStats, error) {
	start := time.Now()
	tl := newTimeline(cfg, end)
	evs := plan(cfg, tl)
	sites := BenchSites(cfg)
	chunks := (len(evs) + fillChunk - 1) / fillChunk
	built := make([]chan []*kgo.Record, chunks)
	for i := range built {
		built[i] = make(chan []*kgo.Record, 1)
	}
	// Building runs at most a few chunks ahead of producing: memory stays
	// at a few MB whatever the backlog's size.
	ahead := make(chan struct{}, 2*runtime.GOMAXPROCS(0))
	bctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	// On an early return: stop dispatching, then wait for the builders
	// (their channels are buffered, so none blocks).
	defer func() { cancel(); wg.Wait() }()
	wg.Go(func() {
		for i := range chunks {
			select {
			case ahead <- struct{}{}:
			case <-bctx.Done():
				return
			}
			wg.Go(func() {
				part := evs[i*fillChunk : min((i+1)*fillChunk, len(evs))]
				recs := make([]*kgo.Record, len(part))
				for j, ev := range part {
					recs[j] = buildRecord(cfg, topics, sites, tl, ev)
				}
				built[i] <- recs
			})
		}
	})

	var failed atomic.Pointer[error]
	done := func(r *kgo.Record, err error) {
		if err != nil {
			failed.CompareAndSwap(nil, &err)
		}
	}
	st := FillStats{Orders: cfg.Orders}
	for i := range chunks {
		var recs []*kgo.Record
		select {
		case recs = <-built[i]:
		case <-ctx.Done():
			return st, ctx.Err()
		}
		for _, r := range recs {
			if r.Topic == topics.Name(schemas.TopicStorefrontPurchases) {
				st.Storefront++
			} else {
				st.Webhooks++
			}
			st.Bytes += int64(recordBytes(r))
			cl.Produce(ctx, r, done)
		}
		<-ahead
		if errp := failed.Load(); errp != nil {
			return st, fmt.Errorf("cannot write the backlog: %w", *errp)
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return st, fmt.Errorf("cannot flush the backlog: %w", err)
	}
	if errp := failed.Load(); errp != nil {
		return st, fmt.Errorf("cannot write the backlog: %w", *errp)
	}
	if len(evs) > 0 {
		st.FirstAt, st.LastAt = time.Unix(0, evs[0].at).UTC(), time.Unix(0, evs[len(evs)-1].at).UTC()
	}
	st.Took = time.Since(start)
	return st, nil
}
