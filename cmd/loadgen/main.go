// Command loadgen drives realistic traffic at a purchasesync ingest on this
// machine: signed Shopify orders/create webhooks (1–30 KB bodies with line
// items, unicode and ids above 2^53) and the matching storefront events, at
// a fixed rate or flat out, with a fixed concurrency, for a bounded count or
// duration. It prints requests/s, p50/p99/max latency and status codes per
// kind of request.
//
// With -baseline it first starts a fasthttp server that answers 200 at once
// (the same request shapes, the same machine) and runs the same load against
// it, so one invocation prints both and the ratio:
//
//	loadgen -baseline -target http://127.0.0.1:8080 -scenario webhook -duration 20s
//
// With -floor it also runs the load against a third server (after the
// baseline, before the ingest) that only copies each body and produces it to
// Kafka with the ingest's producer settings (acks=all, idempotent, 2 ms
// linger, lz4; see floor.go), answering 200 once the broker acknowledged. It
// uses a scratch topic purchasesync.loadgen.floor.<random hex> (6 partitions,
// replication 1) on -kafka.brokers, created and deleted by loadgen itself.
// The -kafka.* connection flags are purchasesync's (cmd/kafkaconf: TLS,
// SASL, each with its PURCHASESYNC_KAFKA_* variable), so the floor also
// loads a SASL_SSL cluster as the ingest would see it.
// The floor splits the gap between the baseline and the ingest into Kafka's
// share (floor/baseline) and the ingest's own (ingest/floor):
//
//	loadgen -baseline -floor -target http://127.0.0.1:8080 -scenario webhook -duration 20s
//
// The baseline and floor servers run in child processes of loadgen (it
// re-executes itself with $LOADGEN_SERVE set; see child.go), because the
// ingest is a separate process too: a server inside the load generator's
// process shares its Go runtime and scheduler and skips the cross-process
// wake-ups, and on a 2-core machine the same do-nothing server got only
// 0.70–0.78 of its in-process requests/s as a separate process. In-process
// references would flatter the baseline and the floor against the ingest;
// -inprocess runs them inside loadgen all the same, for comparison. A child
// stops on SIGTERM from loadgen, and by itself when its stdin (a pipe from
// loadgen) closes, so it never outlives loadgen, even after kill -9.
//
// Targets must be loopback addresses: this is a benchmark and demo tool, not
// a way to flood someone else's server.
//
// `loadgen ledger` is the end-to-end ledger check of deploy/ledger instead:
// orders of every scenario with their known outcome, sent to the ingests
// (loopback or a staging deployment), then compared with ClickHouse.
package main

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/valyala/fasthttp"

	"purchasesync/cmd/envflag"
	"purchasesync/cmd/kafkaconf"
	"purchasesync/ingest/ingesttest"
	"purchasesync/ingest/shopify"
	"purchasesync/schemas"
)

func main() {
	if mode := os.Getenv(envServe); mode != "" {
		os.Exit(serveMain(mode)) // a child process serving a reference server
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// Scenarios.
const (
	scenarioBoth       = "both"       // storefront event, then the webhook of the same purchase
	scenarioWebhook    = "webhook"    // webhooks only (purchase syncing without the JS integration)
	scenarioStorefront = "storefront" // storefront events only (JS integration, syncing off)
	scenarioBadSig     = "badsig"     // webhooks with a wrong signature: all must get 401
)

type options struct {
	target      string
	baseline    bool
	floor       bool
	inprocess   bool
	scenario    string
	rate        float64
	concurrency int
	duration    time.Duration
	requests    int
	pool        int
	site        string
	shop        string
	secret      string
	orderKey    string
	xff         bool
	mismatch    float64
	timeout     time.Duration
	seed        uint64
	quiet       bool
	cpuprofile  string

	idleAnnounce int           // -scenario idle only
	idlePID      int           // -scenario idle only
	idleHold     time.Duration // -scenario idle only

	kafka            kafkaconf.Config // -floor only
	kafkaCompression string           // -floor only

	// floorCheck, set by tests only, is called with the floor's scratch
	// topic after the floor run and before the topic is deleted.
	floorCheck func(topic string) error
	// onServer, set by tests only, is called with each reference server's
	// name, address and pid (this process's with -inprocess) before the load
	// is driven at it.
	onServer func(name, addr string, pid int)
}

func parse(args []string, getenv func(string) string, out io.Writer) (options, error) {
	var o options
	// loadgen's own flags have no environment twin (fs.StringVar and the
	// like are the plain flag package's); the -kafka.* ones have.
	fs := envflag.New("loadgen", getenv)
	fs.SetOutput(out)
	fs.StringVar(&o.target, "target", "http://127.0.0.1:8080", "ingest base URL (loopback only); empty with -baseline or -floor runs those alone")
	fs.BoolVar(&o.baseline, "baseline", false, "also run the same load against a do-nothing fasthttp server (a child process; see -inprocess) and print the ratio")
	fs.BoolVar(&o.floor, "floor", false, "also run the same load against a fasthttp server (a child process; see -inprocess) that only produces each body to Kafka (scratch topic, acks=all, the ingest's producer settings) and print the ratios: Kafka's share of the gap to the baseline vs the ingest's own")
	fs.BoolVar(&o.inprocess, "inprocess", false, "run the -baseline and -floor servers inside loadgen instead of in child processes; only to compare: they then share loadgen's Go runtime and skip cross-process wake-ups, which flatters them against the ingest (a separate process) by roughly 1.3-1.4x on 2 cores")
	fs.StringVar(&o.scenario, "scenario", scenarioWebhook, "traffic: webhook, storefront, both (storefront event then webhook per purchase), badsig (401s), idle (-concurrency connections that send headers and wait; see -idle.*)")
	fs.IntVar(&o.idleAnnounce, "idle.announce", 0, "-scenario idle: Content-Length each connection announces and never sends; 0 = idle keep-alive connections after a GET /healthz")
	fs.IntVar(&o.idlePID, "idle.pid", 0, "-scenario idle: the ingest's process id, whose RSS is sampled")
	fs.DurationVar(&o.idleHold, "idle.hold", 3*time.Second, "-scenario idle: how long the connections are held and the RSS sampled (keep it below the ingest's -ingest.readTimeout)")
	fs.Float64Var(&o.rate, "rate", 0, "requests per second in total; 0 = as fast as the concurrency allows")
	fs.IntVar(&o.concurrency, "concurrency", 32, "requests in flight at once (connections)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long to send (per target); 0 = until -requests are sent")
	fs.IntVar(&o.requests, "requests", 0, "how many requests to send (per target); 0 = until -duration ends")
	fs.IntVar(&o.pool, "pool", 20000, "distinct purchases generated before the run; after that bodies repeat, as Shopify redeliveries do")
	fs.StringVar(&o.site, "site", "demo", "site slug for storefront events")
	fs.StringVar(&o.shop, "shop", "", "shop domain for webhooks (default <site>.myshopify.com)")
	fs.StringVar(&o.secret, "secret", "", "Shopify app secret to sign webhooks with (default: the first of $PURCHASESYNC_SHOPIFY_API_SECRET or of the file $PURCHASESYNC_SHOPIFY_API_SECRET_FILE)")
	fs.StringVar(&o.orderKey, "orderKey", string(schemas.OrderKeyID), "the site's order_key mode: order_id, order_number or order_name")
	fs.Float64Var(&o.mismatch, "mismatch", 0, "share of purchases (0 to 1) whose storefront event disagrees with Shopify on one compared field (email, subtotal, coupon, zip), so the join reports discrepancies")
	fs.BoolVar(&o.xff, "xff", false, "send storefront events with X-Forwarded-For client addresses from 198.18.0.0/15 (the ingest must trust 127.0.0.1 via -ingest.trustedProxies), so per-IP limits see many shoppers")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Second, "per-request timeout (Shopify's is 5s)")
	fs.Uint64Var(&o.seed, "seed", 1, "random seed for the generated purchases")
	fs.BoolVar(&o.quiet, "quiet", false, "print only the result table")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write loadgen's own CPU profile here (to check the generator is not the bottleneck)")
	kafka := kafkaconf.AddFlags(fs, floorClientID)
	fs.StringVar(&o.kafkaCompression, "kafka.compression", compressionLZ4, "-floor only: producer compression, lz4 (the ingest's default) or none")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: loadgen [flags]
       loadgen ledger [flags]   (the end-to-end ledger check; loadgen ledger -h)

Drives signed Shopify webhooks and storefront events at a purchasesync ingest
on this machine and prints requests/s, latency percentiles and status codes.
-baseline first runs the same load against a do-nothing fasthttp server;
-floor (after the baseline, before the ingest) against a server that only
produces each body to Kafka with the ingest's producer settings, into a
scratch topic deleted afterwards. The ratios then split the gap between
baseline and ingest into Kafka's share and the ingest's own:

  loadgen -baseline -floor -scenario webhook -duration 20s

The baseline and floor servers run as child processes of loadgen, like the
ingest in a process of their own: a server inside loadgen would share its Go
runtime and scheduler and skip cross-process wake-ups, which measured
1.3-1.4x faster on 2 cores and would make the ratios compare unlike things.
-inprocess runs them inside loadgen anyway, for comparison. A child stops
when loadgen stops it or when loadgen dies (its stdin closes).

The -kafka.* flags are for -floor only; they are purchasesync's, with the
same PURCHASESYNC_KAFKA_* variables (TLS, SASL), and the brokers must be on
this machine.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.secret == "" {
		secrets, err := envflag.ReadSecret(getenv, "PURCHASESYNC_SHOPIFY_API_SECRET")
		if err != nil {
			return o, err
		}
		if s := envflag.SplitList(secrets); len(s) > 0 {
			o.secret = s[0]
		}
	}
	if o.shop == "" {
		o.shop = o.site + ".myshopify.com"
	}
	if err := o.validate(kafka); err != nil {
		return o, err
	}
	if o.pool < 1 {
		o.pool = 1
	}
	if o.requests > 0 && o.requests < o.pool {
		o.pool = o.requests
	}
	return o, nil
}

// validate refuses an unusable combination of flags, naming the flag; with
// -floor it also reads the Kafka connection flags into o.kafka.
func (o *options) validate(kafka *kafkaconf.Flags) error {
	switch {
	case o.scenario != scenarioBoth && o.scenario != scenarioWebhook && o.scenario != scenarioStorefront && o.scenario != scenarioBadSig && o.scenario != scenarioIdle:
		return fmt.Errorf("unknown -scenario %q: want webhook, storefront, both, badsig or idle", o.scenario)
	case o.scenario != scenarioStorefront && o.scenario != scenarioIdle && o.secret == "":
		return errors.New("webhooks need a secret: set -secret or PURCHASESYNC_SHOPIFY_API_SECRET")
	case o.concurrency < 1:
		return errors.New("-concurrency must be at least 1")
	case o.duration <= 0 && o.requests <= 0:
		return errors.New("set -duration or -requests: the run must be bounded")
	case o.mismatch < 0 || o.mismatch > 1:
		return fmt.Errorf("-mismatch %v: want a share between 0 and 1", o.mismatch)
	case o.rate < 0:
		return errors.New("-rate must not be negative")
	case !schemas.OrderKey(o.orderKey).Valid():
		return fmt.Errorf("unknown -orderKey %q", o.orderKey)
	case !schemas.ValidSiteSlug(o.site):
		return fmt.Errorf("-site %q is not a site slug", o.site)
	case o.target == "" && !o.baseline && !o.floor:
		return errors.New("nothing to do: set -target, -baseline or -floor")
	}
	if _, err := compressionCodec(o.kafkaCompression); err != nil {
		return err
	}
	if o.target != "" {
		if err := checkLoopback(o.target); err != nil {
			return err
		}
	}
	if o.floor {
		var err error
		if o.kafka, err = kafka.Config(); err != nil {
			return fmt.Errorf("-floor: %w", err)
		}
		// The floor loads Kafka as hard as the ingest: this machine's only.
		for _, b := range o.kafka.Brokers {
			if err := checkLoopback("http://" + b); err != nil {
				return fmt.Errorf("-kafka.brokers: %w", err)
			}
		}
	}
	return nil
}

// checkLoopback refuses targets that are not on this machine.
func checkLoopback(target string) error {
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("-target %q: want http://host:port", target)
	}
	addrs, err := net.LookupIP(u.Hostname())
	if err != nil {
		return fmt.Errorf("cannot resolve -target host %q: %w", u.Hostname(), err)
	}
	for _, a := range addrs {
		if !a.IsLoopback() {
			return fmt.Errorf("-target %q resolves to %s, which is not a loopback address; loadgen only targets this machine", target, a)
		}
	}
	return nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "ledger" {
		err := runLedger(ctx, args[1:], getenv, stdout)
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	o, err := parse(args, getenv, stdout)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if o.scenario == scenarioIdle {
		return runIdle(ctx, o, stdout)
	}
	return execute(ctx, o, stdout)
}

// execute runs the parsed options: baseline, floor, ingest, in that order,
// then the report.
func execute(ctx context.Context, o options, stdout io.Writer) error {
	logf := func(format string, a ...any) {
		if !o.quiet {
			fmt.Fprintf(os.Stderr, "loadgen: "+format+"\n", a...)
		}
	}
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return fmt.Errorf("cannot create -cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cannot start the CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	reqs := buildPool(o)
	logf("generated %d requests (%d purchases, scenario %s) in %s", len(reqs), o.pool, o.scenario, time.Since(start).Round(time.Millisecond))

	var results []*result
	// An error stopping a reference server or deleting the floor's scratch
	// topic does not void a measurement: it is reported after the results.
	var cleanupErr error
	if o.baseline {
		srv, err := startBaselineServer(ctx, o)
		if err != nil {
			return err
		}
		logf("baseline: do-nothing fasthttp server %s on %s", srv.where, srv.addr)
		if o.onServer != nil {
			o.onServer("baseline", srv.addr, srv.pid)
		}
		r, err := drive(ctx, o, "baseline", "http://"+srv.addr, reqs)
		cleanupErr = srv.stop()
		if err != nil {
			return errors.Join(err, cleanupErr)
		}
		results = append(results, r)
	}
	if o.floor && ctx.Err() == nil {
		r, err := runFloor(ctx, o, reqs, logf)
		if r == nil {
			// The baseline already measured still counts: print it.
			if len(results) > 0 {
				report(stdout, o, results)
			}
			return errors.Join(err, cleanupErr)
		}
		cleanupErr = errors.Join(cleanupErr, err)
		results = append(results, r)
	}
	if o.target != "" && ctx.Err() == nil {
		r, err := drive(ctx, o, "ingest", strings.TrimRight(o.target, "/"), reqs)
		if err != nil {
			return errors.Join(err, cleanupErr)
		}
		results = append(results, r)
	}
	report(stdout, o, results)
	return cleanupErr
}

// request is one prepared request; bodies and headers are immutable and
// shared by every send.
type request struct {
	kind    string // webhook | storefront
	path    string
	body    []byte
	headers [][2]string
}

// drift picks, for a share of the purchases, the field their storefront
// event gets wrong; it depends only on i, so -mismatch changes no other
// byte of the generated traffic.
func drift(i int, share float64) string {
	h := uint64(i)*0x9E3779B97F4A7C15 ^ 0x5851F42D4C957F2D
	h ^= h >> 29
	if float64(h%10000) >= share*10000 {
		return ""
	}
	return ingesttest.Drifts[(h>>20)%uint64(len(ingesttest.Drifts))]
}

// buildPool prepares the requests of o.pool purchases before the clock
// starts, so that generating bodies does not compete with the target.
func buildPool(o options) []request {
	mode := schemas.OrderKey(o.orderKey)
	per := 1
	if o.scenario == scenarioBoth {
		per = 2
	}
	out := make([]request, o.pool*per)
	var wg sync.WaitGroup
	workers := 4
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := mrand.New(mrand.NewPCG(o.seed, uint64(w)))
			var idb [16]byte
			for i := w; i < o.pool; i += workers {
				p := ingesttest.NewPurchase(rng, int64(i), ingesttest.ItemsForSize(rng))
				if d := drift(i, o.mismatch); d != "" {
					p.Drift = d
				}
				sf := request{kind: "storefront", path: "/v1/sites/" + o.site + "/purchases", body: p.StorefrontBody(mode),
					headers: [][2]string{{"Content-Type", "application/json"},
						{"Origin", "https://" + o.shop},
						{"User-Agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) loadgen"}}}
				if o.xff {
					sf.headers = append(sf.headers, [2]string{"X-Forwarded-For", fmt.Sprintf("198.%d.%d.%d", 18+rng.IntN(2), rng.IntN(256), 1+rng.IntN(254))})
				}
				body := p.OrderBody()
				sig := shopify.Sign([]byte(o.secret), body)
				if o.scenario == scenarioBadSig {
					sig = shopify.Sign([]byte("not-"+o.secret), body)
				}
				binary.LittleEndian.PutUint64(idb[:8], rng.Uint64())
				binary.LittleEndian.PutUint64(idb[8:], rng.Uint64())
				wh := request{kind: "webhook", path: "/webhooks/shopify", body: body, headers: [][2]string{
					{"Content-Type", "application/json"},
					{"X-Shopify-Topic", shopify.TopicOrdersCreate},
					{"X-Shopify-Shop-Domain", o.shop},
					{"X-Shopify-Hmac-Sha256", sig},
					{"X-Shopify-Api-Version", "2025-10"},
					{"X-Shopify-Webhook-Id", uuid(idb[:])},
					{"X-Shopify-Event-Id", uuid(append(idb[8:], idb[:8]...))},
					{"X-Shopify-Triggered-At", p.CreatedAt.Format(time.RFC3339Nano)},
				}}
				switch o.scenario {
				case scenarioBoth:
					out[2*i], out[2*i+1] = sf, wh
				case scenarioStorefront:
					out[i] = sf
				default:
					out[i] = wh
				}
			}
		}()
	}
	wg.Wait()
	return out
}

func uuid(b []byte) string {
	h := hex.EncodeToString(b[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// result is one target's measurements, per kind of request.
type result struct {
	name    string
	elapsed time.Duration
	kinds   map[string]*kindStats
}

type kindStats struct {
	lat    []time.Duration
	codes  map[int]int
	errors map[string]int
}

// drive sends the pool's requests to base in order (wrapping around) with
// o.concurrency workers, until the count or duration bound.
func drive(ctx context.Context, o options, name, base string, reqs []request) (*result, error) {
	u, _ := url.Parse(base)
	client := &fasthttp.HostClient{
		Addr:                u.Host,
		MaxConns:            o.concurrency,
		ReadTimeout:         o.timeout,
		WriteTimeout:        o.timeout,
		MaxIdleConnDuration: time.Minute,
	}
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	var next atomic.Int64
	limit := int64(math.MaxInt64)
	if o.requests > 0 {
		limit = int64(o.requests)
	}
	// With a rate, each request has a scheduled time and its latency counts
	// from then, so a stalled target is charged for the queue it causes
	// (no coordinated omission).
	var interval time.Duration
	if o.rate > 0 {
		interval = time.Duration(float64(time.Second) / o.rate)
	}
	start := time.Now()
	perWorker := make([]map[string]*kindStats, o.concurrency)
	var wg sync.WaitGroup
	for w := range o.concurrency {
		stats := map[string]*kindStats{}
		perWorker[w] = stats
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := fasthttp.AcquireRequest()
			p := fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(q)
			defer fasthttp.ReleaseResponse(p)
			for ctx.Err() == nil {
				n := next.Add(1) - 1
				if n >= limit {
					return
				}
				sent := time.Now()
				if interval > 0 {
					sent = start.Add(time.Duration(n) * interval)
					if d := time.Until(sent); d > 0 {
						select {
						case <-time.After(d):
						case <-ctx.Done():
							return
						}
					}
				}
				r := &reqs[n%int64(len(reqs))]
				q.Reset()
				q.Header.SetMethod(fasthttp.MethodPost)
				q.SetRequestURI(base + r.path)
				for _, h := range r.headers {
					q.Header.Set(h[0], h[1])
				}
				q.SetBodyRaw(r.body)
				err := client.DoTimeout(q, p, o.timeout)
				took := time.Since(sent)
				ks := stats[r.kind]
				if ks == nil {
					ks = &kindStats{codes: map[int]int{}, errors: map[string]int{}}
					stats[r.kind] = ks
				}
				if err != nil {
					if ctx.Err() != nil {
						return // cut off by the end of the run: not a result
					}
					ks.errors[errClass(err)]++
					continue
				}
				ks.codes[p.StatusCode()]++
				ks.lat = append(ks.lat, took)
			}
		}()
	}
	wg.Wait()
	res := &result{name: name, elapsed: time.Since(start), kinds: map[string]*kindStats{}}
	for _, stats := range perWorker {
		for k, s := range stats {
			agg := res.kinds[k]
			if agg == nil {
				agg = &kindStats{codes: map[int]int{}, errors: map[string]int{}}
				res.kinds[k] = agg
			}
			agg.lat = append(agg.lat, s.lat...)
			for c, n := range s.codes {
				agg.codes[c] += n
			}
			for e, n := range s.errors {
				agg.errors[e] += n
			}
		}
	}
	return res, nil
}

func errClass(err error) string {
	switch {
	case errors.Is(err, fasthttp.ErrTimeout):
		return "timeout"
	case errors.Is(err, fasthttp.ErrConnectionClosed):
		return "closed"
	default:
		var ne *net.OpError
		if errors.As(err, &ne) {
			return "net:" + ne.Op
		}
		return "other"
	}
}

// startBaseline serves 200 to everything on a loopback port, with the
// body limits and buffer sizes the ingest uses, so that only the ingest's
// own work separates the two runs.
func startBaseline() (string, func() error, error) {
	return serveLoopback("baseline", func(ctx *fasthttp.RequestCtx) {
		ctx.SetStatusCode(fasthttp.StatusOK)
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"status":"accepted"}` + "\n")
	})
}

// serveLoopback serves h on a loopback port with the ingest's buffer sizes,
// body limit and timeouts: the configuration shared by the reference servers
// (baseline and floor, in-process or in the child process). It returns the
// address and a stop function, which waits at most serverShutdownTimeout for
// open connections to go idle.
func serveLoopback(name string, h fasthttp.RequestHandler) (string, func() error, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("cannot listen for the %s server: %w", name, err)
	}
	srv := &fasthttp.Server{
		Handler:                      h,
		ReadBufferSize:               16 << 10,
		MaxRequestBodySize:           1 << 20,
		ReadTimeout:                  5 * time.Second,
		WriteTimeout:                 5 * time.Second,
		IdleTimeout:                  time.Minute,
		DisablePreParseMultipartForm: true,
		NoDefaultContentType:         true,
	}
	go srv.Serve(ln) //nolint:errcheck // ends when Shutdown closes the listener
	stop := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), serverShutdownTimeout)
		defer cancel()
		if err := srv.ShutdownWithContext(ctx); err != nil {
			return fmt.Errorf("stopping the %s server: %w", name, err)
		}
		return nil
	}
	return ln.Addr().String(), stop, nil
}

func report(w io.Writer, o options, results []*result) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "target\tkind\trequests\treq/s\tp50\tp99\tmax\tcodes\terrors\t\n")
	type key struct{ target, kind string }
	rates := map[key]float64{}
	p99s := map[key]time.Duration{}
	for _, r := range results {
		kinds := make([]string, 0, len(r.kinds))
		for k := range r.kinds {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for _, k := range kinds {
			s := r.kinds[k]
			slices.Sort(s.lat)
			n := len(s.lat)
			rate := float64(n) / r.elapsed.Seconds()
			rates[key{r.name, k}] = rate
			p99s[key{r.name, k}] = pct(s.lat, 0.99)
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t\n", r.name, k, n, rate,
				ms(pct(s.lat, 0.50)), ms(pct(s.lat, 0.99)), ms(pct(s.lat, 1)), fmtCounts(s.codes), fmtErrors(s.errors))
		}
	}
	tw.Flush()
	for _, k := range []string{"webhook", "storefront"} {
		b, f, i := rates[key{"baseline", k}], rates[key{"floor", k}], rates[key{"ingest", k}]
		if b > 0 && i > 0 {
			fmt.Fprintf(w, "ratio %s: ingest/baseline requests/s = %.2f (p99 %s vs %s)\n", k, i/b, ms(p99s[key{"ingest", k}]), ms(p99s[key{"baseline", k}]))
		}
		if f == 0 {
			continue
		}
		// Every ratio the results allow, over requests/s: floor/baseline is
		// what producing to Kafka alone leaves of the baseline, ingest/floor
		// what the ingest's own work leaves of that.
		var parts []string
		if b > 0 && i > 0 {
			parts = append(parts, fmt.Sprintf("ingest/baseline = %.2f", i/b))
		}
		if b > 0 {
			parts = append(parts, fmt.Sprintf("floor/baseline = %.2f", f/b))
		}
		if i > 0 {
			parts = append(parts, fmt.Sprintf("ingest/floor = %.2f", i/f))
		}
		if len(parts) > 0 {
			fmt.Fprintf(w, "ratio %s: %s\n", k, strings.Join(parts, ", "))
		}
	}
	mode := "flat out"
	if o.rate > 0 {
		mode = fmt.Sprintf("%.0f req/s", o.rate)
	}
	fmt.Fprintf(w, "scenario %s, %s, concurrency %d, %d distinct purchases\n", o.scenario, mode, o.concurrency, o.pool)
}

func pct(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

func fmtCounts(m map[int]int) string {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d:%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func fmtErrors(m map[string]int) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s:%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}
