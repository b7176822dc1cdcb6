package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// command is one subcommand: it parses its own flags from args (without the
// subcommand name) and runs until ctx ends or it fails.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error
}

func commands() map[string]command {
	return map[string]command{
		"ingest":  {"serve the public HTTP ingest (webhooks, storefront events)", cmdIngest},
		"join":    {"run the exactly-once join processor", cmdJoin},
		"sink":    {"load purchases, discrepancies and raw events into ClickHouse", cmdSink},
		"run":     {"run every stage in one process (single-machine default)", cmdRun},
		"migrate": {"create Kafka topics and apply ClickHouse migrations", cmdMigrate},
		"sites":   {"manage the site registry (list, get, put, enable, disable, delete)", cmdSites},
		"replay":  {"re-run the join from a point in time into other topics or a dry-run summary", cmdReplay},
		"control": {"serve the admin API and run the control plane (watchdog, reconciliation, compliance) on its own", cmdControl},
		"version": {"print the version, the git commit and the Go version of this binary", cmdVersion},
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cmds := commands()
	if len(args) < 2 || args[1] == "-h" || args[1] == "--help" || args[1] == "help" {
		usage(stdout, cmds)
		return nil
	}
	c, ok := cmds[args[1]]
	if !ok {
		usage(stdout, cmds)
		return fmt.Errorf("unknown subcommand %q", args[1])
	}
	// -h prints the flags (the flag package did) and -dump the
	// configuration; neither is a failure.
	if err := c.run(ctx, args[2:], getenv, stdout); err != nil && !errors.Is(err, flag.ErrHelp) && !errors.Is(err, errDumped) && !errors.Is(err, errChecked) {
		return err
	}
	return nil
}

func usage(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("usage: purchasesync <subcommand> [flags]\n\nsubcommands:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %-8s %s\n", n, cmds[n].summary)
	}
	b.WriteString("\nEvery flag has a PURCHASESYNC_* environment variable; run a subcommand with -h for its flags.\n")
	io.WriteString(w, b.String())
}
