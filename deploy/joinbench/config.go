package joinbench

import (
	"errors"
	"fmt"
	"time"
)

// Peers the benchmark can run beside the join.
const (
	PeerKStreams = "kstreams"
	PeerNone     = "none"
)

// Config is one benchmark run.
type Config struct {
	Brokers []string

	// The backlog (issue 16's shape).
	Orders     int
	Partitions int32
	Sites      int
	// Grace is every site's grace, and the Kafka Streams peer's grace.
	Grace time.Duration
	// BothShare of the orders have a storefront event besides their
	// webhook; the rest are webhook-only.
	BothShare float64
	// OrdersPerSecond spaces the webhooks' received-at stamps: the backlog
	// spans Orders/OrdersPerSecond of event time. The default, 5,000/s, is
	// a flash sale's burst (a fill through the ingest, whose ceiling is
	// about 16k webhooks/s here, stamps about as densely); 12/s is the
	// issue's sizing platform (1M orders a day), a backlog of hours of
	// downtime, on which Kafka Streams opens and drops a RocksDB segment
	// per minute of event time in each window store of each task.
	OrdersPerSecond float64
	// A storefront event is received between StorefrontEarliest and
	// StorefrontLatest after its webhook (negative: before it), except
	// LateShare of them, received 1 to 5 graces after it (after the hold:
	// the join registers those from the webhook and matches them late).
	StorefrontEarliest, StorefrontLatest time.Duration
	LateShare                            float64
	// FullBodyShare of the webhooks carry Shopify's full Order JSON (about
	// 5 KB and up); the rest are trimmed to the fields Purchase Syncing
	// reads, as a subscription with includeFields delivers them (1.5–1.9 KB).
	FullBodyShare float64
	// MismatchShare of the storefront events disagree with Shopify on one
	// compared field (ingesttest.Drifts), as with loadgen -mismatch.
	MismatchShare float64
	Seed          uint64
	// Compression of the fill's producer; lz4 is the ingest's default
	// (-kafka.compression).
	Compression string

	// The runs.
	Peer    string // PeerKStreams or PeerNone
	Restore bool   // kill -9 the join after the drain and time its restore
	// PurchasesyncBin is the purchasesync binary; PeerDir the Maven
	// project of the peer, already packaged (target/).
	PurchasesyncBin string
	PeerDir         string
	Java            string
	PeerHeap        string // -Xmx of the peer's JVM
	PeerThreads     int
	// PeerWindow is the peer's JoinWindows time difference: a storefront
	// event and a webhook this far apart in received-at still join.
	PeerWindow time.Duration
	// WorkDir holds the processes' logs and the peer's state directory;
	// empty: a temporary directory, removed at the end.
	WorkDir string
	// Timeout bounds each drain (and a restore).
	Timeout time.Duration
	// Poll is how often committed offsets and RSS are read.
	Poll time.Duration
	// KeepTopics leaves the scratch topics (for a look afterwards).
	KeepTopics bool
}

// DefaultConfig is issue 16's backlog shape with a small order count.
func DefaultConfig() Config {
	return Config{
		Brokers:            []string{"127.0.0.1:19092"},
		Orders:             100000,
		Partitions:         6,
		Sites:              20,
		Grace:              5 * time.Second,
		BothShare:          0.9,
		OrdersPerSecond:    5000,
		StorefrontEarliest: -2 * time.Second,
		StorefrontLatest:   4 * time.Second,
		LateShare:          0.02,
		FullBodyShare:      0.01,
		MismatchShare:      0.1,
		Seed:               1,
		Compression:        "lz4",
		Peer:               PeerKStreams,
		PurchasesyncBin:    "bin/purchasesync",
		PeerDir:            "deploy/joinbench/kstreams",
		Java:               "java",
		PeerHeap:           "1g",
		PeerThreads:        2,
		PeerWindow:         5 * time.Second,
		Timeout:            30 * time.Minute,
		Poll:               250 * time.Millisecond,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	share := func(v float64) bool { return v >= 0 && v <= 1 }
	switch {
	case len(c.Brokers) == 0:
		return errors.New("no Kafka brokers (-brokers)")
	case c.Orders < 1:
		return errors.New("orders must be at least 1 (-orders)")
	case c.Partitions < 1:
		return errors.New("partitions must be at least 1 (-partitions)")
	case c.Sites < 1 || c.Sites > 1000:
		return errors.New("sites must be between 1 and 1000 (-sites)")
	case c.Grace < 0 || c.Grace > 7*24*time.Hour:
		return errors.New("grace must be between 0s and 168h (-grace)")
	case c.OrdersPerSecond <= 0:
		return errors.New("orders per second must be positive (-rate)")
	case c.StorefrontEarliest > c.StorefrontLatest:
		return errors.New("storefront delay: earliest after latest")
	case !share(c.BothShare) || !share(c.LateShare) || !share(c.FullBodyShare) || !share(c.MismatchShare):
		return errors.New("shares must be between 0 and 1")
	case c.Peer != PeerKStreams && c.Peer != PeerNone:
		return fmt.Errorf("peer %q: want %s or %s (-peer)", c.Peer, PeerKStreams, PeerNone)
	case c.PeerThreads < 1:
		return errors.New("peer threads must be at least 1")
	case c.PeerWindow <= 0:
		return errors.New("peer window must be positive (-window)")
	case c.Timeout <= 0 || c.Poll <= 0:
		return errors.New("timeout and poll interval must be positive")
	case c.PurchasesyncBin == "":
		return errors.New("no purchasesync binary (-purchasesync)")
	}
	return nil
}
