package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"
)

// flagSet wraps flag.FlagSet so that every flag has an environment-variable
// twin: "kafka.brokers" ↔ PURCHASESYNC_KAFKA_BROKERS. The environment sets
// the default; the command line wins over it. A malformed environment value
// is an error naming the variable.
type flagSet struct {
	*flag.FlagSet
	getenv func(string) string
	errs   []error
}

func newFlagSet(name string, getenv func(string) string) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	return &flagSet{FlagSet: fs, getenv: getenv}
}

// envName maps a flag name to its environment variable.
func envName(flagName string) string {
	r := strings.NewReplacer(".", "_", "-", "_")
	return "PURCHASESYNC_" + strings.ToUpper(r.Replace(flagName))
}

func (f *flagSet) env(name string) (string, bool) {
	v := f.getenv(envName(name))
	return v, v != ""
}

func (f *flagSet) usage(name, usage string) string {
	return fmt.Sprintf("%s (env %s)", usage, envName(name))
}

func (f *flagSet) String(name, def, usage string) *string {
	if v, ok := f.env(name); ok {
		def = v
	}
	return f.FlagSet.String(name, def, f.usage(name, usage))
}

func (f *flagSet) Bool(name string, def bool, usage string) *bool {
	if v, ok := f.env(name); ok {
		switch strings.ToLower(v) {
		case "1", "true", "yes", "on":
			def = true
		case "0", "false", "no", "off":
			def = false
		default:
			f.errs = append(f.errs, fmt.Errorf("%s=%q: want true or false", envName(name), v))
		}
	}
	return f.FlagSet.Bool(name, def, f.usage(name, usage))
}

func (f *flagSet) Int(name string, def int, usage string) *int {
	if v, ok := f.env(name); ok {
		var n int
		if _, err := fmt.Sscanf(v, "%d", &n); err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s=%q: want an integer", envName(name), v))
		} else {
			def = n
		}
	}
	return f.FlagSet.Int(name, def, f.usage(name, usage))
}

func (f *flagSet) Duration(name string, def time.Duration, usage string) *time.Duration {
	if v, ok := f.env(name); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s=%q: want a duration such as 10s: %w", envName(name), v, err))
		} else {
			def = d
		}
	}
	return f.FlagSet.Duration(name, def, f.usage(name, usage))
}

// parse parses args and reports the first malformed environment value.
func (f *flagSet) parse(args []string) error {
	if err := f.FlagSet.Parse(args); err != nil {
		return err
	}
	if len(f.errs) > 0 {
		return f.errs[0]
	}
	return nil
}

// splitList splits a comma-separated flag value, dropping empty parts.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

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
