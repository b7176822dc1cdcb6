//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"purchasesync/deploy/testenv"
)

// processGone reports whether pid has exited: no such process, or a zombie
// (an orphan's parent, e.g. a container's init, may not reap it at once).
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && len(b) > i+2 && b[i+2] == 'Z'
}

// refuses reports whether addr refuses TCP connections.
func refuses(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// checkAnswers posts a webhook-shaped request to a baseline at addr and
// checks its answer.
func checkAnswers(t *testing.T, addr string) {
	t.Helper()
	resp, err := http.Post("http://"+addr+"/webhooks/shopify", "application/json", strings.NewReader(`{"id":1}`))
	if err != nil {
		t.Errorf("the baseline at %s does not answer: %v", addr, err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != `{"status":"accepted"}`+"\n" {
		t.Errorf("the baseline at %s answered %d %q", addr, resp.StatusCode, body)
	}
}

// TestChildBaselineStops: by default the baseline runs in another process,
// answers during the run, and both the process and its port are gone once
// execute returns.
func TestChildBaselineStops(t *testing.T) {
	o, err := parse([]string{"-baseline", "-target", "", "-secret", "x", "-requests", "100", "-concurrency", "4", "-quiet"},
		func(string) string { return "" }, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	var addr string
	var pid int
	o.onServer = func(name, a string, p int) {
		addr, pid = a, p
		if p == os.Getpid() || processGone(p) {
			t.Errorf("the %s server's pid %d is not a running child (loadgen is %d)", name, p, os.Getpid())
		}
		checkAnswers(t, a)
	}
	var out bytes.Buffer
	if err := execute(context.Background(), o, &out); err != nil {
		t.Fatal(err)
	}
	if addr == "" {
		t.Fatal("no baseline server was started")
	}
	if !strings.Contains(out.String(), "200:100") {
		t.Errorf("report:\n%s", out.String())
	}
	// stop waited for the child, so there is no grace period here.
	if !processGone(pid) {
		t.Errorf("the baseline's child process %d still runs after the run", pid)
	}
	if !refuses(addr) {
		t.Errorf("the baseline's port %s does not refuse connections after the run", addr)
	}
}

// startServeChild starts the test binary in serve mode with a stdin pipe
// and returns it with its address.
func startServeChild(t *testing.T, env ...string) (*exec.Cmd, io.WriteCloser, string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if err != nil || !ok {
		t.Fatalf("the child printed %q, %v; stderr: %s", line, err, stderr.String())
	}
	return cmd, stdin, addr
}

// waitExit waits up to d for cmd to exit.
func waitExit(t *testing.T, cmd *exec.Cmd, d time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("the child %d did not exit within %s", cmd.Process.Pid, d)
		return nil
	}
}

// TestChildExitsOnStdinEOF: a child whose stdin closes (its parent died)
// stops serving and exits by itself, cleanly.
func TestChildExitsOnStdinEOF(t *testing.T) {
	cmd, stdin, addr := startServeChild(t, envServe+"="+serveBaseline)
	checkAnswers(t, addr)
	time.Sleep(200 * time.Millisecond)
	if processGone(cmd.Process.Pid) {
		t.Fatal("the child exited before its stdin closed")
	}
	stdin.Close()
	if err := waitExit(t, cmd, 5*time.Second); err != nil {
		t.Errorf("the child exited with %v, want 0", err)
	}
	if !refuses(addr) {
		t.Errorf("%s does not refuse connections after the child exited", addr)
	}
}

// TestChildOutlivesNoParent: after kill -9 of a loadgen parent, its
// baseline child exits (its stdin's write end closed with the parent).
func TestChildOutlivesNoParent(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	parent := exec.Command(exe)
	parent.Env = append(os.Environ(), envTestParent+"=1")
	var stderr bytes.Buffer
	parent.Stderr = &stderr
	stdout, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = parent.Process.Kill(); _ = parent.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	var pid int
	var addr string
	if _, serr := fmt.Sscanf(line, "child %d %s", &pid, &addr); err != nil || serr != nil {
		t.Fatalf("the parent printed %q (%v, %v); stderr: %s", line, err, serr, stderr.String())
	}
	t.Cleanup(func() {
		if !processGone(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	checkAnswers(t, addr)
	if err := parent.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = parent.Wait()
	testenv.Eventually(t, 5*time.Second, fmt.Sprintf("the orphaned child %d to exit", pid), func() bool { return processGone(pid) })
	if !refuses(addr) {
		t.Errorf("%s does not refuse connections after the orphaned child exited", addr)
	}
}

// TestChildCrashReported: a child that dies during the run is reported with
// the results, not silently replaced by errors in the table.
func TestChildCrashReported(t *testing.T) {
	o, err := parse([]string{"-baseline", "-target", "", "-secret", "x", "-requests", "50", "-concurrency", "2", "-quiet"},
		func(string) string { return "" }, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	o.onServer = func(_, _ string, pid int) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		for !processGone(pid) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	var out bytes.Buffer
	err = execute(context.Background(), o, &out)
	t.Logf("execute: %v", err)
	if err == nil || !strings.Contains(err.Error(), "baseline server's child process") || !strings.Contains(err.Error(), "exited during the run") {
		t.Errorf("execute = %v, want the child's death reported", err)
	}
}

// TestChildStartErrors: a child that exits before serving, or does not
// serve in time, is a clear error quoting its stderr, and is gone.
func TestChildStartErrors(t *testing.T) {
	_, err := startChild(context.Background(), "nope", nil)
	t.Logf("unknown mode: %v", err)
	if err == nil || !strings.Contains(err.Error(), "exited before it served") || !strings.Contains(err.Error(), `unknown LOADGEN_SERVE="nope"`) {
		t.Errorf("startChild(nope) = %v, want an early exit with the child's stderr", err)
	}

	// A floor child whose Kafka accepts connections and never answers
	// blocks before it serves.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	defer func(d time.Duration) { childStartTimeout = d }(childStartTimeout)
	childStartTimeout = time.Second
	start := time.Now()
	_, err = startChild(context.Background(), serveFloor, []string{envKafkaBrokers + "=" + silent.Addr().String(), envServeTopic + "=t", envServeCompression + "=none"})
	t.Logf("silent Kafka: %v", err)
	if err == nil || !strings.Contains(err.Error(), "did not print its address within 1s") {
		t.Errorf("startChild(floor) = %v, want a timeout", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %s to give up", took)
	}
	var pid int
	if err != nil {
		fmt.Sscanf(err.Error()[strings.Index(err.Error(), "(pid "):], "(pid %d)", &pid)
	}
	if pid == 0 || !processGone(pid) {
		t.Errorf("the timed-out child (pid %d) was not killed", pid)
	}
}

// TestFloorChildCounts: a floor child produces every request, and its
// counters reach the parent when it stops.
func TestFloorChildCounts(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	const n = 50
	o, err := parse([]string{"-floor", "-target", "", "-secret", "x", "-requests", fmt.Sprint(n), "-concurrency", "4",
		"-kafka.brokers", strings.Join(cluster.ListenAddrs(), ",")}, func(string) string { return "" }, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := startFloor(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if f.srv.where != whereChild || f.srv.pid == os.Getpid() {
		t.Errorf("the floor runs %s in pid %d", f.srv.where, f.srv.pid)
	}
	if _, err := drive(context.Background(), o, "floor", "http://"+f.srv.addr, buildPool(o)); err != nil {
		t.Fatal(err)
	}
	if err := f.close(); err != nil {
		t.Fatal(err)
	}
	if p, fl, ok := f.srv.counts(); !ok || p != n || fl != 0 {
		t.Errorf("counts = %d produced, %d failed, ok %v; want %d, 0, true", p, fl, ok, n)
	}
	if !processGone(f.srv.pid) {
		t.Errorf("the floor's child %d still runs", f.srv.pid)
	}
}
