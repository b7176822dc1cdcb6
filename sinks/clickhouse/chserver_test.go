package clickhouse

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"purchasesync/deploy/proc"
	"purchasesync/deploy/testenv"
)

// chServer is a ClickHouse server private to one test, configured the way
// deploy/local/stack.sh configures the stack's (same template), in a temp
// dir on free ports, so that stopping it disturbs nobody else.
type chServer struct {
	t                *testing.T
	bin, dir, config string
	tcp, http        int
	proc             *proc.Child // nil before the first start
}

func clickhouseServerBin() string {
	if _, err := os.Stat("/usr/sbin/clickhouse-server"); err == nil {
		return "/usr/sbin/clickhouse-server"
	}
	p, _ := exec.LookPath("clickhouse-server")
	return p
}

// freePort is the port of a testenv.FreeAddr (ClickHouse's configuration
// takes ports).
func freePort(t *testing.T) int {
	_, port, _ := net.SplitHostPort(testenv.FreeAddr(t))
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func startPrivateClickHouse(t *testing.T) *chServer {
	t.Helper()
	if testing.Short() && !testenv.Required() {
		t.Skip("private ClickHouse skipped in -short mode")
	}
	bin := clickhouseServerBin()
	if bin == "" {
		if testenv.Required() {
			t.Fatal("clickhouse-server not found (deploy/local/stack.sh up installs it)")
		}
		t.Skip("clickhouse-server not installed: run deploy/local/stack.sh up")
	}
	s := &chServer{t: t, bin: bin, dir: t.TempDir(), tcp: freePort(t), http: freePort(t)}
	tmpl, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "deploy", "local", "clickhouse", "config.xml.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"conf", "data", "logs"} {
		if err := os.MkdirAll(filepath.Join(s.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := strings.NewReplacer(
		"@TCP_PORT@", fmt.Sprint(s.tcp), "@HTTP_PORT@", fmt.Sprint(s.http),
		"@INTERSERVER_PORT@", fmt.Sprint(freePort(t)), "@DATA_DIR@", filepath.Join(s.dir, "data"),
		"@LOG_DIR@", filepath.Join(s.dir, "logs"), "@CONF_DIR@", filepath.Join(s.dir, "conf"),
	).Replace(string(tmpl))
	s.config = filepath.Join(s.dir, "conf", "config.xml")
	if err := os.WriteFile(s.config, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	users, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "deploy", "local", "clickhouse", "users.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "conf", "users.xml"), users, 0o644); err != nil {
		t.Fatal(err)
	}
	s.start()
	t.Cleanup(func() { s.stop(syscall.SIGKILL) })
	return s
}

func (s *chServer) addr() string { return fmt.Sprintf("127.0.0.1:%d", s.tcp) }

// start launches the server and waits until it answers.
func (s *chServer) start() {
	s.t.Helper()
	log, err := os.OpenFile(filepath.Join(s.dir, "logs", "stdout.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	cmd := exec.Command(s.bin, "--config-file="+s.config)
	cmd.Dir, cmd.Stdout, cmd.Stderr = s.dir, log, log
	s.proc, err = proc.Start(cmd)
	log.Close() // the server has its own descriptor
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := proc.WaitHTTP200(ctx, fmt.Sprintf("http://127.0.0.1:%d/?query=SELECT%%201", s.http), 100*time.Millisecond, s.proc.Exited()); err != nil {
		if s.proc.Running() {
			s.t.Fatal("private ClickHouse not ready after 30 s")
		}
		b, _ := os.ReadFile(filepath.Join(s.dir, "logs", "clickhouse-server.err.log"))
		s.t.Fatalf("private ClickHouse exited during start:\n%s", tail(string(b), 2000))
	}
}

// stop signals the server (by its own pid) and waits for it to exit.
func (s *chServer) stop(sig syscall.Signal) {
	if s.proc != nil {
		s.proc.Stop(sig, 30*time.Second)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
