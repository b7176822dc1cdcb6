package testenv

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"purchasesync/deploy/proc"
)

// FreeAddr is a loopback host:port nothing listens on right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := proc.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// builds are the binaries this test binary built, by package and tags: a
// package's tests share one build (go build's cache does not make the link
// free).
var builds struct {
	sync.Mutex
	bins map[string]*build
}

type build struct {
	once sync.Once
	bin  string
	err  error
	out  []byte
}

// Build builds the main package pkg (an import path such as
// purchasesync/cmd/purchasesync) with the given build tags, once per test
// binary, and returns the binary's path. The binary outlives the test: it
// lives in a folder of the temporary directory named after the checkout,
// where the next build replaces it (by a rename, so that another package's
// tests can go on running the old one).
func Build(t testing.TB, pkg string, tags ...string) string {
	t.Helper()
	key := pkg + " " + strings.Join(tags, ",")
	builds.Lock()
	if builds.bins == nil {
		builds.bins = map[string]*build{}
	}
	b := builds.bins[key]
	if b == nil {
		b = &build{}
		builds.bins[key] = b
	}
	builds.Unlock()
	b.once.Do(func() { b.bin, b.out, b.err = goBuild(pkg, tags) })
	if b.err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, b.err, b.out)
	}
	return b.bin
}

func goBuild(pkg string, tags []string) (bin string, out []byte, err error) {
	sum := sha256.Sum256([]byte(RepoRoot()))
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("purchasesync-testbin-%x", sum[:6]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, err
	}
	bin = filepath.Join(dir, strings.Join(append([]string{filepath.Base(pkg)}, tags...), "-"))
	tmp, err := os.CreateTemp(dir, filepath.Base(bin)+".*")
	if err != nil {
		return "", nil, err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	args := []string{"build", "-o", tmp.Name()}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = RepoRoot()
	if out, err = cmd.CombinedOutput(); err != nil {
		return "", out, err
	}
	return bin, out, os.Rename(tmp.Name(), bin)
}

// WaitHTTP200 waits until url answers 200 (a /readyz), failing the test
// after timeout.
func WaitHTTP200(t testing.TB, url string, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if _, err := proc.WaitHTTP200(ctx, url, 100*time.Millisecond, nil); err != nil {
		t.Fatalf("timed out after %s waiting for %s answering 200", timeout, url)
	}
}

// Process is a child process a test started, stopped when the test ends;
// what it writes to a stream the test left unset is kept (Logs) and logged
// when the test fails.
type Process struct {
	*proc.Child
	// Grace is how long the process has to drain after SIGINT when the
	// test ends, before SIGKILL: 30 s; zero kills it at once (a process
	// the test kills anyway).
	Grace time.Duration
	// MayNeedKill: a process that needed SIGKILL after Grace does not
	// fail the test.
	MayNeedKill bool
	// LogLines, when positive, logs only the last lines of a failed
	// test's process.
	LogLines int

	name string
	logs proc.Buffer
}

// Start runs bin with args and the test's environment plus env (see
// StartCmd).
func Start(t testing.TB, bin string, args []string, env ...string) *Process {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	return StartCmd(t, cmd)
}

// StartCmd starts cmd; its Stdout and Stderr, when nil, go to the
// process's log. When the test ends a running process gets SIGINT and
// Grace to drain, then SIGKILL; a process that needed the kill fails the
// test unless MayNeedKill. Set those fields before the test ends.
func StartCmd(t testing.TB, cmd *exec.Cmd) *Process {
	t.Helper()
	p := &Process{Grace: 30 * time.Second, name: strings.Join(append([]string{filepath.Base(cmd.Path)}, cmd.Args[1:min(2, len(cmd.Args))]...), " ")}
	if cmd.Stdout == nil {
		cmd.Stdout = &p.logs
	}
	if cmd.Stderr == nil {
		cmd.Stderr = &p.logs
	}
	c, err := proc.Start(cmd)
	if err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	p.Child = c
	t.Cleanup(func() {
		if p.Stop(os.Interrupt, p.Grace) && p.Grace > 0 && !p.MayNeedKill {
			t.Errorf("%s did not stop within %s of SIGINT", p.name, p.Grace)
		}
		if t.Failed() {
			if p.LogLines > 0 {
				t.Logf("%s log (last %d lines):\n%s", p.name, p.LogLines, proc.Tail(p.Logs(), p.LogLines))
			} else {
				t.Logf("%s log:\n%s", p.name, p.Logs())
			}
		}
	})
	return p
}

// Self is a command that runs this test binary again, as a child process
// of the test: with -test.run=^run$ (a helper test that does nothing
// unless its environment says so), or with no test when run is "" (a
// TestMain that sees its environment runs the child instead of the tests).
// Its environment is the test's plus env.
func Self(run string, env ...string) *exec.Cmd {
	pattern := "^$"
	if run != "" {
		pattern = "^" + run + "$"
	}
	cmd := exec.Command(os.Args[0], "-test.run="+pattern)
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// Logs is what the process wrote so far to the streams the test left
// unset.
func (p *Process) Logs() string { return p.logs.String() }
