package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"purchasesync/cmd/envflag"
)

// flagSet is envflag.FlagSet (every flag has an environment twin:
// "kafka.brokers" ↔ PURCHASESYNC_KAFKA_BROKERS, and secrets also a _FILE
// one) with this package's short names. fs.FlagSet is the plain
// flag.FlagSet, for flags without a twin.
type flagSet struct {
	*envFlagSet
	dump   *bool     // -dump, on the subcommands that run a stage
	check  *bool     // -check, on the same
	dumpTo io.Writer // where -dump and -check print
}

type envFlagSet = envflag.FlagSet

func newFlagSet(name string, getenv func(string) string) *flagSet {
	return &flagSet{envFlagSet: envflag.New(name, getenv)}
}

// errDumped and errChecked end a subcommand whose -dump printed its
// configuration or whose -check found it good: a success, like -h.
var (
	errDumped  = errors.New("configuration printed (-dump)")
	errChecked = errors.New("configuration checked (-check)")
)

// addDump defines -dump and -check, which print to out:
//   - -dump prints the effective configuration (each flag, its value and
//     whether it came from the command line, the environment or the
//     default; secrets masked) and exits without starting anything;
//   - -check builds every stage as for a run, which validates its
//     configuration, and checks that Kafka (and ClickHouse, where the
//     subcommand uses it) accept the connection settings, an unreachable
//     service included; then it exits, creating and changing nothing.
func (f *flagSet) addDump(out io.Writer) {
	if out == nil {
		out = os.Stdout
	}
	f.dump = f.FlagSet.Bool("dump", false, "print the effective configuration (every flag, its value and where it came from; secrets masked) and exit")
	f.check = f.FlagSet.Bool("check", false, "validate the configuration and check that Kafka (and ClickHouse, where used) answer with it, then exit (status 0: all good); creates and changes nothing")
	f.dumpTo = out
}

// checking reports whether this is a -check run.
func (f *flagSet) checking() bool { return f.check != nil && *f.check }

// checked ends a -check run that found nothing wrong.
func (f *flagSet) checked() error {
	fmt.Fprintf(f.dumpTo, "%s -check: the configuration is valid and every service it names answered\n", f.Name())
	return errChecked
}

// envName maps a flag name to its environment variable.
func envName(flagName string) string { return envflag.EnvName(flagName) }

// parse parses args and reports the first malformed environment value or
// unreadable secret file. With -dump it prints the configuration and
// returns errDumped.
func (f *flagSet) parse(args []string) error {
	if err := f.Parse(args); err != nil {
		return err
	}
	if f.dump != nil && *f.dump {
		if err := f.Dump(f.dumpTo); err != nil {
			return err
		}
		return errDumped
	}
	return nil
}

// splitList splits a comma-separated flag value, dropping empty parts.
func splitList(s string) []string { return envflag.SplitList(s) }

// logFlags are the logging flags every subcommand shares.
type logFlags struct {
	level  *string
	format *string
}

func addLogFlags(fs *flagSet) logFlags {
	return logFlags{
		level:  fs.String("log.level", "info", "log level: debug, info, warn, error"),
		format: fs.String("log.format", "json", "log format: json (production) or text"),
	}
}

func (l logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*l.level)); err != nil {
		return nil, fmt.Errorf("invalid -log.level %q (PURCHASESYNC_LOG_LEVEL): %w", *l.level, err)
	}
	if w == nil {
		w = os.Stderr
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch *l.format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("invalid -log.format %q (PURCHASESYNC_LOG_FORMAT): want json or text", *l.format)
}
