// Package proc starts and stops child processes: one way to reap a child in
// the background, to stop it (a signal, a grace period, then SIGKILL), to
// keep its output and to wait until it answers over HTTP. The tests use it
// through deploy/testenv; the measuring tools (cmd/loadgen, deploy/joinbench),
// which are no tests, use it directly, so it does not import testing.
package proc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Child is a started process, reaped by a goroutine of its own so that its
// end can be waited for in a select.
type Child struct {
	Cmd    *exec.Cmd
	exited chan struct{}
	err    error // Wait's, once exited is closed
}

// Start starts cmd (its streams set by the caller) and reaps it in the
// background.
func Start(cmd *exec.Cmd) (*Child, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &Child{Cmd: cmd, exited: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

// Pid is the child's process id.
func (c *Child) Pid() int { return c.Cmd.Process.Pid }

// Exited is closed once the child has ended and been reaped.
func (c *Child) Exited() <-chan struct{} { return c.exited }

// Wait waits for the child to end and returns how it ended (exec.Cmd.Wait's
// error).
func (c *Child) Wait() error {
	<-c.exited
	return c.err
}

// Running reports whether the child has not ended yet.
func (c *Child) Running() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// WaitFor waits up to d for the child to end and reports whether it did.
func (c *Child) WaitFor(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-c.exited:
		return true
	case <-timer.C:
		return false
	}
}

// Kill sends SIGKILL and waits for the child to end.
func (c *Child) Kill() {
	_ = c.Cmd.Process.Kill()
	<-c.exited
}

// Stop sends sig to a running child, waits up to grace for it to end, then
// kills it; it reports whether the kill was needed. A zero grace kills at
// once.
func (c *Child) Stop(sig os.Signal, grace time.Duration) (killed bool) {
	if !c.Running() {
		return false
	}
	if grace > 0 {
		_ = c.Cmd.Process.Signal(sig)
		if c.WaitFor(grace) {
			return false
		}
	}
	c.Kill()
	return true
}

// Buffer keeps what a child writes to it (all of it, or with Max > 0 the
// last Max bytes); safe for concurrent use.
type Buffer struct {
	Max int

	mu sync.Mutex
	b  []byte
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b = append(b.b, p...)
	if b.Max > 0 && len(b.b) > b.Max {
		b.b = append(b.b[:0], b.b[len(b.b)-b.Max:]...)
	}
	return len(p), nil
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.b)
}

// Tail is the last n lines of s (all of s when it has no more).
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// FreeAddr is a loopback host:port nothing listens on right now, for a
// child's listener.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("cannot pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// WaitHTTP200 polls url every interval until it answers 200 (a /readyz) and
// returns when it did. It gives up when ctx ends or exited (a child's
// Exited; nil for none) is closed.
func WaitHTTP200(ctx context.Context, url string, every time.Duration, exited <-chan struct{}) (time.Time, error) {
	cl := &http.Client{Timeout: 2 * time.Second}
	defer cl.CloseIdleConnections()
	for {
		resp, err := cl.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Now(), nil
			}
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("%s did not become ready: %w", url, ctx.Err())
		case <-exited:
			return time.Time{}, errors.New("the process exited before it was ready")
		case <-time.After(every):
		}
	}
}
