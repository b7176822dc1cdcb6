package main

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"purchasesync/deploy/testenv"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
	buildOut  []byte
)

// buildBinary compiles cmd/purchasesync once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "purchasesync-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "purchasesync")
		buildOut, buildErr = exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("build: %v\n%s", buildErr, buildOut)
	}
	return builtBin
}

// stopOnCleanup sends SIGINT to cmd when the test ends and waits up to
// grace for it to drain, then kills it. onFail runs after the stop when the
// test failed (to print the process's log). strict makes a slow stop a
// test failure.
func stopOnCleanup(t *testing.T, cmd *exec.Cmd, grace time.Duration, strict bool, before, onFail func()) {
	t.Cleanup(func() {
		if before != nil {
			before()
		}
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(grace):
			cmd.Process.Kill()
			if strict {
				t.Errorf("%s did not stop within %s of SIGINT", filepath.Base(cmd.Path), grace)
			}
		}
		if t.Failed() && onFail != nil {
			onFail()
		}
	})
}

// waitHTTP200 polls url until it answers 200.
func waitHTTP200(t *testing.T, url string, timeout time.Duration) {
	t.Helper()
	testenv.Eventually(t, timeout, url+" answering 200", func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}
