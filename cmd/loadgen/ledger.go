package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"purchasesync/cmd/chconf"
	"purchasesync/cmd/envflag"
	"purchasesync/cmd/kafkaconf"
	"purchasesync/deploy/ledger"
	"purchasesync/schemas"
)

const ledgerUsage = `Usage: loadgen ledger [flags]

The end-to-end ledger check (deploy/ledger): sends -orders synthetic orders
of every scenario (both sides in either order, browser or webhook missing,
late browsers, repeats of each side, field mismatches, differences that must
not alarm, forged signatures, malformed storefront bodies, unicode, test
orders, presentment currency; ids above 2^53; on three sites, one per
order_key mode, which it creates through the admin API) to the ingests of
-target, as Shopify (webhooks retried until acknowledged, redelivered up to
-redeliver times) and as browsers (one attempt each, each shopper from its
own 127.x.y.z address on a loopback target). Then it reads ClickHouse and
prints, per scenario, the orders lost, doubled, registered from the wrong
side, wrongly matched, flagged or valued, and the discrepancies missed or
raised in vain. Exit status 1 on any error.

Against a staging deployment (its ingest behind a load balancer, the admin
API on the control plane's ops listener, its ClickHouse):

  PURCHASESYNC_ADMIN_TOKEN_FILE=... PURCHASESYNC_SHOPIFY_API_SECRET_FILE=... \
  loadgen ledger -target https://ingest.staging.example -admin.url http://control.staging:9464 \
    -clickhouse.addr ch.staging:9440 -clickhouse.tls -orders 2000 -rate 20

-webhookWait must equal the join's -join.webhookWait to check webhook_missing
discrepancies (0, the default, leaves them unchecked: a production join
waits 24 h). With -kafka.brokers (or PURCHASESYNC_KAFKA_BROKERS) it also
counts registrations in purchases.v1, where a double is visible even after
ClickHouse's ReplacingMergeTree folded it.

Flags:
`

// runLedger is `loadgen ledger`.
func runLedger(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := parseLedger(args, getenv, stdout)
	if err != nil {
		return err
	}
	cfg.Progress = os.Stderr
	if st, err := os.Stderr.Stat(); err == nil {
		cfg.Terminal = st.Mode()&os.ModeCharDevice != 0
	}
	cfg.Out = stdout
	return ledger.Run(ctx, cfg)
}

// parseLedger reads `loadgen ledger`'s flags and environment.
func parseLedger(args []string, getenv func(string) string, stdout io.Writer) (ledger.Config, error) {
	cfg := ledger.DefaultConfig()
	fs := envflag.New("loadgen ledger", getenv)
	fs.SetOutput(stdout)
	// The check's own knobs come from the command line only; the settings
	// it shares with the pipeline (its topic prefix, secrets, Kafka and
	// ClickHouse) also from the pipeline's PURCHASESYNC_* variables, so a
	// shell set up for the pipeline runs the check as it is.
	var targets string
	fs.StringVar(&targets, "target", strings.Join(cfg.Targets, ","), "comma-separated ingest base URLs; requests go round robin, a webhook's retry to the next")
	fs.StringVar(&cfg.AdminURL, "admin.url", cfg.AdminURL, "control plane ops listener, whose admin API creates the check's sites (token: PURCHASESYNC_ADMIN_TOKEN or _FILE)")
	secret := fs.SecretEnv("shopify.apiSecret", "PURCHASESYNC_SHOPIFY_API_SECRET", "Shopify app secret to sign webhooks with (the first of a comma-separated list)")
	fs.IntVar(&cfg.Orders, "orders", cfg.Orders, "orders to send")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "orders per second")
	fs.StringVar(&cfg.RunID, "runID", "", "names the check's sites ledger-<runID>-{id,number,name}; default: the time")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed of the orders")
	fs.DurationVar(&cfg.Grace, "grace", cfg.Grace, "grace of the check's sites")
	fs.DurationVar(&cfg.WebhookWait, "webhookWait", 0, "the join's -join.webhookWait, to check webhook_missing discrepancies; 0 = unchecked")
	fs.IntVar(&cfg.Redeliver, "redeliver", cfg.Redeliver, "each webhook is delivered 1 to this many times under its webhook id, as Shopify redelivers")
	fs.DurationVar(&cfg.RetryFor, "retryFor", cfg.RetryFor, "how long an unacknowledged webhook is retried")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "per-request timeout (Shopify's is 5s)")
	fs.DurationVar(&cfg.Settle, "settle", cfg.Settle, "how long to wait for ClickHouse to hold every outcome after the last order")
	fs.Float64Var(&cfg.MaxRefused, "maxRefused", cfg.MaxRefused, "fraction of storefront events that may be refused (503, no answer) before the run is an error")
	fs.StringVar(&cfg.SentFile, "sentFile", "", "create this file once every order is sent")
	fs.StringVar(&cfg.WaitFor, "waitFor", "", "wait for this file to exist before judging (the chaos run creates it when its faults are over)")
	prefix := fs.String("kafka.topicPrefix", cfg.Topics.Prefix, "the pipeline's topic prefix (with -kafka.brokers)")
	ch := chconf.AddFlags(fs)
	kafka := kafkaconf.AddFlags(fs, "purchasesync-ledger")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), ledgerUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	cfg.Targets = envflag.SplitList(targets)
	cfg.Topics = schemas.Topics{Prefix: *prefix}
	if cfg.RunID == "" {
		cfg.RunID = time.Now().UTC().Format("0102-150405")
	}
	if s := envflag.SplitList(*secret); len(s) > 0 {
		cfg.Secret = s[0]
	}
	var err error
	if cfg.AdminToken, err = envflag.ReadSecret(getenv, "PURCHASESYNC_ADMIN_TOKEN"); err != nil {
		return cfg, err
	}
	if cfg.ClickHouse, err = ch.Config(); err != nil {
		return cfg, err
	}
	if fs.IsSet("kafka.brokers") {
		kc, err := kafka.Config()
		if err != nil {
			return cfg, err
		}
		if cfg.Kafka, err = kc.Opts(); err != nil {
			return cfg, err
		}
	}
	cfg.SourceAddrs = allLoopback(cfg.Targets)
	return cfg, nil
}

// allLoopback: each shopper can have its own source address only when
// every target is on this machine.
func allLoopback(targets []string) bool {
	for _, t := range targets {
		u, err := url.Parse(t)
		if err != nil {
			return false
		}
		ips, err := net.LookupIP(u.Hostname())
		if err != nil || len(ips) == 0 {
			return false
		}
		for _, ip := range ips {
			if !ip.IsLoopback() || ip.To4() == nil {
				return false
			}
		}
	}
	return true
}
