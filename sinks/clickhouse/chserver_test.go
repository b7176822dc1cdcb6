package clickhouse

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"purchasesync/deploy/testenv"
)

// chServer is a ClickHouse server private to one test, configured the way
// deploy/local/stack.sh configures the stack's (same template), in a temp
// dir on free ports, so that stopping it disturbs nobody else.
type chServer struct {
	t                *testing.T
	bin, dir, config string
	tcp, http        int
	cmd              *exec.Cmd
	exited           chan struct{}
}

func clickhouseServerBin() string {
	if _, err := os.Stat("/usr/sbin/clickhouse-server"); err == nil {
		return "/usr/sbin/clickhouse-server"
	}
	p, _ := exec.LookPath("clickhouse-server")
	return p
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
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
	s.cmd = exec.Command(s.bin, "--config-file="+s.config)
	s.cmd.Dir, s.cmd.Stdout, s.cmd.Stderr = s.dir, log, log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.exited = make(chan struct{})
	go func() { _ = s.cmd.Wait(); log.Close(); close(s.exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			b, _ := os.ReadFile(filepath.Join(s.dir, "logs", "clickhouse-server.err.log"))
			s.t.Fatalf("private ClickHouse exited during start:\n%s", tail(string(b), 2000))
		default:
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/?query=SELECT%%201", s.http))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.TrimSpace(string(b)) == "1" {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatal("private ClickHouse not ready after 30 s")
}

// stop signals the server (by its own pid) and waits for it to exit.
func (s *chServer) stop(sig syscall.Signal) {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
