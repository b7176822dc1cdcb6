package joinbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// child is a process under test: its output goes to a log file, exited
// closes when it ends.
type child struct {
	name    string
	cmd     *exec.Cmd
	log     string
	started time.Time
	exited  chan struct{}
	err     error // after exited
}

// startChild starts argv with its stdout and stderr in logPath (stdout
// goes to stdout instead when it is not nil) and stdin from stdin.
func startChild(name, logPath string, stdin io.Reader, stdout io.Writer, argv ...string) (*child, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("cannot create the log of %s: %w", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, f, f
	if stdout != nil {
		cmd.Stdout = stdout
	}
	// Its own process group: a Ctrl-C of the benchmark reaches the
	// benchmark, which stops its children itself.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c := &child{name: name, cmd: cmd, log: logPath, exited: make(chan struct{})}
	c.started = time.Now()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot start %s (%s): %w", name, argv[0], err)
	}
	go func() {
		c.err = cmd.Wait()
		f.Close()
		close(c.exited)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// kill sends SIGKILL and waits for the process to end.
func (c *child) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.exited
}

// stop sends SIGTERM, then SIGKILL after grace.
func (c *child) stop(grace time.Duration) {
	select {
	case <-c.exited:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(grace):
		c.kill()
	}
}

// exitError is why the process ended early, for messages.
func (c *child) exitError() error {
	select {
	case <-c.exited:
		if c.err == nil {
			return fmt.Errorf("%s exited (see %s)", c.name, c.log)
		}
		return fmt.Errorf("%s exited: %v (see %s)", c.name, c.err, c.log)
	default:
		return nil
	}
}

// freeAddr picks a free loopback port for an ops listener.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("cannot pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitReady polls url until it answers 200 and returns when it did.
func waitReady(ctx context.Context, url string, every time.Duration, exited <-chan struct{}) (time.Time, error) {
	cl := &http.Client{Timeout: 2 * time.Second}
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
