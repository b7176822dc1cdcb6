package main

import (
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// recorder is a registry that remembers the descriptors of everything
// registered on it. A vector without children does not show in Gather, so
// the catalogue check needs the descriptors.
type recorder struct {
	*prometheus.Registry
	mu    sync.Mutex
	descs []*prometheus.Desc
}

func (r *recorder) Register(c prometheus.Collector) error {
	if err := r.Registry.Register(c); err != nil {
		return err
	}
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	r.mu.Lock()
	defer r.mu.Unlock()
	for d := range ch {
		r.descs = append(r.descs, d)
	}
	return nil
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// registered is one metric as the process registers it.
type registered struct {
	name   string
	help   string
	labels []string // variable and constant, sorted
}

// descRE parses prometheus.Desc.String(), the only way to read a
// descriptor's parts: Desc{fqName: "x", help: "y", constLabels: {a="b"}, variableLabels: {c,d}}.
var descRE = regexp.MustCompile(`^Desc\{fqName: "([^"]*)", help: "((?:[^"\\]|\\.)*)", (?:unit: "[^"]*", )?constLabels: \{(.*)\}, variableLabels: \{(.*)\}\}$`)

func parseDesc(t *testing.T, d *prometheus.Desc) registered {
	t.Helper()
	m := descRE.FindStringSubmatch(d.String())
	if m == nil {
		t.Fatalf("cannot parse descriptor %s", d)
	}
	r := registered{name: m[1], help: m[2]}
	if m[3] != "" {
		for _, kv := range strings.Split(m[3], ",") {
			r.labels = append(r.labels, strings.SplitN(kv, "=", 2)[0])
		}
	}
	if m[4] != "" {
		r.labels = append(r.labels, strings.Split(m[4], ",")...)
	}
	sort.Strings(r.labels)
	return r
}

// runRegistry builds every stage of `run` the way cmdRun does, without
// starting or connecting anything, and returns what they registered by
// name. Kafka metrics (kprom) register when a client is created; the ingest
// and control producers are, so they are in.
func runRegistry(t *testing.T) (*recorder, map[string]registered) {
	t.Helper()
	rec, c, actors := buildTestRun(t)
	if len(actors) < 8 {
		t.Errorf("buildRun returned %d actors, want every stage", len(actors))
	}
	// The join's and sink's clients are created in Run, with the same kprom
	// metrics under other role labels: one more client covers the names.
	cl, err := kgo.NewClient(append(c.kafka.baseOpts(c.log, nil, "x"), c.kafka.hooks(prometheus.NewRegistry(), "x")...)...)
	if err != nil {
		t.Fatal(err)
	}
	cl.Close()

	out := map[string]registered{}
	for _, d := range rec.descs {
		r := parseDesc(t, d)
		if prev, ok := out[r.name]; ok && strings.Join(prev.labels, ",") != strings.Join(r.labels, ",") {
			t.Errorf("%s is registered twice with different labels: %v and %v", r.name, prev.labels, r.labels)
		}
		out[r.name] = r
	}
	return rec, out
}

// buildTestRun builds `run` with every optional stage on (the forwarders'
// addresses are never dialled), without starting or connecting anything.
func buildTestRun(t *testing.T) (*recorder, *common, []actor) {
	t.Helper()
	rec := &recorder{Registry: prometheus.NewRegistry()}
	registerRuntime(rec)
	fs := newFlagSet("run", func(k string) string {
		return map[string]string{secretEnv: "s", "PURCHASESYNC_ADMIN_TOKEN": "t",
			// The token store and the app listener on, so that their metrics
			// are built too (nothing listens: the actors are not run).
			"PURCHASESYNC_TOKEN_KEY": "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "PURCHASESYNC_APP_ADDR": "127.0.0.1:0",
			"PURCHASESYNC_APP_BASEURL": "https://app.example.com", "PURCHASESYNC_SHOPIFY_APIKEY": "key"}[k]
	})
	f := addRunFlags(fs)
	// Optional forwarders on, so that their metrics are built too; the
	// addresses are never dialled.
	if err := fs.parse([]string{"-kafka.brokers", "127.0.0.1:1", "-clickhouse.addr", "127.0.0.1:1",
		"-registrar.url", "http://127.0.0.1:1", "-registrar.apiKey", "k", "-notifier.url", "http://127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	c, err := newCommonOn(f.kafka, f.log, io.Discard, rec)
	if err != nil {
		t.Fatal(err)
	}
	actors, closeAll, err := buildRun(c, f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeAll)
	return rec, c, actors
}

// catalogueRow is one metric row of deploy/metrics.md.
type catalogueRow struct {
	name   string // may end in * (a family of a third-party collector)
	typ    string
	labels []string // sorted
	line   int
}

var rowRE = regexp.MustCompile("^\\| `([a-z_:*][a-z0-9_:*]*)` \\| ([a-z]+) \\| ([^|]*) \\| (.+) \\|$")

// readCatalogue parses the metric rows of deploy/metrics.md.
func readCatalogue(t *testing.T) map[string]catalogueRow {
	t.Helper()
	b, err := os.ReadFile("../../deploy/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]catalogueRow{}
	for i, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		m := rowRE.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("deploy/metrics.md:%d: a metric row must read | `name` | type | labels | meaning |: %s", i+1, line)
			continue
		}
		r := catalogueRow{name: m[1], typ: m[2], line: i + 1}
		switch r.typ {
		case "counter", "gauge", "histogram", "summary":
		case "mixed":
			if !strings.HasSuffix(r.name, "*") {
				t.Errorf("deploy/metrics.md:%d: type mixed is only for * families", r.line)
			}
		default:
			t.Errorf("deploy/metrics.md:%d: unknown type %q", r.line, r.typ)
		}
		if !strings.HasSuffix(r.name, "*") && strings.TrimSpace(m[3]) != "—" {
			for _, l := range strings.Split(m[3], ",") {
				l = strings.TrimSpace(l)
				if !strings.HasPrefix(l, "`") || !strings.HasSuffix(l, "`") {
					t.Errorf("deploy/metrics.md:%d: labels are `a`, `b` or —, got %q", r.line, m[3])
				}
				r.labels = append(r.labels, strings.Trim(l, "`"))
			}
			sort.Strings(r.labels)
		}
		if _, dup := rows[r.name]; dup {
			t.Errorf("deploy/metrics.md:%d: %s is listed twice", r.line, r.name)
		}
		rows[r.name] = r
	}
	if len(rows) < 50 {
		t.Fatalf("deploy/metrics.md has %d metric rows; the parser is probably broken", len(rows))
	}
	return rows
}

// lookup finds the row documenting name: its own, else a * family.
func lookup(rows map[string]catalogueRow, name string) (catalogueRow, bool) {
	if r, ok := rows[name]; ok {
		return r, true
	}
	for n, r := range rows {
		if p, ok := strings.CutSuffix(n, "*"); ok && strings.HasPrefix(name, p) {
			return r, true
		}
	}
	return catalogueRow{}, false
}

// TestMetricsCatalogue: deploy/metrics.md lists exactly the metrics that
// `run` registers, each with its labels and type.
func TestMetricsCatalogue(t *testing.T) {
	rec, regd := runRegistry(t)
	rows := readCatalogue(t)

	families := map[string]bool{}
	for name, r := range regd {
		row, ok := lookup(rows, name)
		if !ok {
			t.Errorf("%s%v is registered but not in deploy/metrics.md (help: %s)", name, r.labels, r.help)
			continue
		}
		families[row.name] = true
		if row.name == name && strings.Join(row.labels, ",") != strings.Join(r.labels, ",") {
			t.Errorf("deploy/metrics.md:%d: %s has labels %v, but the registered metric has %v", row.line, name, row.labels, r.labels)
		}
	}
	for name, row := range rows {
		if _, ok := regd[name]; !ok && !families[name] {
			t.Errorf("deploy/metrics.md:%d: %s is documented but not registered", row.line, name)
		}
	}

	// Types, for the series that exist (vectors without children do not).
	mfs, err := rec.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if row, ok := rows[mf.GetName()]; ok && !strings.EqualFold(mf.GetType().String(), row.typ) {
			t.Errorf("deploy/metrics.md:%d: %s is a %s, documented as a %s", row.line, mf.GetName(), strings.ToLower(mf.GetType().String()), row.typ)
		}
	}
}

// forbiddenLabels could take as many values as there are sites, shops,
// orders or people: never labels (deploy/metrics.md, conventions).
var forbiddenLabels = map[string]bool{
	"site": true, "shop": true, "shop_domain": true, "order": true, "order_number": true, "order_id": true,
	"email": true, "customer": true, "customer_id": true, "key": true, "request_id": true, "url": true, "path": true,
}

// TestMetricsLint runs promlint over every registered purchasesync metric,
// with the documented type for vectors that have no series yet, and checks
// the label policy.
func TestMetricsLint(t *testing.T) {
	rec, regd := runRegistry(t)
	rows := readCatalogue(t)
	gathered, err := rec.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var mfs []*dto.MetricFamily
	have := map[string]bool{}
	for _, mf := range gathered {
		if strings.HasPrefix(mf.GetName(), "purchasesync_") {
			mfs = append(mfs, mf)
			have[mf.GetName()] = true
		}
	}
	types := map[string]dto.MetricType{"counter": dto.MetricType_COUNTER, "gauge": dto.MetricType_GAUGE,
		"histogram": dto.MetricType_HISTOGRAM, "summary": dto.MetricType_SUMMARY}
	for name, r := range regd {
		if !strings.HasPrefix(name, "purchasesync_") {
			continue
		}
		for _, l := range r.labels {
			if forbiddenLabels[l] {
				t.Errorf("%s has label %q: unbounded (one series per site, order or person)", name, l)
			}
			if !regexp.MustCompile(`^[a-z][a-z0-9_]*$`).MatchString(l) {
				t.Errorf("%s has label %q: want snake_case", name, l)
			}
		}
		if have[name] {
			continue
		}
		row, ok := rows[name]
		if !ok {
			continue // TestMetricsCatalogue reports it
		}
		typ := types[row.typ]
		mfs = append(mfs, &dto.MetricFamily{Name: &name, Help: &r.help, Type: &typ})
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	// kprom's two gauges named like counters (deploy/metrics.md, Kafka clients).
	known := map[string]bool{
		"purchasesync_kafka_buffered_produce_records_total": true,
		"purchasesync_kafka_buffered_fetch_records_total":   true,
	}
	for _, p := range problems {
		if known[p.Metric] {
			continue
		}
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	if len(mfs) < 80 {
		t.Errorf("linted %d families; expected every purchasesync metric", len(mfs))
	}
}
