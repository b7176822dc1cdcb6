package ledger

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"purchasesync/schemas"
)

// tally is one scenario's line of the report.
type tally struct {
	orders, refused, ambiguous int
	errs                       map[string]int
	examples                   map[string][]string
}

// report judges every order, prints the table and returns ErrFindings
// (wrapped with the scenarios that have errors) if any order is wrong.
// canaries are the keys of the orders that proved the join knows the sites.
func report(cfg Config, s *sender, orders []*order, canaries []string, obs *observed, sentIn, settledIn time.Duration) error {
	tallies := map[string]*tally{}
	get := func(name string) *tally {
		t := tallies[name]
		if t == nil {
			t = &tally{errs: map[string]int{}, examples: map[string][]string{}}
			tallies[name] = t
		}
		return t
	}
	known := map[string]bool{}
	for _, k := range canaries {
		known[k] = true
	}
	ru := cfg.rules()
	storefrontEvents := 0
	for _, o := range orders {
		k := schemas.Key(o.site, o.key)
		known[k] = true
		storefrontEvents += len(o.sf)
		out := judge(o, obs.facts(o), ru)
		if w := obs.rows[k]; w != nil && len(obs.byOrderID[w.orderID]) > 1 {
			out.findings = append(out.findings, finding{catDoubled, fmt.Sprintf("Shopify order %s has %d purchases: %s", w.orderID,
				len(obs.byOrderID[w.orderID]), strings.Join(obs.byOrderID[w.orderID], ", "))})
		}
		t := get(o.sc.name)
		t.orders++
		t.refused += out.refused
		if out.ambiguous {
			t.ambiguous++
		}
		for _, f := range out.findings {
			t.errs[f.category]++
			if len(t.examples[f.category]) < 3 {
				t.examples[f.category] = append(t.examples[f.category], fmt.Sprintf("%s (%s): %s", k, o.mode, f.detail))
			}
		}
	}
	// Purchases of the run's sites that no order explains.
	for k, w := range obs.rows {
		if !known[k] {
			t := get("(no such order)")
			t.errs[catUnexpected]++
			if len(t.examples[catUnexpected]) < 3 {
				t.examples[catUnexpected] = append(t.examples[catUnexpected], fmt.Sprintf("%s: registered via %s", k, w.via))
			}
		}
	}

	names := make([]string, 0, len(scenarios)+1)
	for _, sc := range scenarios {
		if tallies[sc.name] != nil {
			names = append(names, sc.name)
		}
	}
	if tallies["(no such order)"] != nil {
		names = append(names, "(no such order)")
	}
	w := cfg.Out
	fmt.Fprintf(w, "ledger check %s: %d orders on 3 sites (order_id, order_number, order_name), sent in %s at %.0f/s; ClickHouse settled %s later\n",
		cfg.RunID, len(orders), sentIn.Round(100*time.Millisecond), cfg.Rate, settledIn.Round(100*time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "scenario\torders\trefused\tambiguous\t")
	for _, c := range categories {
		fmt.Fprint(tw, c+"\t")
	}
	fmt.Fprintln(tw)
	total := &tally{errs: map[string]int{}}
	for _, name := range names {
		t := tallies[name]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t", name, t.orders, t.refused, t.ambiguous)
		total.orders += t.orders
		total.refused += t.refused
		total.ambiguous += t.ambiguous
		for _, c := range categories {
			fmt.Fprintf(tw, "%d\t", t.errs[c])
			total.errs[c] += t.errs[c]
		}
		fmt.Fprintln(tw)
	}
	fmt.Fprintf(tw, "total\t%d\t%d\t%d\t", total.orders, total.refused, total.ambiguous)
	nErrs := 0
	for _, c := range categories {
		fmt.Fprintf(tw, "%d\t", total.errs[c])
		nErrs += total.errs[c]
	}
	fmt.Fprintln(tw)
	tw.Flush()
	fmt.Fprintln(w, "answers:")
	for _, l := range s.answerTable() {
		fmt.Fprintln(w, "  "+l)
	}
	fmt.Fprintln(w, "refused: storefront events answered 503 or not at all that did not land (a browser does not retry): the truth expects their orders from the webhook alone")
	fmt.Fprintln(w, "ambiguous: orders whose received-at stamps (raw_events keeps seconds) cannot tell which side registers; either is accepted")
	var bad []string
	if limit := int(cfg.MaxRefused * float64(storefrontEvents)); total.refused > limit {
		fmt.Fprintf(w, "refused: %d orders lost their storefront events to refusals, more than -maxRefused %.0f%% of %d events allows\n",
			total.refused, 100*cfg.MaxRefused, storefrontEvents)
		bad = append(bad, fmt.Sprintf("refused×%d", total.refused))
		nErrs++
	}
	if nErrs == 0 {
		fmt.Fprintln(w, "result: OK, 0 errors")
		return nil
	}
	for _, name := range names {
		t := tallies[name]
		cats := make([]string, 0, len(t.errs))
		for c := range t.errs {
			cats = append(cats, c)
		}
		slices.Sort(cats)
		for _, c := range cats {
			fmt.Fprintf(w, "%s: %d %s, e.g.\n", name, t.errs[c], c)
			for _, e := range t.examples[c] {
				fmt.Fprintf(w, "    %s\n", e)
			}
			bad = append(bad, fmt.Sprintf("%s %s×%d", name, c, t.errs[c]))
		}
	}
	fmt.Fprintf(w, "result: FAILED, %d errors\n", nErrs)
	return fmt.Errorf("%w: %s", ErrFindings, strings.Join(bad, ", "))
}
