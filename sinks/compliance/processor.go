package compliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
	"purchasesync/schemas/health"
	"purchasesync/schemas/retry"
	"purchasesync/sinks/internal/chschema"
)

// SiteLookup finds a shop's site (processors/sites.Registry).
type SiteLookup interface {
	ByShop(domain string) (schemas.Site, bool)
}

// Processor carries out privacy requests.
type Processor struct {
	cfg      Config
	conn     driver.Conn
	replicas []driver.Conn
	sites    SiteLookup
	opts     []kgo.Opt
	log      *slog.Logger
	m        *metrics

	settings clickhouse.Settings // the sink's insert settings, chosen at the first insert
	probed   bool

	// Readiness through outages, and commits that failed.
	health    *health.Health
	kafka, ch *health.Dep
	owed      health.Uncommitted
	commitBo  retry.Backoff // between retries of owed commits; Run's goroutine
	owedRetry time.Time     // when to commit owed offsets again
}

// New builds a processor.
func New(cfg Config, deps Deps) (*Processor, error) {
	cfg = cfg.withGroup()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Conn == nil || deps.Sites == nil {
		return nil, errors.New("compliance: Conn and Sites are required")
	}
	reg := deps.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	replicas := deps.Replicas
	if len(replicas) == 0 {
		replicas = []driver.Conn{deps.Conn}
	}
	p := &Processor{cfg: cfg, conn: deps.Conn, replicas: replicas, sites: deps.Sites, opts: deps.KafkaOpts, log: log, m: newMetrics(reg)}
	p.commitBo = retry.Backoff{Initial: cfg.RetryInitial, Max: cfg.RetryMax}
	p.health = health.New("compliance processor", "compliance_", reg, log)
	p.kafka, p.ch = p.health.Dep("Kafka"), p.health.Dep("ClickHouse")
	p.health.Starting("not consuming yet (joining consumer group " + cfg.Group + ")")
	return p, nil
}

// Ready reports nil while the processor consumes normally, and why not
// before it first joined its consumer group, during a Kafka outage episode
// (unreachable, a lost group session, failed commits) and while requests
// fail (ClickHouse unreachable or failing).
func (p *Processor) Ready() error { return p.health.Err() }

// Run consumes compliance.v1 until ctx ends. A record's offset is committed
// only after its request completed (or was found unreadable). Kafka and
// ClickHouse outages never end it: requests are retried, and so are
// commits (a failed one stays owed, carried by the next commit or retried
// after a backoff; dropped only for partitions this member lost, whose next
// owner redoes the request, which is harmless).
func (p *Processor) Run(ctx context.Context) error {
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, p.opts...),
		kgo.ConsumerGroup(p.cfg.Group),
		kgo.ConsumeTopics(p.cfg.Topics.Name(schemas.TopicCompliance)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.FetchMaxWait(time.Second),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			p.kafka.OK("group")
			p.health.Started()
		}),
		kgo.OnPartitionsRevoked(p.revoked),
		kgo.OnPartitionsLost(p.lost),
	)...)
	if err != nil {
		return fmt.Errorf("compliance: cannot create Kafka consumer: %w", err)
	}
	defer cl.Close()
	pctx, stopProbes := context.WithCancel(ctx)
	var probes sync.WaitGroup
	timeout := max(p.cfg.HealthInterval, 5*time.Second)
	probes.Go(func() { p.kafka.Probe(pctx, p.cfg.HealthInterval, timeout, cl.Ping) })
	probes.Go(func() { p.ch.Probe(pctx, p.cfg.HealthInterval, timeout, p.conn.Ping) })
	defer probes.Wait()
	defer stopProbes()
	for {
		fs := p.poll(ctx, cl)
		if ctx.Err() != nil {
			return nil
		}
		p.kafka.Fetches(fs)
		var recs []*kgo.Record
		fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
		for _, r := range recs {
			if err := p.handleWithRetry(ctx, r); err != nil {
				return nil // ctx ended; the record stays uncommitted
			}
			p.commit(ctx, cl, health.OffsetsOf([]*kgo.Record{r}))
		}
		if len(recs) == 0 && p.owed.Len() > 0 && !time.Now().Before(p.owedRetry) {
			p.commit(ctx, cl, nil)
		}
	}
}

// poll waits for records, or, while commits are owed, until they are to be
// retried.
func (p *Processor) poll(ctx context.Context, cl *kgo.Client) kgo.Fetches {
	if p.owed.Len() == 0 {
		return cl.PollFetches(ctx)
	}
	pctx, cancel := context.WithDeadline(ctx, p.owedRetry)
	defer cancel()
	return cl.PollFetches(pctx)
}

// commit commits the offsets of completed requests with those earlier
// commits failed to commit; a failure leaves them owed.
func (p *Processor) commit(ctx context.Context, cl *kgo.Client, offsets health.Offsets) {
	offs := p.owed.With(offsets)
	if len(offs) == 0 {
		return
	}
	if err := health.Commit(ctx, cl, offs); err != nil {
		p.owed.Failed(offs)
		p.owedRetry = time.Now().Add(p.commitBo.Next())
		if ctx.Err() == nil {
			p.kafka.Fail("commit", fmt.Errorf("%w (the requests are done; retrying the commit)", err))
		}
		return
	}
	p.owed.Committed(offs)
	p.commitBo.Reset()
	if p.owed.Len() == 0 {
		p.kafka.OK("commit")
	}
}

// revoked commits what is owed for the revoked partitions, once; lost
// drops it (another member may own them already). Either way the next
// owner redoes what stays uncommitted.
func (p *Processor) revoked(ctx context.Context, cl *kgo.Client, parts map[string][]int32) {
	if owed := p.owed.Take(parts); len(owed) > 0 {
		_ = health.Commit(ctx, cl, owed)
	}
	if p.owed.Len() == 0 {
		p.kafka.OK("commit")
	}
}

func (p *Processor) lost(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
	p.owed.Take(parts)
	if p.owed.Len() == 0 {
		p.kafka.OK("commit")
	}
}

// RequestRef identifies one request in compliance_requests.
type RequestRef struct {
	// ID must be the same each time the request is carried out (e.g. after
	// a crash): the Kafka position of its compliance.v1 record.
	ID string
	// ReceivedAt is when ingest accepted the webhook (the record's
	// timestamp); the zero time means now.
	ReceivedAt time.Time
}

// RefOf is the RequestRef of a compliance.v1 record: topic/partition/offset.
func RefOf(r *kgo.Record) RequestRef {
	return RequestRef{ID: fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset), ReceivedAt: r.Timestamp}
}

// handleWithRetry carries out r's request, retrying until it completes or
// ctx ends. It logs the request once when received and once when
// completed; a failing request is an outage episode of ClickHouse (one line
// when it starts failing, one when it completes), not a line per retry.
func (p *Processor) handleWithRetry(ctx context.Context, r *kgo.Record) error {
	wh := schemas.ParseWebhookHeaders(r.Headers)
	topic := string(wh.Topic)
	ref := RefOf(r)
	if ref.ReceivedAt.IsZero() {
		ref.ReceivedAt = time.Now() // the same for every retry
	}
	req, err := schemas.ParseComplianceRequest(topic, r.Value)
	if err != nil {
		// Signed by Shopify but unreadable: retrying cannot help.
		p.m.requests.WithLabelValues(topicLabel(topic), "invalid").Inc()
		p.log.Error("compliance: unreadable request skipped", "topic", topic, "shop_domain", string(r.Key), "offset", r.Offset,
			"err", &InvalidRequestError{Err: err})
		return nil
	}
	attrs := p.received(topic, req)
	for attempt := 1; ; attempt++ {
		err := p.carryOut(ctx, ref, topic, req, attrs)
		if err == nil {
			p.ch.OK("request")
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p.m.requests.WithLabelValues(topicLabel(topic), "retried").Inc()
		p.ch.Fail("request", fmt.Errorf("privacy request %s (%s) failed; retrying: %w", ref.ID, topic, err))
		if err := retry.Sleep(ctx, retry.Delay(attempt, p.cfg.RetryInitial, p.cfg.RetryMax)); err != nil {
			return err
		}
	}
}

// InvalidRequestError is a request that can never be carried out (an
// unreadable body, an unknown topic): retrying cannot help.
type InvalidRequestError struct{ Err error }

func (e *InvalidRequestError) Error() string { return "invalid privacy request: " + e.Err.Error() }
func (e *InvalidRequestError) Unwrap() error { return e.Err }

// topicLabel keeps the metric label set closed.
func topicLabel(t string) string {
	switch t {
	case schemas.ComplianceCustomersRedact, schemas.ComplianceShopRedact, schemas.ComplianceCustomersDataRequest:
		return t
	}
	return "other"
}

// Handle carries out one request of topic (the webhook's X-Shopify-Topic)
// and returns once ClickHouse has applied it. The request is recorded in
// compliance_requests as received before it is carried out, and as completed
// after.
func (p *Processor) Handle(ctx context.Context, ref RequestRef, topic string, body []byte) error {
	req, err := schemas.ParseComplianceRequest(topic, body)
	if err != nil {
		return &InvalidRequestError{Err: err}
	}
	return p.carryOut(ctx, ref, topic, req, p.received(topic, req))
}

// received logs a request's arrival and returns its log attributes (never
// the email).
func (p *Processor) received(topic string, req *schemas.ComplianceRequest) []any {
	attrs := []any{"topic", topic, "shop_domain", req.ShopDomain}
	if req.Customer != nil && req.Customer.ID != "" {
		attrs = append(attrs, "customer_id", string(req.Customer.ID))
	}
	if req.DataRequest != nil {
		attrs = append(attrs, "data_request_id", string(req.DataRequest.ID))
	}
	p.log.Info("compliance request received", attrs...)
	return attrs
}

// carryOut is one attempt at a parsed request.
func (p *Processor) carryOut(ctx context.Context, ref RequestRef, topic string, req *schemas.ComplianceRequest, attrs []any) error {
	start := time.Now()
	if ref.ReceivedAt.IsZero() {
		ref.ReceivedAt = start
	}
	sites, err := p.sitesOf(ctx, req.ShopDomain)
	if err != nil {
		return err
	}
	if err := p.record(ctx, ref, topic, req.ShopDomain, sites, 0, time.Time{}); err != nil {
		return err
	}
	var n int
	switch topic {
	case schemas.ComplianceShopRedact:
		n, err = p.redactShop(ctx, req.ShopDomain, sites)
	case schemas.ComplianceCustomersRedact:
		n, err = p.redactCustomer(ctx, req, sites)
	case schemas.ComplianceCustomersDataRequest:
		n, err = p.report(ctx, req, sites)
	}
	if err != nil {
		return err
	}
	if err := p.record(ctx, ref, topic, req.ShopDomain, sites, n, time.Now()); err != nil {
		return err
	}
	p.m.requests.WithLabelValues(topic, "done").Inc()
	p.m.duration.WithLabelValues(topic).Observe(time.Since(start).Seconds())
	p.log.Info("compliance request completed", append(attrs, "sites", len(sites), "purchases", n, "took", time.Since(start).String())...)
	return nil
}

// record writes the request's row of compliance_requests: received
// (version 1) when completedAt is zero, else completed (version 2). Through
// a batch with a column list: Exec("INSERT … VALUES") hangs on 18.16.
func (p *Processor) record(ctx context.Context, ref RequestRef, topic, shop string, sites []schemas.Site, orders int, completedAt time.Time) error {
	status, version := "received", uint64(1)
	if !completedAt.IsZero() {
		status, version = "completed", 2
	} else {
		completedAt = time.Unix(0, 0)
	}
	if !p.probed {
		v, err := p.conn.ServerVersion()
		if err != nil {
			return fmt.Errorf("cannot read ClickHouse server version: %w", err)
		}
		p.settings, p.probed = chschema.InsertSettings(v), true
	}
	if len(p.settings) > 0 {
		ctx = clickhouse.Context(ctx, clickhouse.WithSettings(p.settings))
	}
	b, err := p.conn.PrepareBatch(ctx, "INSERT INTO compliance_requests (request_id, topic, shop_domain, sites, status, orders_affected, received_at, completed_at, version)", driver.WithReleaseConnection())
	if err == nil {
		if err = b.Append(ref.ID, topic, shop, siteNames(sites), status, uint64(orders), ref.ReceivedAt.UTC(), completedAt.UTC(), version); err == nil {
			err = b.Send()
		} else {
			_ = b.Abort()
		}
	}
	if err != nil {
		return fmt.Errorf("cannot record the privacy request as %s in compliance_requests: %w", status, err)
	}
	return nil
}

// sitesOf is every site that holds data of shop: the registry's, and those
// raw_events remember (a shop/redact comes 48 h after uninstall, when the
// site may be gone from the registry).
func (p *Processor) sitesOf(ctx context.Context, shop string) ([]schemas.Site, error) {
	found := map[string]schemas.Site{}
	if s, ok := p.sites.ByShop(shop); ok {
		found[s.Site] = s
	}
	rows, err := p.conn.Query(ctx, "SELECT DISTINCT site FROM raw_events WHERE shop_domain = ?", shop)
	if err != nil {
		return nil, fmt.Errorf("cannot find the sites of %s: %w", shop, err)
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("cannot find the sites of %s: %w", shop, err)
		}
		if _, ok := found[s]; !ok && s != "" {
			found[s] = schemas.Site{Site: s} // order_key unknown: matched by data only
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot find the sites of %s: %w", shop, err)
	}
	out := make([]schemas.Site, 0, len(found))
	for _, s := range found {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Site < out[j].Site })
	return out, nil
}

func siteNames(sites []schemas.Site) []string {
	out := make([]string, len(sites))
	for i, s := range sites {
		out[i] = s.Site
	}
	return out
}

func (p *Processor) redactShop(ctx context.Context, shop string, sites []schemas.Site) (int, error) {
	for _, s := range sites {
		for _, table := range chschema.Mutated {
			if err := p.mutate(ctx, table, "ALTER TABLE "+table+" DELETE WHERE site = ?", s.Site); err != nil {
				return 0, err
			}
		}
	}
	// Unrouted raw events of the shop carry no site.
	if err := p.mutate(ctx, chschema.RawEvents, "ALTER TABLE "+chschema.RawEvents+" DELETE WHERE shop_domain = ?", shop); err != nil {
		return 0, err
	}
	return 0, p.waitMutations(ctx)
}

// customerKeys returns site → order numbers of the customer's purchases.
func (p *Processor) customerKeys(ctx context.Context, req *schemas.ComplianceRequest, sites []schemas.Site, orderIDs []schemas.FlexString) (map[string][]string, error) {
	keys := map[string]map[string]bool{}
	add := func(site, order string) {
		if keys[site] == nil {
			keys[site] = map[string]bool{}
		}
		keys[site][order] = true
	}
	names := siteNames(sites)
	if len(names) == 0 {
		return nil, nil
	}
	var conds []string
	args := []any{inSet(names)}
	if e := req.Customer.Email; e != "" {
		conds = append(conds, "(email != '' AND lower(email) = lower(?))")
		args = append(args, e)
	}
	if id := string(req.Customer.ID); id != "" {
		conds = append(conds, "(customer_id != '' AND customer_id = ?)")
		args = append(args, id)
	}
	ids := make([]string, 0, len(orderIDs))
	for _, id := range orderIDs {
		ids = append(ids, string(id))
	}
	// Order ids go in chunks: one IN list of every id of a customer with
	// thousands of orders would pass ClickHouse's max_query_size (256 KiB)
	// and fail the same way at every retry, blocking compliance.v1.
	for start := 0; start < len(ids); start += inChunk {
		chunk := ids[start:min(start+inChunk, len(ids))]
		if err := p.collect(ctx, add, "SELECT site, order_number FROM purchases WHERE site IN ? AND shopify_order_id IN ?", inSet(names), inSet(chunk)); err != nil {
			return nil, err
		}
	}
	if len(ids) > 0 {
		// In order_id mode the order id is the key: this also finds raw
		// events of orders not (yet) in purchases.
		for _, s := range sites {
			if s.OrderKey == schemas.OrderKeyID {
				for _, id := range ids {
					add(s.Site, id)
				}
			}
		}
	}
	if len(conds) > 0 {
		if err := p.collect(ctx, add, "SELECT site, order_number FROM purchases WHERE site IN ? AND ("+strings.Join(conds, " OR ")+")", args...); err != nil {
			return nil, err
		}
	}
	if e := req.Customer.Email; e != "" {
		// Held or unjoined events exist only as raw bodies. The substring
		// search only narrows the candidates; the match is on the parsed
		// email fields (bodyHasEmail), or bob@x.com would take jimbob@x.com's
		// and bob@x.com.au's data with it.
		rows, err := p.conn.Query(ctx, "SELECT site, order_number, body FROM raw_events WHERE site IN ? AND positionCaseInsensitive(body, ?) > 0", inSet(names), e)
		if err != nil {
			return nil, fmt.Errorf("cannot look up the customer's raw events: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var site, order, body string
			if err := rows.Scan(&site, &order, &body); err != nil {
				return nil, fmt.Errorf("cannot look up the customer's raw events: %w", err)
			}
			if bodyHasEmail([]byte(body), e) {
				add(site, order)
			}
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("cannot look up the customer's raw events: %w", err)
		}
	}
	out := map[string][]string{}
	for s, m := range keys {
		for o := range m {
			out[s] = append(out[s], o)
		}
		sort.Strings(out[s])
	}
	return out, nil
}

// inSet binds a list as "('a', 'b')" for IN: the driver binds a plain
// slice as an array literal.
// inChunk is how many values one IN list carries (about 25 KiB of SQL).
const inChunk = 1000

func inSet(xs []string) clickhouse.GroupSet {
	v := make([]any, len(xs))
	for i, x := range xs {
		v[i] = x
	}
	return clickhouse.GroupSet{Value: v}
}

func (p *Processor) collect(ctx context.Context, add func(site, order string), q string, args ...any) error {
	rows, err := p.conn.Query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("cannot look up the customer's purchases: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var site, order string
		if err := rows.Scan(&site, &order); err != nil {
			return fmt.Errorf("cannot look up the customer's purchases: %w", err)
		}
		add(site, order)
	}
	return rows.Err()
}

// bodyHasEmail reports whether a raw event belongs to the customer with
// this email: the Shopify order's email or customer.email, or the
// storefront event's customer.email, equal to it after trimming and case
// folding. Lenient on purpose: a body that today's validation would refuse
// may still have been stored, and it must still be found.
func bodyHasEmail(body []byte, email string) bool {
	var b struct {
		Email    any `json:"email"`
		Customer *struct {
			Email any `json:"email"`
		} `json:"customer"`
	}
	if json.Unmarshal(body, &b) != nil {
		return false
	}
	email = strings.TrimSpace(email)
	same := func(v any) bool {
		s, ok := v.(string)
		return ok && strings.EqualFold(strings.TrimSpace(s), email)
	}
	return same(b.Email) || (b.Customer != nil && same(b.Customer.Email))
}

// piiFields are the discrepancy fields whose values are personal data.
var piiFields = schemas.PersonalFieldNames()

// redactions are a customers/redact's mutations of one site's orders: the
// personal columns of each table set to the empty string; in discrepancies
// only on rows of a personal field.
var redactions = []struct {
	table        string
	cols         []string
	personalOnly bool // AND field IN piiFields
}{
	{chschema.Purchases, chschema.PurchasesPersonal, false},
	{chschema.RawEvents, chschema.RawEventsBody, false},
	{chschema.Discrepancies, chschema.DiscrepanciesValues, true},
}

// redactSQL is the ALTER TABLE … UPDATE that sets cols of table to the
// empty string for the listed orders of one site.
func redactSQL(table string, cols []string, personalOnly bool) string {
	set := make([]string, len(cols))
	for i, c := range cols {
		set[i] = c + " = ''"
	}
	q := "ALTER TABLE " + table + " UPDATE " + strings.Join(set, ", ") + " WHERE site = ? AND order_number IN ?"
	if personalOnly {
		q += " AND field IN ?"
	}
	return q
}

func (p *Processor) redactCustomer(ctx context.Context, req *schemas.ComplianceRequest, sites []schemas.Site) (int, error) {
	keys, err := p.customerKeys(ctx, req, sites, req.OrdersToRedact)
	if err != nil {
		return 0, err
	}
	n := 0
	for site, orders := range keys {
		n += len(orders)
		for start := 0; start < len(orders); start += inChunk {
			chunk := orders[start:min(start+inChunk, len(orders))]
			for _, r := range redactions {
				args := []any{site, inSet(chunk)}
				if r.personalOnly {
					args = append(args, inSet(piiFields))
				}
				if err := p.mutate(ctx, r.table, redactSQL(r.table, r.cols, r.personalOnly), args...); err != nil {
					return 0, err
				}
			}
		}
	}
	return n, p.waitMutations(ctx)
}

func (p *Processor) mutate(ctx context.Context, table, sql string, args ...any) error {
	if p.cfg.Cluster != "" {
		// A Distributed table takes no mutation: its replicated local
		// tables do, on every shard (ON CLUSTER) and, by replication, on
		// every replica.
		local := "ALTER TABLE `" + p.cfg.Database + "`.`" + table + chschema.LocalSuffix + "` ON CLUSTER `" + p.cfg.Cluster + "` "
		sql = strings.Replace(sql, "ALTER TABLE "+table+" ", local, 1)
	}
	if err := p.conn.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("cannot apply a privacy mutation to %s: %w", table, err)
	}
	p.m.mutations.WithLabelValues(table).Inc()
	return nil
}

// waitMutations waits until ClickHouse has applied every pending mutation
// of our tables (mutations run in the background on every version), on
// every replica in cluster mode: a replica reports in its system.mutations
// whether its own parts are done.
func (p *Processor) waitMutations(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.MutationTimeout)
	defer cancel()
	var tables []string
	for _, t := range chschema.Mutated {
		if p.cfg.Cluster != "" {
			t += chschema.LocalSuffix
		}
		tables = append(tables, "'"+t+"'")
	}
	q := "SELECT count() FROM system.mutations WHERE database = currentDatabase() AND table IN (" + strings.Join(tables, ", ") + ") AND is_done = 0"
	for {
		var pending uint64
		for i, r := range p.replicas {
			var n uint64
			if err := r.QueryRow(ctx, q).Scan(&n); err != nil {
				return fmt.Errorf("cannot read mutation progress from system.mutations of replica %d: %w", i+1, err)
			}
			pending += n
		}
		if pending == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ClickHouse has not finished %d privacy mutations: %w", pending, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// reportRow is one purchase in a data request report.
type reportRow struct {
	Site            string   `json:"site"`
	OrderNumber     string   `json:"order_number"`
	ShopifyOrderID  *string  `json:"shopify_order_id"`
	Email           string   `json:"email"`
	CustomerID      string   `json:"customer_id"`
	FirstName       string   `json:"first_name"`
	LastName        string   `json:"last_name"`
	ShippingZip     string   `json:"shipping_zip"`
	ShippingAddress string   `json:"shipping_address"`
	IPAddress       string   `json:"ip_address"`
	CouponCodes     []string `json:"coupon_codes"`
	Currency        string   `json:"currency"`
}

// reportQuery reads reportRow's columns of one site's orders: every
// personal column of purchases (chschema.PurchasesPersonal; a test checks)
// with what identifies the order.
const reportQuery = "SELECT site, order_number, shopify_order_id, email, customer_id, first_name, last_name, shipping_zip, shipping_address, ip_address, coupon_codes, currency FROM " + chschema.Purchases + " FINAL WHERE site = ? AND order_number IN ?"

var safeName = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

func (p *Processor) report(ctx context.Context, req *schemas.ComplianceRequest, sites []schemas.Site) (int, error) {
	keys, err := p.customerKeys(ctx, req, sites, req.OrdersRequested)
	if err != nil {
		return 0, err
	}
	rows := []reportRow{}
	for site, all := range keys {
		for start := 0; start < len(all); start += inChunk {
			orders := all[start:min(start+inChunk, len(all))]
			res, err := p.conn.Query(ctx, reportQuery, site, inSet(orders))
			if err != nil {
				return 0, fmt.Errorf("cannot read the customer's purchases: %w", err)
			}
			for res.Next() {
				var r reportRow
				if err := res.Scan(&r.Site, &r.OrderNumber, &r.ShopifyOrderID, &r.Email, &r.CustomerID, &r.FirstName, &r.LastName, &r.ShippingZip, &r.ShippingAddress, &r.IPAddress, &r.CouponCodes, &r.Currency); err != nil {
					res.Close()
					return 0, fmt.Errorf("cannot read the customer's purchases: %w", err)
				}
				rows = append(rows, r)
			}
			err = res.Err()
			res.Close()
			if err != nil {
				return 0, fmt.Errorf("cannot read the customer's purchases: %w", err)
			}
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		return rows[i].Site+"/"+rows[i].OrderNumber < rows[j].Site+"/"+rows[j].OrderNumber
	})
	if p.cfg.ReportDir == "" {
		p.log.Warn("customers/data_request: no report directory (-compliance.reportDir); only counts are logged", "shop_domain", req.ShopDomain, "purchases", len(rows))
		return len(rows), nil
	}
	reqID := "unknown"
	if req.DataRequest != nil && req.DataRequest.ID != "" {
		reqID = string(req.DataRequest.ID)
	}
	b, err := json.MarshalIndent(map[string]any{
		"shop_domain":     req.ShopDomain,
		"customer_id":     req.Customer.ID,
		"data_request_id": reqID,
		"generated_at":    time.Now().UTC().Format(time.RFC3339),
		"purchases":       rows,
	}, "", "  ")
	if err != nil {
		return 0, fmt.Errorf("cannot encode the data request report: %w", err)
	}
	name := filepath.Join(p.cfg.ReportDir, safeName.ReplaceAllString(req.ShopDomain+"-"+reqID, "_")+".json")
	if err := os.WriteFile(name, b, 0o600); err != nil {
		return 0, fmt.Errorf("cannot write the data request report (-compliance.reportDir): %w", err)
	}
	p.log.Info("data request report written", "shop_domain", req.ShopDomain, "file", name, "purchases", len(rows))
	return len(rows), nil
}
