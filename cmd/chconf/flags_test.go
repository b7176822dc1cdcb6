package chconf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"purchasesync/cmd/envflag"
	"purchasesync/cmd/kafkaconf/kafkaconftest"
)

func parse(t *testing.T, env map[string]string, args ...string) (*Flags, error) {
	t.Helper()
	fs := envflag.New("test", func(k string) string { return env[k] })
	f := AddFlags(fs)
	return f, fs.Parse(args)
}

func TestConfig(t *testing.T) {
	ca := kafkaconftest.NewCA(t, "test CA")
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := parse(t, map[string]string{
		"PURCHASESYNC_CLICKHOUSE_ADDR":          "a:9440, b:9440",
		"PURCHASESYNC_CLICKHOUSE_PASSWORD_FILE": pwFile,
		"PURCHASESYNC_CLICKHOUSE_TLS_CAFILE":    ca.File,
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := f.Config()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Addr, ",") != "a:9440,b:9440" || cfg.Password != "from-file" || cfg.TLS == nil || cfg.TLS.RootCAs == nil {
		t.Fatalf("Config = addr %v, password %q, TLS %v: want both addresses, the file's password, TLS implied by the CA file", cfg.Addr, cfg.Password, cfg.TLS)
	}

	f, _ = parse(t, nil)
	if cfg, err := f.Config(); err != nil || cfg.TLS != nil || strings.Join(cfg.Addr, ",") != "127.0.0.1:19000" {
		t.Fatalf("default Config = %v, %v: want plaintext to the local stack", cfg.Addr, err)
	}

	f, _ = parse(t, nil, "-clickhouse.tls=false", "-clickhouse.tls.serverName", "ch")
	if _, err := f.Config(); err == nil || !strings.Contains(err.Error(), "-clickhouse.tls=false contradicts") {
		t.Fatalf("-clickhouse.tls=false with a server name: %v, want the contradiction", err)
	}

	f, _ = parse(t, nil, "-clickhouse.tls.caFile", filepath.Join(t.TempDir(), "missing.pem"))
	if _, err := f.Config(); err == nil || !strings.Contains(err.Error(), "cannot read -clickhouse.tls.caFile") {
		t.Fatalf("missing CA file: %v", err)
	}
}
