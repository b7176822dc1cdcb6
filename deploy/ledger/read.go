package ledger

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"sync"
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
	kafka     map[string]*kafkaFacts     // site/order_number → output topics; nil: not read
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

// facts gathers what the snapshot holds of one order.
func (o *observed) facts(ord *order) facts {
	k := schemas.Key(ord.site, ord.key)
	f := facts{seen: o.seen[k], row: o.rows[k], discs: o.discs[k]}
	if o.kafka != nil {
		f.kafka = o.kafka[k]
		if f.kafka == nil {
			f.kafka = &kafkaFacts{}
		}
	}
	return f
}

// wrong counts the orders the snapshot judges wrong.
func (o *observed) wrong(orders []*order, ru rules) int {
	n := 0
	for _, ord := range orders {
		if len(judge(ord, o.facts(ord), ru).findings) > 0 {
			n++
		}
	}
	return n
}

// stableFor is how long a snapshot that still judges orders wrong must stay
// the same before the check gives up waiting and reports it.
const stableFor = 30 * time.Second

// settle waits until the outcome can be complete (the last order's grace
// and webhook wait passed; with WaitFor, the faults over), then reads
// ClickHouse every two seconds until every order is judged right, or the
// snapshot has not changed for stableFor, or cfg.Settle has passed. It
// returns the last snapshot with the output topics' facts.
func (r *reader) settle(ctx context.Context, cfg Config, orders []*order, lastSent time.Time) (*observed, time.Duration, error) {
	began := time.Now()
	until := lastSent.Add(max(cfg.Grace, cfg.WebhookWait) + 3*time.Second)
	bar := newProgress(cfg.Progress, cfg.Terminal, "waiting")
	var status statusLine
	stop := bar.every(status.get)
	defer func() { stop(status.get()) }()
	status.set(fmt.Sprintf("for the grace and webhook wait to pass (until %s)", until.Format("15:04:05")))
	sleep(ctx, time.Until(until))
	if cfg.WaitFor != "" {
		status.set("for " + cfg.WaitFor + " (-waitFor: the faults are not over yet)")
		for ctx.Err() == nil {
			if _, err := os.Stat(cfg.WaitFor); err == nil {
				break
			}
			sleep(ctx, time.Second)
		}
	}
	ru := cfg.rules()
	var obs *observed
	var prev [6]int
	stableSince, stable := time.Now(), 0
	deadline := time.Now().Add(cfg.Settle)
	for ctx.Err() == nil {
		snap, err := r.read(ctx)
		if err != nil {
			// ClickHouse may be restarting (the chaos run kills it too).
			status.set("ClickHouse: " + oneLine(err))
		} else {
			obs = snap
			wrong := obs.wrong(orders, ru)
			c := obs.counts()
			fp := [6]int{c[0], c[1], c[2], c[3], c[4], wrong}
			if fp == prev {
				stable++
			} else {
				stable, stableSince = 0, time.Now()
			}
			prev = fp
			status.set(fmt.Sprintf("%s orders judged right so far", bar.bar(len(orders)-wrong, len(orders))))
			if (wrong == 0 && stable >= 2) || time.Since(stableSince) >= stableFor {
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
		status.set("reading purchases.v1 and discrepancies.v1")
		kf, err := readKafka(ctx, cfg)
		if err != nil {
			return nil, 0, err
		}
		if len(kf) == 0 && len(obs.rows) > 0 {
			return nil, 0, fmt.Errorf("ledger: %s holds nothing of the run's sites, though ClickHouse does: is -kafka.topicPrefix the pipeline's?",
				cfg.Topics.Name(schemas.TopicPurchases))
		}
		obs.kafka = kf
	}
	return obs, time.Since(began), ctx.Err()
}

// statusLine is the progress bar's text, written by the wait loop and read
// by the bar's goroutine.
type statusLine struct {
	mu sync.Mutex
	s  string
}

func (l *statusLine) set(s string) {
	l.mu.Lock()
	l.s = s
	l.mu.Unlock()
}

func (l *statusLine) get() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s
}

// readKafka reads purchases.v1 and discrepancies.v1 from the start
// (read_committed) and gathers, per key of the run's sites, every version of
// its purchase and every discrepancy record. It is called once ClickHouse
// holds the outcome, so the topics hold it too: it stops after three
// five-second polls in a row bring nothing.
func readKafka(ctx context.Context, cfg Config) (map[string]*kafkaFacts, error) {
	purchases, discrepancies := cfg.Topics.Name(schemas.TopicPurchases), cfg.Topics.Name(schemas.TopicDiscrepancies)
	opts := append(append([]kgo.Opt(nil), cfg.Kafka...), kgo.ConsumeTopics(purchases, discrepancies),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("ledger: Kafka: %w", err)
	}
	defer cl.Close()
	prefix := "ledger-" + cfg.RunID + "-"
	out := map[string]*kafkaFacts{}
	get := func(k string) *kafkaFacts {
		f := out[k]
		if f == nil {
			f = &kafkaFacts{vias: map[string]bool{}, values: map[string]bool{}, discs: map[string]int{}}
			out[k] = f
		}
		return f
	}
	for idle := 0; idle < 3; {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		for _, fe := range fs.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) && !errors.Is(fe.Err, context.Canceled) {
				return nil, fmt.Errorf("ledger: reading %s: %w", fe.Topic, fe.Err)
			}
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
			if rec.Topic == discrepancies {
				d, err := schemas.UnmarshalDiscrepancy(rec.Value)
				if err != nil {
					return nil, fmt.Errorf("ledger: a record of %s does not decode: %w", rec.Topic, err)
				}
				get(string(rec.Key)).discs[d.Kind+"|"+d.Field]++
				continue
			}
			p, err := schemas.UnmarshalPurchase(rec.Value)
			if err != nil {
				return nil, fmt.Errorf("ledger: a record of %s does not decode: %w", rec.Topic, err)
			}
			f := get(string(rec.Key))
			if p.Version == 1 {
				f.registrations++
			}
			f.vias[p.RegisteredVia] = true
			f.values[normDecimal(p.Subtotal)+" "+strings.ToUpper(p.Currency)] = true
		}
	}
	return out, nil
}

// normDecimal spells equal amounts alike ("12.50" and "12.5000").
func normDecimal(s string) string {
	x, ok := new(big.Rat).SetString(strings.TrimSpace(s))
	if !ok {
		return s
	}
	return x.RatString()
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
