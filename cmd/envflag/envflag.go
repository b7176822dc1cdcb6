// Package envflag gives every flag of purchasesync's commands an
// environment-variable twin: flag "kafka.brokers" ↔ PURCHASESYNC_KAFKA_BROKERS.
// The environment sets the default; the command line wins over it. A
// malformed environment value is an error naming the variable.
//
// Secrets (passwords, tokens, API keys) are defined with Secret: their
// variable PURCHASESYNC_X, or the file named by PURCHASESYNC_X_FILE (a
// mounted Kubernetes secret; the trailing newline is trimmed), sets them,
// never both. A secret's default is never shown by -h, and no error of this
// package quotes a secret's value.
//
// Both mains (cmd/purchasesync, cmd/loadgen) and cmd/kafkaconf use it.
package envflag

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// Prefix starts every environment variable of a flag.
const Prefix = "PURCHASESYNC_"

// FileSuffix turns a secret's variable into the one naming a file that
// holds it: PURCHASESYNC_ADMIN_TOKEN_FILE.
const FileSuffix = "_FILE"

// maxSecretFile bounds what ReadSecret reads from a file: a secret is small,
// and a mistyped path such as /dev/zero must not fill the memory.
const maxSecretFile = 1 << 20

// FlagSet is a flag.FlagSet whose String, Bool, Int, Duration and Secret
// flags have an environment twin. The embedded FlagSet's own methods
// (fs.FlagSet.String, fs.StringVar, ...) define flags without one, for
// settings that must come from the command line only.
type FlagSet struct {
	*flag.FlagSet
	getenv  func(string) string
	errs    []error
	fromEnv map[string]bool   // flags that their environment set
	secrets map[string]string // flags defined with Secret or SecretEnv → their variable
}

// New returns an empty FlagSet that reads the environment through getenv
// (os.Getenv in a main, a map in tests). Parse errors are returned, not
// fatal (flag.ContinueOnError).
func New(name string, getenv func(string) string) *FlagSet {
	return &FlagSet{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), getenv: getenv, fromEnv: map[string]bool{}, secrets: map[string]string{}}
}

// EnvName is the environment variable of a flag: "kafka.tls.caFile" →
// PURCHASESYNC_KAFKA_TLS_CAFILE.
func EnvName(flagName string) string {
	r := strings.NewReplacer(".", "_", "-", "_")
	return Prefix + strings.ToUpper(r.Replace(flagName))
}

// Getenv reads a variable through the FlagSet's getenv.
func (f *FlagSet) Getenv(name string) string { return f.getenv(name) }

func (f *FlagSet) env(name string) (string, bool) {
	v := f.getenv(EnvName(name))
	if v != "" {
		f.fromEnv[name] = true
	}
	return v, v != ""
}

func usage(name, text string) string {
	return fmt.Sprintf("%s (env %s)", text, EnvName(name))
}

// String defines a string flag with an environment twin.
func (f *FlagSet) String(name, def, text string) *string {
	if v, ok := f.env(name); ok {
		def = v
	}
	return f.FlagSet.String(name, def, usage(name, text))
}

// Bool defines a bool flag with an environment twin, which takes
// 1/true/yes/on or 0/false/no/off.
func (f *FlagSet) Bool(name string, def bool, text string) *bool {
	if v, ok := f.env(name); ok {
		switch strings.ToLower(v) {
		case "1", "true", "yes", "on":
			def = true
		case "0", "false", "no", "off":
			def = false
		default:
			f.errs = append(f.errs, fmt.Errorf("%s=%q: want true or false", EnvName(name), v))
		}
	}
	return f.FlagSet.Bool(name, def, usage(name, text))
}

// Int defines an int flag with an environment twin.
func (f *FlagSet) Int(name string, def int, text string) *int {
	if v, ok := f.env(name); ok {
		var n int
		if _, err := fmt.Sscanf(v, "%d", &n); err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s=%q: want an integer", EnvName(name), v))
		} else {
			def = n
		}
	}
	return f.FlagSet.Int(name, def, usage(name, text))
}

// Duration defines a duration flag with an environment twin.
func (f *FlagSet) Duration(name string, def time.Duration, text string) *time.Duration {
	if v, ok := f.env(name); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s=%q: want a duration such as 10s: %w", EnvName(name), v, err))
		} else {
			def = d
		}
	}
	return f.FlagSet.Duration(name, def, usage(name, text))
}

// Secret defines a flag holding a secret, set by its variable EnvName(name)
// or by the file its _FILE variable names. See SecretEnv.
func (f *FlagSet) Secret(name, text string) *string {
	return f.SecretEnv(name, EnvName(name), text)
}

// SecretEnv is Secret with the variable env instead of EnvName(name). The
// flag's printed default is always empty, whatever the environment holds;
// the help names both variables and recommends them over the flag, which
// other users of the machine see in ps.
func (f *FlagSet) SecretEnv(name, env, text string) *string {
	p := f.FlagSet.String(name, "", fmt.Sprintf("%s (env %s or %s%s; prefer them to the flag, which shows in ps)", text, env, env, FileSuffix))
	f.secrets[name] = env
	v, err := ReadSecret(f.getenv, env)
	if err != nil {
		f.errs = append(f.errs, err)
	}
	if v != "" {
		// After the definition: the flag's DefValue, which -h prints,
		// stays empty; Parse overwrites it when the flag is given.
		*p = v
		f.fromEnv[name] = true
	}
	return p
}

// ReadSecret returns the value of the variable env, or else the content of
// the file named by env+"_FILE" without its trailing newline. Both set is an
// error naming both; so is an empty or unreadable file. Errors never quote
// the secret.
func ReadSecret(getenv func(string) string, env string) (string, error) {
	fileEnv := env + FileSuffix
	v, path := getenv(env), getenv(fileEnv)
	switch {
	case v != "" && path != "":
		return "", fmt.Errorf("both %s and %s are set: set only one", env, fileEnv)
	case path == "":
		return v, nil
	}
	fh, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("cannot read %s: %w", fileEnv, err)
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("cannot read %s: %w", fileEnv, err)
	}
	if len(b) > maxSecretFile {
		return "", fmt.Errorf("%s=%s: larger than %d bytes, not a secret", fileEnv, path, maxSecretFile)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s=%s: the file is empty", fileEnv, path)
	}
	return s, nil
}

// IsSet reports whether a flag was given on the command line or through its
// environment (for a secret, also its file). Call it after Parse.
func (f *FlagSet) IsSet(name string) bool {
	set := f.fromEnv[name]
	f.Visit(func(fl *flag.Flag) { set = set || fl.Name == name })
	return set
}

// Dump writes the effective configuration after Parse: one line per flag,
// its value and where the value came from (the command line, the
// environment, or the default). A secret's value is never written, only
// whether it is set.
func (f *FlagSet) Dump(w io.Writer) error {
	onLine := map[string]bool{}
	f.Visit(func(fl *flag.Flag) { onLine[fl.Name] = true })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "flag\tvalue\tfrom")
	f.VisitAll(func(fl *flag.Flag) {
		from := "default"
		switch {
		case onLine[fl.Name]:
			from = "command line"
		case f.fromEnv[fl.Name]:
			from = "env " + EnvName(fl.Name)
		}
		v := fl.Value.String()
		if env, secret := f.secrets[fl.Name]; secret {
			if from != "command line" && f.fromEnv[fl.Name] {
				from = "env " + env + " or " + env + FileSuffix
			}
			v = map[bool]string{true: "(set, not shown)", false: "(not set)"}[v != ""]
		} else if v == "" {
			v = `""`
		}
		fmt.Fprintf(tw, "-%s\t%s\t%s\n", fl.Name, v, from)
	})
	return tw.Flush()
}

// Parse parses the command line and then reports the first malformed
// environment value or unreadable secret file.
func (f *FlagSet) Parse(args []string) error {
	if err := f.FlagSet.Parse(args); err != nil {
		return err
	}
	if len(f.errs) > 0 {
		return f.errs[0]
	}
	return nil
}

// SplitList splits a comma-separated flag value, dropping blanks.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
