package testenv

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// FreeAddr is a loopback host:port nothing listens on right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Build builds the main package pkg (an import path such as
// purchasesync/cmd/purchasesync) with the given build tags into the test's
// temporary folder and returns the binary's path.
func Build(t testing.TB, pkg string, tags ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), filepath.Base(pkg))
	args := []string{"build", "-o", bin}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// WaitHTTP200 waits until url answers 200 (a /readyz), failing the test
// after timeout.
func WaitHTTP200(t testing.TB, url string, timeout time.Duration) {
	t.Helper()
	Eventually(t, timeout, url+" answering 200", func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// Process is a child process a test started; its output is kept and
// logged when the test fails.
type Process struct {
	cmd    *exec.Cmd
	logs   lockedBuffer
	exited chan struct{}
	err    error // how it ended, once exited is closed
}

// Start runs bin with args and the test's environment plus env. When the
// test ends the process gets SIGINT and 30 s to drain, then SIGKILL; a
// process that needed the kill fails the test.
func Start(t testing.TB, bin string, args []string, env ...string) *Process {
	t.Helper()
	name := strings.Join(append([]string{filepath.Base(bin)}, args[:min(1, len(args))]...), " ")
	p := &Process{cmd: exec.Command(bin, args...), exited: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.logs, &p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Signal(os.Interrupt)
			select {
			case <-p.exited:
			case <-time.After(30 * time.Second):
				p.cmd.Process.Kill()
				<-p.exited
				t.Errorf("%s did not stop within 30s of SIGINT", name)
			}
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", name, p.logs.String())
		}
	})
	return p
}

// Exited is closed when the process has ended.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Wait waits for the process to end and returns how it ended.
func (p *Process) Wait() error {
	<-p.exited
	return p.err
}

// Logs is what the process wrote so far.
func (p *Process) Logs() string { return p.logs.String() }

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
