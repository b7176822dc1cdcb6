package chconf

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"purchasesync/cmd/kafkaconf/kafkaconftest"
	"purchasesync/deploy/testenv"
	chsink "purchasesync/sinks/clickhouse"
)

// The stack's two-replica ClickHouse over TLS with a password
// (testenv.ClickHouseCluster): the right settings work, and each wrong one
// is a *ConfigError naming the flag that fixes it, on one line, without the
// password.

func clusterConfig(t *testing.T) (chsink.Config, testenv.CHCluster) {
	t.Helper()
	cl := testenv.ClickHouseCluster(t)
	cfg, err := FromEnv(cl.Getenv)
	if err != nil {
		t.Fatalf("the cluster's PURCHASESYNC_CLICKHOUSE_* lines: %v", err)
	}
	if cfg.TLS == nil || cfg.Password == "" || len(cfg.Addr) < 2 {
		t.Fatalf("the cluster's lines are not a TLS connection with a password to two replicas: addr %v, TLS %v", cfg.Addr, cfg.TLS != nil)
	}
	return cfg, cl
}

func TestCheckCluster(t *testing.T) {
	good, _ := clusterConfig(t)
	ctx := context.Background()
	if err := Check(ctx, good); err != nil {
		t.Fatalf("Check with the stack's settings: %v", err)
	}
	wrongCA, err := tlsConfig(kafkaconftest.NewCA(t, "another CA").File, "")
	if err != nil {
		t.Fatal(err)
	}
	f := func(name, flag, want string, mutate func(*chsink.Config)) {
		t.Helper()
		cfg := good
		cfg.Addr = append([]string(nil), good.Addr...)
		mutate(&cfg)
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		err := Check(cctx, cfg)
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("%s: Check = %v, want a *ConfigError", name, err)
			return
		}
		if ce.Flag != flag || !strings.Contains(ce.Msg, want) || strings.Contains(ce.Msg, "\n") || strings.Contains(ce.Msg, good.Password) {
			t.Errorf("%s: Check = %q (flag %s), want one line naming %s containing %q, no password", name, ce.Msg, ce.Flag, flag, want)
		}
		t.Logf("%s: %s", name, ce.Msg)
	}
	f("wrong password", flagPassword, "wrong user name or password", func(c *chsink.Config) { c.Password = "not-" + c.Password })
	f("unknown user", flagPassword, "wrong user name or password", func(c *chsink.Config) { c.Username = "nobody" })
	f("wrong CA", flagCAFile, "unknown authority", func(c *chsink.Config) { c.TLS = wrongCA })
	f("system roots", flagCAFile, "unknown authority", func(c *chsink.Config) { c.TLS = &tls.Config{MinVersion: tls.VersionTLS12} })
	f("wrong name", flagServerName, "not valid for the name", func(c *chsink.Config) {
		c.TLS = c.TLS.Clone()
		c.TLS.ServerName = "clickhouse.example.com"
	})
	f("plaintext on the secure port", flagTLS, "as the secure native port does to a plaintext client", func(c *chsink.Config) { c.TLS = nil })
}

func TestCheckUnreachable(t *testing.T) {
	cfg := chsink.DefaultConfig()
	cfg.Addr = []string{"127.0.0.1:1"} // nothing listens on port 1
	err := Check(context.Background(), cfg)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("Check of a closed port = %v, want ErrUnreachable naming the address", err)
	}
}

func TestCheckTLSOnPlaintextPort(t *testing.T) {
	addr := testenv.ClickHouse(t) // the default node: plaintext only
	cfg := chsink.DefaultConfig()
	cfg.Addr = []string{addr}
	cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	err := Check(context.Background(), cfg)
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Flag != flagTLS || !strings.Contains(ce.Msg, "the port is not TLS") {
		t.Fatalf("Check with TLS on a plaintext port = %v, want a *ConfigError naming %s", err, flagTLS)
	}
}
