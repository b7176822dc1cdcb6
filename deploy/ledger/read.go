package ledger

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
	chsink "purchasesync/sinks/clickhouse"
)

// observed is the pipeline's outcome for the run's sites.
type observed struct {
	seen      map[string]*seen           // site/order_number → raw_events
	rows      map[string]*row            // site/order_number → purchases FINAL
	discs     map[string]map[string]bool // site/order_number → kind|field
	kafkaRegs map[string]int             // site/order_number → version-1 records; nil: not read
	byOrderID map[string][]string        // shopify_order_id → site/order_number of its rows
}

// reader reads the outcome from ClickHouse.
type reader struct {
	conn  driver.Conn
	sites string // the IN list of the run's sites
}

func openReader(cfg Config) (*reader, error) {
	conn, err := chsink.Open(cfg.ClickHouse, cfg.ClickHouse.Database)
	if err != nil {
		return nil, fmt.Errorf("ledger: cannot open ClickHouse (-clickhouse.addr): %w", err)
	}
	if err := conn.Ping(context.Background()); err != nil {
		conn.Close()
		return nil, fmt.Errorf("ledger: ClickHouse (-clickhouse.addr): %w", err)
	}
	var quoted []string
	for _, m := range modes {
		quoted = append(quoted, "'"+siteName(cfg.RunID, m)+"'")
	}
	return &reader{conn: conn, sites: strings.Join(quoted, ",")}, nil
}

func (r *reader) close() { r.conn.Close() }

// read takes one snapshot of the outcome.
func (r *reader) read(ctx context.Context) (*observed, error) {
	obs := &observed{seen: map[string]*seen{}, rows: map[string]*row{}, discs: map[string]map[string]bool{}, byOrderID: map[string][]string{}}
	rs, err := r.conn.Query(ctx, `SELECT site, order_number, toString(source), count(), min(received_at), max(received_at)
FROM raw_events WHERE site IN (`+r.sites+`) GROUP BY site, order_number, source`)
	if err != nil {
		return nil, fmt.Errorf("ledger: reading raw_events: %w", err)
	}
	for rs.Next() {
		var site, num, source string
		var n uint64
		var lo, hi time.Time
		if err := rs.Scan(&site, &num, &source, &n, &lo, &hi); err != nil {
			rs.Close()
			return nil, fmt.Errorf("ledger: reading raw_events: %w", err)
		}
		k := schemas.Key(site, num)
		s := obs.seen[k]
		if s == nil {
			s = &seen{}
			obs.seen[k] = s
		}
		if source == "storefront" {
			s.sf, s.sfMin, s.sfMax = int(n), lo, hi
		} else {
			s.wh, s.whMin, s.whMax = int(n), lo, hi
		}
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("ledger: reading raw_events: %w", err)
	}

	rs, err = r.conn.Query(ctx, `SELECT site, order_number, registered_via, matched, test, ifNull(toString(subtotal), ''), currency, ifNull(shopify_order_id, '')
FROM purchases FINAL WHERE site IN (`+r.sites+`)`)
	if err != nil {
		return nil, fmt.Errorf("ledger: reading purchases: %w", err)
	}
	for rs.Next() {
		var site, num string
		var matched, test uint8
		w := &row{}
		if err := rs.Scan(&site, &num, &w.via, &matched, &test, &w.subtotal, &w.currency, &w.orderID); err != nil {
			rs.Close()
			return nil, fmt.Errorf("ledger: reading purchases: %w", err)
		}
		w.matched, w.test = matched == 1, test == 1
		k := schemas.Key(site, num)
		obs.rows[k] = w
		if w.orderID != "" {
			obs.byOrderID[w.orderID] = append(obs.byOrderID[w.orderID], k)
		}
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("ledger: reading purchases: %w", err)
	}

	rs, err = r.conn.Query(ctx, `SELECT site, order_number, kind, field FROM discrepancies FINAL WHERE site IN (`+r.sites+`)`)
	if err != nil {
		return nil, fmt.Errorf("ledger: reading discrepancies: %w", err)
	}
	for rs.Next() {
		var site, num, kind, field string
		if err := rs.Scan(&site, &num, &kind, &field); err != nil {
			rs.Close()
			return nil, fmt.Errorf("ledger: reading discrepancies: %w", err)
		}
		k := schemas.Key(site, num)
		if obs.discs[k] == nil {
			obs.discs[k] = map[string]bool{}
		}
		obs.discs[k][kind+"|"+field] = true
	}
	rs.Close()
	return obs, rs.Err()
}

// counts is a fingerprint of a snapshot: when it stops changing, the
// pipeline is done with the run.
func (o *observed) counts() [5]int {
	var c [5]int
	for _, s := range o.seen {
		c[0] += s.sf
		c[1] += s.wh
	}
	c[2] = len(o.rows)
	for _, r := range o.rows {
		if r.matched {
			c[3]++
		}
	}
	for _, d := range o.discs {
		c[4] += len(d)
	}
	return c
}

// settle waits until the outcome can be complete (the last webhook's grace
// and, when checked, the last storefront registration's webhook wait have
// passed), then until ClickHouse holds every acknowledged event and a
// purchase for each, and nothing has changed for three reads in a row, or
// until cfg.Settle. It returns the last snapshot.
func (r *reader) settle(ctx context.Context, cfg Config, orders []*order, lastSent time.Time) (*observed, time.Duration, error) {
	began := time.Now()
	until := lastSent.Add(cfg.Grace + 3*time.Second)
	if cfg.WebhookWait > 0 {
		until = lastSent.Add(max(cfg.Grace, cfg.WebhookWait) + 3*time.Second)
	}
	acked := 0
	for _, o := range orders {
		if o.whAcked || ackedSF(o) {
			acked++
		}
	}
	bar := newProgress(cfg.Progress, cfg.Terminal, "waiting")
	var obs *observed
	var status string
	have := 0
	stop := bar.every(func() string { return status })
	defer func() { stop(status) }()
	status = fmt.Sprintf("for the grace and webhook wait to pass (until %s)", until.Format("15:04:05"))
	sleep(ctx, time.Until(until))
	var prev [5]int
	stable := 0
	deadline := time.Now().Add(cfg.Settle)
	for ctx.Err() == nil {
		snap, err := r.read(ctx)
		if err != nil {
			// ClickHouse may be restarting (the chaos run kills it too).
			status = fmt.Sprintf("%s ClickHouse: %v", bar.bar(have, acked), oneLine(err))
		} else {
			obs = snap
			have = 0
			for _, o := range orders {
				k := schemas.Key(o.site, o.key)
				s, w := obs.seen[k], obs.rows[k]
				if (o.whAcked || ackedSF(o)) && s != nil && w != nil && (!o.whAcked || s.wh > 0) && (!ackedSF(o) || s.sf > 0) {
					have++
				}
			}
			status = bar.bar(have, acked) + " acknowledged orders in ClickHouse"
			c := obs.counts()
			if c == prev {
				stable++
			} else {
				stable = 0
			}
			prev = c
			if have == acked && stable >= 2 {
				break
			}
		}
		if time.Now().After(deadline) {
			break
		}
		sleep(ctx, 2*time.Second)
	}
	if obs == nil {
		return nil, 0, fmt.Errorf("ledger: ClickHouse could not be read within -settle")
	}
	if cfg.Kafka != nil {
		regs, err := countRegistrations(ctx, cfg)
		if err != nil {
			return nil, 0, err
		}
		obs.kafkaRegs = regs
	}
	return obs, time.Since(began), ctx.Err()
}

func ackedSF(o *order) bool {
	for _, a := range o.sf {
		if a.code == 202 {
			return true
		}
	}
	return false
}

// countRegistrations counts the version-1 records of purchases.v1 per key
// of the run's sites (read_committed, from the start).
func countRegistrations(ctx context.Context, cfg Config) (map[string]int, error) {
	topic := cfg.Topics.Name(schemas.TopicPurchases)
	opts := append(append([]kgo.Opt(nil), cfg.Kafka...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("ledger: Kafka: %w", err)
	}
	defer cl.Close()
	prefix := "ledger-" + cfg.RunID + "-"
	regs := map[string]int{}
	for idle := 0; idle < 2; {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if fs.NumRecords() == 0 {
			idle++
			continue
		}
		idle = 0
		for it := fs.RecordIter(); !it.Done(); {
			rec := it.Next()
			if !strings.HasPrefix(string(rec.Key), prefix) {
				continue
			}
			p, err := schemas.UnmarshalPurchase(rec.Value)
			if err != nil {
				return nil, fmt.Errorf("ledger: a record of %s does not decode: %w", topic, err)
			}
			if p.Version == 1 {
				regs[string(rec.Key)]++
			}
		}
	}
	return regs, nil
}

func oneLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	return s
}
