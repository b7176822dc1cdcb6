// Command purchasesync runs the stages of the Purchase Syncing pipeline.
//
//	purchasesync ingest|join|sink|run|migrate|sites|replay [flags]
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// A second signal exits at once: the first one is draining.
		<-ctx.Done()
		stop()
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
		<-ch
		fmt.Fprintln(os.Stderr, "second signal: exiting without draining")
		os.Exit(1)
	}()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "purchasesync:", err)
		os.Exit(1)
	}
}
