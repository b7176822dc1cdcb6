package ledger

import (
	"bytes"
	"context"
	"errors"
	"io"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/deploy/testenv"
	"purchasesync/schemas"
	chsink "purchasesync/sinks/clickhouse"
)

// TestFunctionalLedgerFindsABrokenRule runs the check against two
// `purchasesync run` pipelines on the real stack: one built as released,
// whose ledger must be clean, and one built with rule 4 broken on purpose
// (-tags purchasesync_broken_rule4: a late browser registers a second time),
// whose ledger must fail and name exactly the two scenarios with a late
// browser.
func TestFunctionalLedgerFindsABrokenRule(t *testing.T) {
	brokers := testenv.Kafka(t)
	chAddr := testenv.ClickHouse(t)
	for _, tc := range []struct {
		name string
		tags []string
		want []string // scenarios the error names
	}{
		{"released", nil, nil},
		{"rule4_broken", []string{"purchasesync_broken_rule4"}, []string{"late-browser", "mismatch-zip-late"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bin := testenv.Build(t, "purchasesync/cmd/purchasesync", tc.tags...)
			name := testenv.Name(t)
			const secret, token = "ledger-test-secret", "ledger-test-token"
			env := []string{"PURCHASESYNC_KAFKA_BROKERS=" + brokers[0], "PURCHASESYNC_SHOPIFY_API_SECRET=" + secret, "PURCHASESYNC_ADMIN_TOKEN=" + token}
			common := []string{"-kafka.topicPrefix", name + ".", "-clickhouse.addr", chAddr, "-clickhouse.database", name, "-log.format", "text", "-log.level", "warn"}
			migrate := testenv.Start(t, bin, append([]string{"migrate", "-kafka.partitions", "3"}, common...), env...)
			if err := migrate.Wait(); err != nil {
				t.Fatalf("migrate: %v\n%s", err, migrate.Logs())
			}
			ingest, ops := testenv.FreeAddr(t), testenv.FreeAddr(t)
			// Each pipeline its own -join.instance, as production needs: the
			// two subtests run side by side, and with the host name as both
			// instances their joins and refund routers shared transactional
			// ids and fenced each other (PRODUCER_FENCED every few seconds;
			// once, under the whole suite's load, a run then took over 30 s
			// to stop).
			testenv.Start(t, bin, append([]string{"run", "-ingest.addr", ingest, "-ops.addr", ops,
				"-join.group", name + "-join", "-join.instance", name, "-sink.group", name + "-sink", "-join.webhookWait", "8s", "-join.tickInterval", "200ms"}, common...), env...)
			testenv.WaitHTTP200(t, "http://"+ops+"/readyz", 90*time.Second)

			cfg := DefaultConfig()
			cfg.Targets, cfg.AdminURL = []string{"http://" + ingest}, "http://"+ops
			cfg.AdminToken, cfg.Secret = token, secret
			cfg.Orders, cfg.Rate, cfg.Seed = 2*len(scenarios)*len(modes), 25, 7
			cfg.RunID = "t" + tc.name[:2]
			cfg.Grace, cfg.WebhookWait, cfg.Redeliver = 3*time.Second, 8*time.Second, 3
			cfg.RetryFor, cfg.Settle = time.Minute, 2*time.Minute
			cfg.SourceAddrs = true
			cfg.ClickHouse = chsink.DefaultConfig()
			cfg.ClickHouse.Addr, cfg.ClickHouse.Database = []string{chAddr}, name
			cfg.Kafka = []kgo.Opt{kgo.SeedBrokers(brokers...)}
			cfg.Topics = schemas.Topics{Prefix: name + "."}
			var out bytes.Buffer
			cfg.Progress, cfg.Out = io.Discard, &out
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			err := Run(ctx, cfg)
			t.Logf("ledger report:\n%s", out.String())
			if tc.want == nil {
				if err != nil {
					t.Fatalf("the released pipeline's ledger: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrFindings) {
				t.Fatalf("the ledger of a pipeline with rule 4 broken: err = %v, want findings", err)
			}
			var named []string
			for _, m := range regexp.MustCompile(`([a-z-]+) [a-z_]+×\d+`).FindAllStringSubmatch(err.Error(), -1) {
				if !slices.Contains(named, m[1]) {
					named = append(named, m[1])
				}
			}
			if !slices.Equal(named, tc.want) {
				t.Errorf("the error names scenarios %v, want %v: %v", named, tc.want, err)
			}
			if !regexp.MustCompile(`late-browser doubled×\d+`).MatchString(err.Error()) {
				t.Errorf("a second registration of a late browser is not reported as doubled: %v", err)
			}
		})
	}
}
