package envflag

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func newSet(env map[string]string) *FlagSet {
	fs := New("test", func(k string) string { return env[k] })
	fs.SetOutput(&bytes.Buffer{})
	return fs
}

func TestEnvTwins(t *testing.T) {
	if got := EnvName("kafka.tls.caFile"); got != "PURCHASESYNC_KAFKA_TLS_CAFILE" {
		t.Errorf("EnvName = %s", got)
	}
	env := map[string]string{"PURCHASESYNC_A_S": "env", "PURCHASESYNC_A_B": "yes", "PURCHASESYNC_A_I": "7", "PURCHASESYNC_A_D": "3s"}
	fs := newSet(env)
	s, b, i, d := fs.String("a.s", "def", ""), fs.Bool("a.b", false, ""), fs.Int("a.i", 1, ""), fs.Duration("a.d", time.Second, "")
	plain := fs.FlagSet.String("a.plain", "def", "") // no twin
	if err := fs.Parse([]string{"-a.i", "9"}); err != nil {
		t.Fatal(err)
	}
	if *s != "env" || !*b || *i != 9 || *d != 3*time.Second || *plain != "def" {
		t.Errorf("got %q %v %d %s %q", *s, *b, *i, *d, *plain)
	}
	if !fs.IsSet("a.s") || !fs.IsSet("a.i") || fs.IsSet("a.plain") {
		t.Errorf("IsSet: a.s %v, a.i %v, a.plain %v", fs.IsSet("a.s"), fs.IsSet("a.i"), fs.IsSet("a.plain"))
	}
	for name, v := range map[string]string{"PURCHASESYNC_A_B": "maybe", "PURCHASESYNC_A_I": "x", "PURCHASESYNC_A_D": "3"} {
		fs := newSet(map[string]string{name: v})
		fs.Bool("a.b", false, "")
		fs.Int("a.i", 0, "")
		fs.Duration("a.d", 0, "")
		if err := fs.Parse(nil); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: %v, want an error naming the variable", name, v, err)
		}
	}
}

func TestSecret(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	os.WriteFile(file, []byte("from-file\r\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)

	secret := func(env map[string]string, args ...string) (string, error) {
		fs := newSet(env)
		p := fs.Secret("admin.token", "")
		err := fs.Parse(args)
		return *p, err
	}
	for _, c := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, nil, ""},
		{map[string]string{"PURCHASESYNC_ADMIN_TOKEN": "from-env"}, nil, "from-env"},
		{map[string]string{"PURCHASESYNC_ADMIN_TOKEN_FILE": file}, nil, "from-file"},
		{map[string]string{"PURCHASESYNC_ADMIN_TOKEN_FILE": file}, []string{"-admin.token", "flag"}, "flag"},
	} {
		if got, err := secret(c.env, c.args...); err != nil || got != c.want {
			t.Errorf("%v %q: %q %v, want %q", c.env, c.args, got, err, c.want)
		}
	}
	for env, want := range map[string]string{
		"both":    "both PURCHASESYNC_ADMIN_TOKEN and PURCHASESYNC_ADMIN_TOKEN_FILE are set",
		"empty":   "PURCHASESYNC_ADMIN_TOKEN_FILE=" + empty + ": the file is empty",
		"missing": "cannot read PURCHASESYNC_ADMIN_TOKEN_FILE: open " + filepath.Join(dir, "missing"),
	} {
		e := map[string]map[string]string{
			"both":    {"PURCHASESYNC_ADMIN_TOKEN": "from-env", "PURCHASESYNC_ADMIN_TOKEN_FILE": file},
			"empty":   {"PURCHASESYNC_ADMIN_TOKEN_FILE": empty},
			"missing": {"PURCHASESYNC_ADMIN_TOKEN_FILE": filepath.Join(dir, "missing")},
		}[env]
		_, err := secret(e)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "from-") {
			t.Errorf("%s: %v, want %q and no secret", env, err, want)
		}
	}
	// A variable of its own (DESIGN §6 names the Shopify one).
	fs := newSet(map[string]string{"PURCHASESYNC_SHOPIFY_API_SECRET": "s"})
	if p := fs.SecretEnv("shopify.apiSecret", "PURCHASESYNC_SHOPIFY_API_SECRET", ""); fs.Parse(nil) != nil || *p != "s" || !fs.IsSet("shopify.apiSecret") {
		t.Errorf("SecretEnv: %q", *p)
	}
}

// TestSecretHidden: -h shows a secret's variables, never its value.
func TestSecretHidden(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(file, []byte("hunter2-file\n"), 0o600)
	for _, env := range []map[string]string{{"PURCHASESYNC_X_PASSWORD": "hunter2-env"}, {"PURCHASESYNC_X_PASSWORD_FILE": file}} {
		fs := newSet(env)
		var out bytes.Buffer
		fs.SetOutput(&out)
		fs.Secret("x.password", "the password")
		if err := fs.Parse([]string{"-h"}); err == nil {
			t.Fatal("-h: no error")
		}
		if strings.Contains(out.String(), "hunter2") || !strings.Contains(out.String(), "PURCHASESYNC_X_PASSWORD_FILE") {
			t.Errorf("-h:\n%s", out.String())
		}
	}
}

func TestSplitList(t *testing.T) {
	if got := SplitList(" a, ,b ,"); strings.Join(got, "|") != "a|b" {
		t.Errorf("SplitList = %q", got)
	}
}

// TestDump: every flag with its value and source, secrets never shown.
func TestDump(t *testing.T) {
	env := map[string]string{"PURCHASESYNC_KAFKA_BROKERS": "k1:9092,k2:9092", "PURCHASESYNC_ADMIN_TOKEN": "tok-3e9b7"}
	f := New("x", func(k string) string { return env[k] })
	f.String("kafka.brokers", "127.0.0.1:19092", "brokers")
	f.String("log.level", "info", "level")
	f.Duration("grace", time.Second, "grace")
	f.Secret("admin.token", "token")
	f.Secret("other.secret", "unset secret")
	if err := f.Parse([]string{"-grace", "3s"}); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := f.Dump(&out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^-kafka\.brokers +k1:9092,k2:9092 +env PURCHASESYNC_KAFKA_BROKERS$`),
		regexp.MustCompile(`(?m)^-log\.level +info +default$`),
		regexp.MustCompile(`(?m)^-grace +3s +command line$`),
		regexp.MustCompile(`(?m)^-admin\.token +\(set, not shown\) +env PURCHASESYNC_ADMIN_TOKEN or PURCHASESYNC_ADMIN_TOKEN_FILE$`),
		regexp.MustCompile(`(?m)^-other\.secret +\(not set\) +default$`),
	} {
		if !want.MatchString(got) {
			t.Errorf("dump lacks %s:\n%s", want, got)
		}
	}
	if strings.Contains(got, "tok-3e9b7") {
		t.Errorf("dump shows a secret:\n%s", got)
	}
}
