// Command purchasesync runs the stages of the Purchase Syncing pipeline.
//
//	purchasesync control|ingest|join|sink|run|migrate|sites|replay|version [flags]
//
// Every flag has a PURCHASESYNC_* environment variable (flag "kafka.brokers"
// ↔ PURCHASESYNC_KAFKA_BROKERS); a flag given on the command line wins.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// The first SIGINT/SIGTERM cancels ctx: every stage drains and flushes.
	// A second one exits at once. One channel, registered before anything
	// runs, so no signal can slip through to the default action.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		cancel()
		<-sigs
		fmt.Fprintln(os.Stderr, "second signal: exiting without draining")
		os.Exit(1)
	}()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "purchasesync:", err)
		os.Exit(1)
	}
}
