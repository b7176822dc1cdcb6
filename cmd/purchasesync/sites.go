package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"purchasesync/ingest/admin"
	"purchasesync/schemas"
)

const sitesUsage = `usage: purchasesync sites [flags] <action> [site] [flags]

actions:
  list                      every site
  get <site>                one site
  put <site> [record flags] create or replace a site; an existing site keeps
                            the fields not given (read, change, write back)
  enable <site> [-force]    turn Purchase Syncing on: checks the read_orders
                            permission, creates the Shopify webhook subscriptions;
                            refused while the order-key diagnosis contradicts the
                            site's order_key (-force enables anyway)
  disable <site>            turn it off: deletes the subscriptions
  delete <site> [-force]    remove the site (refused while syncing is on)
  diagnose [site]           which Shopify identifier the storefront sends, from the
                            order-key detector's evidence, against the site's order_key;
                            without a site, one line per site
  repair <site> [-mark -by who -note why]
                            the suspected double registrations of a site (ClickHouse);
                            -mark marks the unmarked ones (nothing is deleted), after
                            the order_key was corrected

The CLI talks to the admin API of a running process (purchasesync run, or
purchasesync control in a split deployment) over HTTP; it needs the same admin token.

flags:
`

// cmdSites is the registry CLI: a thin client of the admin API (DESIGN §6).
func cmdSites(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlagSet("sites", getenv)
	fs.SetOutput(stdout)
	d := admin.DefaultClientConfig()
	adminURL := fs.String("admin.url", "http://"+defaultOpsAddr, "base URL of the ops listener serving the admin API")
	token := fs.Secret("admin.token", "bearer token of the admin API")
	timeout := fs.Duration("admin.timeout", d.Timeout, "how long one admin request may take (enable waits for Shopify)")
	// Output format and record fields are per invocation: they have no
	// environment twin, so a stray variable can never change a stored record.
	output := fs.FlagSet.String("o", "table", "output: table (for people) or json")
	shop := fs.FlagSet.String("shop", "", "put: the shop domain, name.myshopify.com")
	orderKey := fs.FlagSet.String("order-key", "", "put: order_id (default), order_number or order_name; see DESIGN §1")
	grace := fs.FlagSet.String("grace", "", "put: how long a webhook-only purchase waits for its storefront event, e.g. 10m")
	syncing := fs.FlagSet.Bool("syncing", false, "put: the purchase_syncing flag, written directly without any Shopify call (use enable/disable for the Shopify switch)")
	domains := fs.FlagSet.String("custom-domains", "", "put: comma-separated storefront hosts or origins allowed besides the shop domain (empty string clears)")
	mark := fs.FlagSet.Bool("mark", false, "repair: mark the site's unmarked suspected double registrations")
	by := fs.FlagSet.String("by", "", "repair -mark: who marks (recorded with each mark)")
	note := fs.FlagSet.String("note", "", "repair -mark: why (recorded with each mark)")
	force := fs.FlagSet.Bool("force", false, "delete: delete even while syncing is on; enable: enable even though the order-key diagnosis contradicts the site's order_key")
	fs.Usage = func() {
		io.WriteString(stdout, sitesUsage)
		fs.PrintDefaults()
	}

	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if *output != "table" && *output != "json" {
		return fmt.Errorf("invalid -o %q: want table or json", *output)
	}
	if len(pos) == 0 {
		fs.Usage()
		return errors.New("sites: missing action")
	}
	action, rest := pos[0], pos[1:]
	needSite := action != "list"
	if action == "diagnose" && len(rest) == 0 {
		needSite = false
	}
	if needSite && len(rest) != 1 || !needSite && len(rest) != 0 {
		fs.Usage()
		return fmt.Errorf("sites %s: want %s", action, map[bool]string{true: "exactly one site", false: "no argument"}[needSite])
	}
	if *token == "" {
		return errors.New("sites: no admin token: set -admin.token or PURCHASESYNC_ADMIN_TOKEN (the one the server was started with)")
	}
	c := admin.NewClient(admin.ClientConfig{URL: *adminURL, Token: *token, Timeout: *timeout})
	p := sitePrinter{w: stdout, json: *output == "json"}

	switch action {
	case "list":
		raw, list, err := c.List(ctx)
		if err != nil {
			return err
		}
		return p.list(raw, list)
	case "get":
		return p.site(c.Get(ctx, rest[0]))
	case "put":
		var change admin.SiteChange
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "shop":
				change.ShopDomain = shop
			case "order-key":
				change.OrderKey = orderKey
			case "grace":
				change.Grace = grace
			case "syncing":
				change.PurchaseSyncing = syncing
			case "custom-domains":
				ds := splitList(*domains)
				change.CustomDomains = &ds
			}
		})
		raw, s, err := c.Update(ctx, rest[0], change)
		if errors.Is(err, admin.ErrNewSiteNeedsShop) {
			return fmt.Errorf("sites put %s: a new site needs -shop name.myshopify.com", rest[0])
		}
		return p.site(raw, s, err)
	case "enable", "disable":
		return p.site(c.SetSyncing(ctx, rest[0], action == "enable", *force))
	case "diagnose":
		if len(rest) == 0 {
			return diagnoseAll(ctx, c, p)
		}
		raw, d, err := c.Diagnose(ctx, rest[0])
		if err != nil {
			return err
		}
		return p.diagnosis(raw, d)
	case "repair":
		var raw []byte
		var ds []schemas.DoubleRegistration
		var err error
		if *mark {
			if *by == "" {
				return errors.New("sites repair -mark: say who marks with -by (recorded with each mark)")
			}
			raw, ds, err = c.MarkDoubles(ctx, rest[0], *by, *note)
		} else {
			raw, ds, err = c.Doubles(ctx, rest[0])
		}
		if err != nil {
			return err
		}
		return p.doubles(raw, ds, *mark)
	case "delete":
		if err := c.Delete(ctx, rest[0], *force); err != nil {
			return err
		}
		if p.json {
			return p.raw([]byte(fmt.Sprintf(`{"deleted":%q}`, rest[0])))
		}
		fmt.Fprintf(stdout, "deleted site %s\n", rest[0])
		return nil
	}
	fs.Usage()
	return fmt.Errorf("sites: unknown action %q", action)
}

// parseInterleaved lets flags come before or after the action and site
// ("sites put a -shop x", "sites -o json list"): the standard flag package
// stops at the first positional argument.
func parseInterleaved(fs *flagSet, args []string) ([]string, error) {
	if err := fs.parse(args); err != nil {
		return nil, err
	}
	var pos []string
	for rest := fs.Args(); len(rest) > 0; rest = fs.Args() {
		pos = append(pos, rest[0])
		if err := fs.FlagSet.Parse(rest[1:]); err != nil {
			return nil, err
		}
	}
	return pos, nil
}

// sitePrinter prints tables for people and the API's JSON for scripts.
type sitePrinter struct {
	w    io.Writer
	json bool
}

func (p sitePrinter) raw(b []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		return fmt.Errorf("cannot format JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err := p.w.Write(buf.Bytes())
	return err
}

func (p sitePrinter) list(raw []byte, sites []schemas.Site) error {
	if p.json {
		return p.raw(raw)
	}
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SITE\tSHOP DOMAIN\tORDER KEY\tSYNCING\tGRACE\tSUBSCRIPTION\tUPDATED")
	for _, s := range sites {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Site, s.ShopDomain, s.OrderKey, onOff(s.PurchaseSyncing),
			time.Duration(s.Grace), dash(shortGID(s.WebhookSubscriptionID)), s.UpdatedAt.UTC().Format(time.RFC3339))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(sites) == 0 {
		fmt.Fprintln(p.w, "(no sites; add one with: purchasesync sites put <site> -shop name.myshopify.com)")
	}
	return nil
}

// site prints the site a call returned, or its error.
func (p sitePrinter) site(raw []byte, s schemas.Site, err error) error {
	if err != nil {
		return err
	}
	if p.json {
		return p.raw(raw)
	}
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	for _, kv := range [][2]string{
		{"site", s.Site},
		{"shop domain", s.ShopDomain},
		{"order key", string(s.OrderKey)},
		{"purchase syncing", onOff(s.PurchaseSyncing)},
		{"grace", time.Duration(s.Grace).String()},
		{"webhook subscription", dash(s.WebhookSubscriptionID)},
		{"custom domains", dash(strings.Join(s.CustomDomains, ", "))},
		{"updated", s.UpdatedAt.UTC().Format(time.RFC3339)},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
	}
	return tw.Flush()
}

// diagnoseAll diagnoses every site, one line each.
func diagnoseAll(ctx context.Context, c *admin.Client, p sitePrinter) error {
	_, list, err := c.List(ctx)
	if err != nil {
		return err
	}
	all := []schemas.KeyModeDiagnosis{}
	for _, s := range list {
		_, d, err := c.Diagnose(ctx, s.Site)
		if err != nil {
			return fmt.Errorf("site %s: %w", s.Site, err)
		}
		all = append(all, d)
	}
	if p.json {
		b, err := json.Marshal(map[string]any{"diagnoses": all})
		if err != nil {
			return err
		}
		return p.raw(b)
	}
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SITE\tCONFIGURED\tSUGGESTED\tVERDICT\tMATCHED\tSUSPECTED DOUBLES")
	for _, d := range all {
		suggested := "-"
		if d.SuggestedOrderKey != nil {
			suggested = string(*d.SuggestedOrderKey)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\n", d.Site, d.ConfiguredOrderKey, suggested, d.Verdict, d.Matched, d.SuspectedDoubleRegistrations)
	}
	return tw.Flush()
}

func (p sitePrinter) doubles(raw []byte, ds []schemas.DoubleRegistration, marked bool) error {
	if p.json {
		return p.raw(raw)
	}
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DOUBLE (SHOPIFY KEY)\tSTOREFRONT KEY\tSHOPIFY ID\tNAME\tVIA\tREGISTERED\tMARKED")
	for _, d := range ds {
		m := "-"
		if d.MarkedAt != nil {
			m = d.MarkedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ShopifyOrderNumber, d.StorefrontOrderNumber, d.ShopifyOrderID, d.ShopifyOrderName,
			d.ShopifyRegisteredVia, d.ShopifyRegisteredAt.UTC().Format(time.RFC3339), m)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	switch {
	case marked:
		fmt.Fprintf(p.w, "%d marked now. Undo each in the purchase registry by its origin slug (the first column), see README \"Order-key diagnosis and repair\".\n", len(ds))
	case len(ds) > 0:
		fmt.Fprintf(p.w, "%d suspected double registrations; mark them with: purchasesync sites repair <site> -mark -by <you>\n", len(ds))
	default:
		fmt.Fprintln(p.w, "no suspected double registrations")
	}
	return nil
}

func (p sitePrinter) diagnosis(raw []byte, d schemas.KeyModeDiagnosis) error {
	if p.json {
		return p.raw(raw)
	}
	suggested := "none"
	if d.SuggestedOrderKey != nil {
		suggested = string(*d.SuggestedOrderKey)
	}
	window := "-"
	if d.WindowFrom != nil {
		window = d.WindowFrom.UTC().Format(time.RFC3339) + " .. " + d.WindowTo.UTC().Format(time.RFC3339)
	}
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	for _, kv := range [][2]string{
		{"site", d.Site},
		{"configured order key", string(d.ConfiguredOrderKey)},
		{"suggested order key", suggested},
		{"verdict", d.Verdict},
		{"suspected double registrations", fmt.Sprint(d.SuspectedDoubleRegistrations)},
		{"storefront events", fmt.Sprint(d.SamplesSeen)},
		{"webhooks", fmt.Sprint(d.WebhooksSeen)},
		{"matched", fmt.Sprint(d.Matched)},
		{"window", window},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(p.w, "\n%s\n\n", d.Message)
	tw = tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODE\tMATCHES\tSAMPLES (storefront sent → Shopify id / order_number / name)")
	for _, m := range schemas.OrderKeys {
		e := d.Evidence[m]
		var ss []string
		for _, s := range e.Samples {
			ss = append(ss, fmt.Sprintf("%s → %s / %s / %s", s.Storefront, s.ShopifyID, s.Number, s.Name))
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\n", m, e.Matches, dash(strings.Join(ss, "; ")))
	}
	return tw.Flush()
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// shortGID keeps a table narrow: gid://shopify/WebhookSubscription/123 → 123.
func shortGID(gid string) string {
	if i := strings.LastIndexByte(gid, '/'); i >= 0 {
		return gid[i+1:]
	}
	return gid
}
