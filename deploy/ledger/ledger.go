package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"purchasesync/ingest/ingesttest"
	"purchasesync/schemas"
)

// Run sends the orders, waits for ClickHouse to hold their outcome, prints
// the report to cfg.Out and returns an error naming the scenarios with
// errors, if any.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.Progress == nil {
		cfg.Progress = os.Stderr
	}
	if cfg.Out == nil {
		cfg.Out = os.Stdout
	}
	rd, err := openReader(cfg)
	if err != nil {
		return err
	}
	defer rd.close()
	if err := createSites(ctx, cfg); err != nil {
		return err
	}
	s := newSender(cfg)
	canaries, err := proveJoin(ctx, cfg, s, rd)
	if err != nil {
		return err
	}
	began := time.Now()
	orders, lastSent := send(ctx, cfg, s)
	sentIn := time.Since(began)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if cfg.SentFile != "" {
		if err := os.WriteFile(cfg.SentFile, []byte(time.Now().UTC().Format(time.RFC3339Nano)+"\n"), 0o644); err != nil {
			return fmt.Errorf("ledger: -sentFile: %w", err)
		}
	}
	obs, settledIn, err := rd.settle(ctx, cfg, orders, lastSent)
	if err != nil {
		return err
	}
	return report(cfg, s, orders, canaries, obs, sentIn, settledIn)
}

// proveJoin sends one webhook-only order per site and waits until
// ClickHouse holds its purchase, which the join registers once the site's
// grace has passed. A join that has not read the new sites yet would hold
// it for schemas.DefaultGrace (ten minutes) and decide the check's first
// orders with another site's settings; the ingests knowing a site says
// nothing of the join. It returns the canaries' keys.
func proveJoin(ctx context.Context, cfg Config, s *sender, rd *reader) ([]string, error) {
	bar := newProgress(cfg.Progress, cfg.Terminal, "canaries")
	var status statusLine
	status.set("one webhook-only order per site, registered after the grace once the join knows the site")
	stop := bar.every(status.get)
	var keys []string
	var wg sync.WaitGroup
	for i, mode := range modes {
		rng := rand.New(rand.NewPCG(cfg.Seed, 1<<40+uint64(i)))
		p := ingesttest.NewPurchase(rng, 1<<30+int64(i), 1)
		o := &order{site: siteName(cfg.RunID, mode), mode: mode, webhook: p.OrderBody(),
			webhookID: fmt.Sprintf("ledger-%s-canary-%d", cfg.RunID, i)}
		o.key = schemas.NormalizeOrderNumber(mode, p.OrderNumberFor(mode))
		keys = append(keys, schemas.Key(o.site, o.key))
		wg.Go(func() { s.deliver(ctx, o, o.webhookID) })
	}
	wg.Wait()
	deadline := time.Now().Add(cfg.Grace + 3*time.Minute)
	for ctx.Err() == nil {
		obs, err := rd.read(ctx)
		if err == nil {
			n := 0
			for _, k := range keys {
				if obs.rows[k] != nil {
					n++
				}
			}
			status.set(bar.bar(n, len(keys)) + " canaries registered")
			if n == len(keys) {
				stop(status.get())
				return keys, nil
			}
		}
		if time.Now().After(deadline) {
			stop(status.get())
			return nil, fmt.Errorf("ledger: the join has not registered the canary webhooks within %s: is it running and reading the sites?",
				cfg.Grace+3*time.Minute)
		}
		sleep(ctx, time.Second)
	}
	stop(status.get())
	return nil, ctx.Err()
}

// createSites writes the run's sites through the admin API, syncing on,
// and waits until every ingest knows them.
func createSites(ctx context.Context, cfg Config) error {
	hc := &http.Client{Timeout: 10 * time.Second}
	for _, mode := range modes {
		site := siteName(cfg.RunID, mode)
		body, _ := json.Marshal(map[string]any{"shop_domain": site + ".myshopify.com", "order_key": mode, "purchase_syncing": true, "grace": cfg.Grace.String()})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, strings.TrimSuffix(cfg.AdminURL, "/")+"/admin/v1/sites/"+site, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+cfg.AdminToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return fmt.Errorf("ledger: cannot create site %s through the admin API (-admin.url): %w", site, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("ledger: creating site %s: the admin API answered %d (-admin.url, PURCHASESYNC_ADMIN_TOKEN)", site, resp.StatusCode)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for _, target := range cfg.Targets {
		for _, mode := range modes {
			site := siteName(cfg.RunID, mode)
			for {
				req, _ := http.NewRequestWithContext(ctx, http.MethodOptions, strings.TrimSuffix(target, "/")+"/v1/sites/"+site+"/purchases", nil)
				req.Header.Set("Origin", "https://"+site+".myshopify.com")
				req.Header.Set("Access-Control-Request-Method", "POST")
				resp, err := hc.Do(req)
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode/100 == 2 {
						break
					}
				}
				if time.Now().After(deadline) || ctx.Err() != nil {
					return fmt.Errorf("ledger: %s does not know site %s a minute after it was written", target, site)
				}
				sleep(ctx, 200*time.Millisecond)
			}
		}
	}
	return nil
}

// send plays every order at cfg.Rate, each in its own goroutine (a webhook
// may be retried for minutes), and returns them when all are done, with the
// time the last event was sent.
func send(ctx context.Context, cfg Config, s *sender) ([]*order, time.Time) {
	orders := make([]*order, cfg.Orders)
	var wg sync.WaitGroup
	var done, inFlight atomic.Int64
	bar := newProgress(cfg.Progress, cfg.Terminal, "sending")
	stopBar := bar.every(func() string {
		return fmt.Sprintf("%s in flight %d", bar.bar(int(done.Load()), cfg.Orders), inFlight.Load())
	})
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	next := time.Now()
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x1ed9e7))
	for n := range cfg.Orders {
		if ctx.Err() != nil {
			break
		}
		sleep(ctx, time.Until(next))
		next = next.Add(interval)
		o := newOrder(cfg.RunID, cfg.Seed, n)
		orders[n] = o
		redeliveries := rng.IntN(cfg.Redeliver)
		wg.Add(1)
		inFlight.Add(1)
		go func() {
			defer wg.Done()
			s.play(ctx, o, redeliveries)
			o.webhook, o.storefront, o.malformed = nil, nil, nil // keep only what the check needs
			inFlight.Add(-1)
			done.Add(1)
		}()
	}
	wg.Wait()
	stopBar(fmt.Sprintf("%s sent", bar.bar(int(done.Load()), cfg.Orders)))
	var last time.Time
	for _, o := range orders {
		if o == nil {
			continue
		}
		for _, as := range [][]answer{o.sf, o.wh} {
			for _, a := range as {
				if a.end.After(last) {
					last = a.end
				}
			}
		}
	}
	return orders[:countSent(orders)], last
}

func countSent(orders []*order) int {
	for i, o := range orders {
		if o == nil {
			return i
		}
	}
	return len(orders)
}

// ErrFindings is what Run returns, wrapped with the scenarios at fault, when
// the pipeline's outcome differs from the ground truth.
var ErrFindings = errors.New("ledger: the pipeline's outcome differs from the ground truth")
