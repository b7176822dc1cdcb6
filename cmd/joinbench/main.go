// Command joinbench is the join benchmark behind deploy/local/bench-join.sh
// (package deploy/joinbench): flags and wiring only.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"purchasesync/deploy/joinbench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "joinbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg := joinbench.DefaultConfig()
	brokers := strings.Join(cfg.Brokers, ",")
	if v := getenv("PURCHASESYNC_KAFKA_BROKERS"); v != "" {
		brokers = v // the local stack's line (stack.sh up prints it)
	}
	fs := flag.NewFlagSet("joinbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&brokers, "brokers", brokers, "Kafka brokers, comma-separated (plaintext); default $PURCHASESYNC_KAFKA_BROKERS")
	fs.IntVar(&cfg.Orders, "orders", cfg.Orders, "orders in the backlog")
	partitions := fs.Int("partitions", int(cfg.Partitions), "partitions of the co-partitioned topics")
	fs.IntVar(&cfg.Sites, "sites", cfg.Sites, "sites (shops) the orders are spread over")
	fs.DurationVar(&cfg.Grace, "grace", cfg.Grace, "every site's grace, and the Kafka Streams peer's")
	fs.Float64Var(&cfg.OrdersPerSecond, "rate", cfg.OrdersPerSecond, "orders per second of received-at time (the backlog's event-time span is orders/rate)")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the backlog's generator")
	fs.StringVar(&cfg.Peer, "peer", cfg.Peer, "peer run on the same backlog: kstreams or none")
	fs.BoolVar(&cfg.Restore, "restore", cfg.Restore, "after the drain, kill -9 the join, start it again and time its restore")
	fs.StringVar(&cfg.PurchasesyncBin, "purchasesync", cfg.PurchasesyncBin, "the purchasesync binary")
	fs.StringVar(&cfg.PeerDir, "peer.dir", cfg.PeerDir, "the peer's Maven project, packaged (target/)")
	fs.StringVar(&cfg.Java, "java", cfg.Java, "the java command")
	fs.StringVar(&cfg.PeerHeap, "peer.heap", cfg.PeerHeap, "the peer's JVM heap (-Xmx)")
	fs.IntVar(&cfg.PeerThreads, "peer.threads", cfg.PeerThreads, "the peer's stream threads")
	fs.DurationVar(&cfg.PeerWindow, "window", cfg.PeerWindow, "the peer's join window (JoinWindows time difference)")
	fs.StringVar(&cfg.Compression, "compression", cfg.Compression, "the fill's producer compression (the ingest's default is lz4)")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "bound on each drain and on the restore")
	fs.StringVar(&cfg.WorkDir, "workdir", cfg.WorkDir, "directory for the processes' logs and the peer's state; empty: a temporary one, removed at the end")
	fs.BoolVar(&cfg.KeepTopics, "keep-topics", cfg.KeepTopics, "leave the scratch topics and groups (they are deleted by default)")
	asJSON := fs.Bool("json", false, "print machine-readable lines (one JSON object each) instead of the table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg.Brokers = strings.Split(brokers, ",")
	cfg.Partitions = int32(*partitions)
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	rep, err := joinbench.Run(ctx, cfg, log)
	if err != nil {
		return err
	}
	if *asJSON {
		return rep.WriteJSON(stdout)
	}
	return rep.WriteTable(stdout)
}
