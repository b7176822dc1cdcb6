package joinbench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Backlog describes the filled backlog.
type Backlog struct {
	Orders, Webhooks, Storefront int
	Bytes                        int64
	Partitions                   int32
	Sites                        int
	Grace                        time.Duration
	OrdersPerSecond              float64
	EventSpan                    time.Duration // first to last received-at
	Fill                         time.Duration
}

// Records is webhooks plus storefront events.
func (b Backlog) Records() int { return b.Webhooks + b.Storefront }

// MeanRecordBytes is the mean size of a record (key, value, headers).
func (b Backlog) MeanRecordBytes() float64 {
	if b.Records() == 0 {
		return 0
	}
	return float64(b.Bytes) / float64(b.Records())
}

// Drain is one peer's run over the backlog.
type Drain struct {
	Name    string
	Records int64
	// Took is from process start until its group had committed both
	// inputs to their end offsets.
	Took time.Duration
	// PeakRSS is VmHWM; MaxSampledRSS the largest VmRSS sampled, EndRSS
	// the last one (at the drain's end).
	PeakRSS, MaxSampledRSS, EndRSS int64
	// Heap is the heap figure at the end (HeapKind says which), LiveHeap
	// the Go heap marked live by the last GC where the process exports it.
	Heap, LiveHeap float64
	HeapKind       string
	// StateKeys is the keys the peer holds at the end: the join's
	// purchasesync_join_state_keys, the peer's RocksDB estimate-num-keys.
	StateKeys float64
}

// RecordsPerSec is the drain's throughput.
func (d Drain) RecordsPerSec() float64 {
	if d.Took <= 0 {
		return 0
	}
	return float64(d.Records) / d.Took.Seconds()
}

// HeapPerKey is Heap / StateKeys (0 without keys).
func (d Drain) HeapPerKey() float64 {
	if d.StateKeys <= 0 {
		return 0
	}
	return d.Heap / d.StateKeys
}

// LiveHeapPerKey is LiveHeap / StateKeys (0 without either).
func (d Drain) LiveHeapPerKey() float64 {
	if d.StateKeys <= 0 {
		return 0
	}
	return d.LiveHeap / d.StateKeys
}

// Restore is the join's restart after a SIGKILL.
type Restore struct {
	// Ready is from process start to /readyz 200; Restored to the last
	// partition's "partition restored" line.
	Ready, Restored time.Duration
	// From the join's metrics: purchasesync_join_restore_seconds (sum and
	// count), purchasesync_join_restored_keys_total (keys restored),
	// purchasesync_join_state_keys.
	RestoreSeconds    float64
	RestoreCount      int
	RestoredKeysTotal float64
	StateKeys         float64
	// From its "partition restored" lines.
	Partitions       int
	Keys, Records    int64
	Held             int64
	LongestPartition time.Duration
	PeakRSS          int64
}

func (r *Restore) add(lines []RestoredLine) {
	for _, l := range lines {
		r.Partitions++
		r.Keys += l.Keys
		r.Records += l.Records
		r.Held += l.Held
		if d, err := time.ParseDuration(l.Took); err == nil {
			r.LongestPartition = max(r.LongestPartition, d)
		}
	}
}

// Report is one benchmark run.
type Report struct {
	Prefix  string
	Backlog Backlog
	Join    Drain
	Restore *Restore
	Peer    *Drain
}

// Ratios are purchasesync's throughput and peak RSS over the peer's; ok is
// false without a peer (or with a peer figure of zero).
func (r Report) Ratios() (throughput, rss float64, ok bool) {
	if r.Peer == nil || r.Peer.RecordsPerSec() == 0 || r.Peer.PeakRSS == 0 {
		return 0, 0, false
	}
	return r.Join.RecordsPerSec() / r.Peer.RecordsPerSec(), float64(r.Join.PeakRSS) / float64(r.Peer.PeakRSS), true
}

// WriteTable prints the report for a person.
func (r Report) WriteTable(w io.Writer) error {
	b := r.Backlog
	fmt.Fprintf(w, "join benchmark: %s orders, %s records (%s webhooks, %s storefront events), mean record %s, %s in all\n",
		thousands(float64(b.Orders)), thousands(float64(b.Records())), thousands(float64(b.Webhooks)), thousands(float64(b.Storefront)),
		bytesOf(b.MeanRecordBytes()), bytesOf(float64(b.Bytes)))
	fmt.Fprintf(w, "  %d partitions, %d sites, grace %s, %g orders/s of received-at time (%s of event time); filled in %s\n\n",
		b.Partitions, b.Sites, b.Grace, b.OrdersPerSecond, b.EventSpan.Round(time.Second), secs(b.Fill))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\trecords/s\tdrain\tpeak RSS\tRSS at end\theap at end\tstate keys\theap/key\t")
	row := func(d Drain) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", d.Name, thousands(d.RecordsPerSec()), secs(d.Took),
			bytesOf(float64(d.PeakRSS)), bytesOf(float64(d.EndRSS)), bytesOf(d.Heap), thousands(d.StateKeys), perKey(d.HeapPerKey()))
	}
	row(r.Join)
	if r.Peer != nil {
		row(*r.Peer)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n  drain: process start until its group committed both inputs to their end offsets; peak RSS: VmHWM\n")
	fmt.Fprintf(w, "  purchasesync heap: %s", r.Join.HeapKind)
	if r.Join.LiveHeap > 0 {
		fmt.Fprintf(w, " (live after the last GC: %s, %s per key)", bytesOf(r.Join.LiveHeap), perKey(r.Join.LiveHeapPerKey()))
	}
	fmt.Fprintln(w)
	if r.Peer != nil {
		fmt.Fprintf(w, "  kstreams heap: %s; its state keys are its join stores' (window + grace), not a 7-day horizon\n", r.Peer.HeapKind)
	}
	if tr, rss, ok := r.Ratios(); ok {
		fmt.Fprintf(w, "\npurchasesync/kstreams: throughput %.2f×, peak RSS %.2f×\n", tr, rss)
	}
	if x := r.Restore; x != nil {
		fmt.Fprintf(w, "\nrestore after kill -9: /readyz 200 after %s; %d partitions restored after %s; restore_seconds sum %s (longest partition %s); %s keys (%s held) from %s changelog records; peak RSS %s\n",
			secs(x.Ready), x.Partitions, secs(x.Restored), secs(time.Duration(x.RestoreSeconds*float64(time.Second))), secs(x.LongestPartition),
			thousands(float64(x.Keys)), thousands(float64(x.Held)), thousands(float64(x.Records)), bytesOf(float64(x.PeakRSS)))
	}
	return nil
}

// WriteJSON prints the report as machine-readable lines, one JSON object
// each, told apart by "kind": backlog, drain (one per peer), ratio,
// restore.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	b := r.Backlog
	lines := []any{map[string]any{"kind": "backlog", "prefix": r.Prefix, "orders": b.Orders, "records": b.Records(),
		"webhooks": b.Webhooks, "storefront": b.Storefront, "bytes": b.Bytes, "mean_record_bytes": round1(b.MeanRecordBytes()),
		"partitions": b.Partitions, "sites": b.Sites, "grace_s": b.Grace.Seconds(), "orders_per_s": b.OrdersPerSecond,
		"event_span_s": round1(b.EventSpan.Seconds()), "fill_s": round1(b.Fill.Seconds())}}
	drain := func(d Drain) map[string]any {
		return map[string]any{"kind": "drain", "name": d.Name, "records": d.Records, "seconds": round3(d.Took.Seconds()),
			"records_per_s": round1(d.RecordsPerSec()), "peak_rss_bytes": d.PeakRSS, "max_sampled_rss_bytes": d.MaxSampledRSS,
			"end_rss_bytes": d.EndRSS, "heap_bytes": d.Heap, "heap_kind": d.HeapKind, "live_heap_bytes": d.LiveHeap,
			"state_keys": d.StateKeys, "heap_bytes_per_key": round1(d.HeapPerKey())}
	}
	lines = append(lines, drain(r.Join))
	if r.Peer != nil {
		lines = append(lines, drain(*r.Peer))
	}
	if tr, rss, ok := r.Ratios(); ok {
		lines = append(lines, map[string]any{"kind": "ratio", "of": "purchasesync/kstreams", "throughput": round3(tr), "peak_rss": round3(rss)})
	}
	if x := r.Restore; x != nil {
		lines = append(lines, map[string]any{"kind": "restore", "ready_s": round3(x.Ready.Seconds()), "restored_s": round3(x.Restored.Seconds()),
			"restore_seconds_sum": round3(x.RestoreSeconds), "restore_count": x.RestoreCount, "partitions": x.Partitions,
			"keys": x.Keys, "held": x.Held, "changelog_records": x.Records, "restored_keys_total": x.RestoredKeysTotal,
			"longest_partition_s": round3(x.LongestPartition.Seconds()), "peak_rss_bytes": x.PeakRSS})
	}
	for _, l := range lines {
		if err := enc.Encode(l); err != nil {
			return err
		}
	}
	return nil
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }
func round3(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }

func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

// thousands formats a count with thousands separators: 949,958.
func thousands(v float64) string {
	n := int64(v + 0.5)
	s := fmt.Sprint(n)
	if n < 0 {
		return s
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// bytesOf formats a size in binary units: 1.4 KiB, 2.33 GiB.
func bytesOf(v float64) string {
	switch {
	case v >= 1<<30:
		return fmt.Sprintf("%.2f GiB", v/(1<<30))
	case v >= 1<<20:
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	case v >= 1<<10:
		return fmt.Sprintf("%.2f KiB", v/(1<<10))
	}
	return fmt.Sprintf("%.0f B", v)
}

func perKey(v float64) string {
	if v == 0 {
		return "-"
	}
	return bytesOf(v)
}
