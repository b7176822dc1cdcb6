package main

// The reference servers (baseline and floor) run by default in child
// processes: loadgen re-executes itself with $LOADGEN_SERVE set, and the
// child serves on a loopback port instead of generating load. The ingest
// always is a separate process, and a server inside the load generator's
// process shares its Go runtime and scheduler and skips the cross-process
// wake-ups: measured on a 2-core machine, the same do-nothing fasthttp server
// in a separate process reached only 0.70–0.78 of the in-process one's
// requests/s. In-process references would thus flatter the baseline and the
// floor and make the ingest's ratios look worse than they are; -inprocess
// keeps them for comparison.
//
// The protocol between parent and child:
//
//   - environment: LOADGEN_SERVE=baseline|floor; for the floor also the
//     Kafka connection as the PURCHASESYNC_KAFKA_* variables of
//     cmd/kafkaconf (brokers, TLS, SASL; kafkaconf.Config.Environ, which
//     replaces inherited ones), LOADGEN_SERVE_COMPRESSION and
//     LOADGEN_SERVE_TOPIC (the scratch topic, created and deleted by the
//     parent);
//   - stdout: the child prints "listening 127.0.0.1:PORT" once it serves,
//     and on a clean stop a floor child prints "stopped produced=N failed=M";
//   - stdin: a pipe from the parent that the child only reads; when the read
//     returns (EOF: the parent closed it or died, even by kill -9) the child
//     stops, so it never outlives the parent;
//   - SIGTERM stops the child cleanly; it ignores SIGINT, so that a Ctrl-C in
//     the terminal (sent to the whole process group) leaves the stopping to
//     the parent;
//   - stderr: errors; the parent keeps the last part to quote in its errors.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"purchasesync/cmd/kafkaconf"
	"purchasesync/deploy/proc"
)

const (
	envServe            = "LOADGEN_SERVE"
	envKafkaBrokers     = "PURCHASESYNC_KAFKA_BROKERS"
	envServeCompression = "LOADGEN_SERVE_COMPRESSION"
	envServeTopic       = "LOADGEN_SERVE_TOPIC"

	serveBaseline = "baseline"
	serveFloor    = "floor"

	whereInProcess = "in-process"
	whereChild     = "in a child process"
)

// Timeouts of the child's life; variables for tests.
var (
	childStartTimeout     = 15 * time.Second // until it prints its address
	childStopTimeout      = 10 * time.Second // from SIGTERM until it is killed
	serverShutdownTimeout = 5 * time.Second  // for a server's open connections to go idle
)

// refServer is a running reference server (baseline or floor), in this
// process or in a child process.
type refServer struct {
	addr  string
	where string // whereInProcess or whereChild, for the log
	pid   int    // the child's, or this process's
	// stop stops the server; for a child it waits for it to exit and
	// reports an unclean exit.
	stop func() error
	// counts returns the floor's counters, valid after stop; ok is false
	// when they are unknown (a baseline, a child that did not stop cleanly).
	counts func() (produced, failed int64, ok bool)
}

// startBaselineServer starts the do-nothing baseline server, in a child
// process or with -inprocess here.
func startBaselineServer(ctx context.Context, o options) (*refServer, error) {
	if !o.inprocess {
		return startChild(ctx, serveBaseline, nil)
	}
	addr, stop, err := startBaseline()
	if err != nil {
		return nil, err
	}
	return &refServer{addr: addr, where: whereInProcess, pid: os.Getpid(), stop: stop,
		counts: func() (int64, int64, bool) { return 0, 0, false }}, nil
}

// child is a running reference server in a child process.
type child struct {
	*proc.Child
	mode   string
	stdin  io.WriteCloser
	stderr *proc.Buffer // its last 8 KiB
	lines  chan string  // the child's stdout after the first line; closed at EOF
}

// startChild re-executes this program in serve mode (with the extra
// environment) and waits for the child to print its address. On error the
// child is gone.
func startChild(ctx context.Context, mode string, env []string) (*refServer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("cannot find loadgen's executable to start the %s server: %w", mode, err)
	}
	c := &child{mode: mode, stderr: &proc.Buffer{Max: 8 << 10}, lines: make(chan string, 16)}
	cmd := exec.Command(exe)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envServe) {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(append(cmd.Env, envServe+"="+mode), env...)
	cmd.Stderr = c.stderr
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	// A pipe of our own rather than StdoutPipe, so that Wait does not
	// depend on the reads.
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = outW
	c.Child, err = proc.Start(cmd)
	outW.Close()
	if err != nil {
		outR.Close()
		c.stdin.Close()
		return nil, fmt.Errorf("cannot start the %s server's child process %s: %w", mode, exe, err)
	}
	first := make(chan string, 1)
	go func() {
		defer outR.Close()
		defer close(c.lines)
		sc := bufio.NewScanner(outR)
		if sc.Scan() {
			first <- sc.Text()
		}
		close(first)
		for sc.Scan() {
			select {
			case c.lines <- sc.Text():
			default: // nobody reads this much: drop it
			}
		}
	}()
	fail := func(format string, a ...any) (*refServer, error) {
		c.Kill()
		return nil, fmt.Errorf("the %s server's child process (pid %d) %s%s", mode, c.Pid(), fmt.Sprintf(format, a...), c.stderrNote())
	}
	timer := time.NewTimer(childStartTimeout)
	defer timer.Stop()
	select {
	case line, ok := <-first:
		addr, found := strings.CutPrefix(line, "listening ")
		if !ok {
			return fail("exited before it served: %v", c.Wait())
		}
		if !found || addr == "" {
			return fail("printed %q, not \"listening ADDR\"", line)
		}
		return &refServer{addr: addr, where: whereChild, pid: c.Pid(), stop: c.stop, counts: c.counts}, nil
	case <-timer.C:
		return fail("did not print its address within %s", childStartTimeout)
	case <-ctx.Done():
		c.Kill()
		return nil, ctx.Err()
	}
}

// stderrNote is the child's stderr, to append to an error.
func (c *child) stderrNote() string {
	if s := strings.TrimSpace(c.stderr.String()); s != "" {
		return "; its stderr:\n" + s
	}
	return "; it printed nothing on stderr"
}

// stop sends SIGTERM, waits up to childStopTimeout for the child to exit,
// then kills it. It reports a child that had to be killed or that exited
// uncleanly (crashed, or stopped by something else).
func (c *child) stop() error {
	if !c.Running() {
		return fmt.Errorf("the %s server's child process (pid %d) exited during the run: %v%s", c.mode, c.Pid(), c.Wait(), c.stderrNote())
	}
	sentTerm := c.Cmd.Process.Signal(syscall.SIGTERM) == nil
	if !sentTerm {
		c.stdin.Close() // the child stops at EOF on stdin as well
	}
	if !c.WaitFor(childStopTimeout) {
		c.Kill()
		return fmt.Errorf("the %s server's child process (pid %d) did not stop within %s of SIGTERM and was killed%s", c.mode, c.Pid(), childStopTimeout, c.stderrNote())
	}
	if err := c.Wait(); err != nil {
		// A child that was already gone, or that a signal other than our
		// SIGTERM ended (it handles SIGTERM and exits 0), died during the
		// run: its exit can race with the check above.
		killed := false
		if st := c.Cmd.ProcessState; st != nil {
			ws, ok := st.Sys().(syscall.WaitStatus)
			killed = ok && ws.Signaled() && ws.Signal() != syscall.SIGTERM
		}
		if !sentTerm || killed {
			return fmt.Errorf("the %s server's child process (pid %d) exited during the run: %v%s", c.mode, c.Pid(), err, c.stderrNote())
		}
		return fmt.Errorf("the %s server's child process (pid %d) did not stop cleanly: %v%s", c.mode, c.Pid(), err, c.stderrNote())
	}
	return nil
}

// counts reads the floor child's "stopped produced=N failed=M" line.
func (c *child) counts() (produced, failed int64, ok bool) {
	if c.Running() {
		return 0, 0, false
	}
	timer := time.NewTimer(time.Second) // the pipe's EOF follows the exit
	defer timer.Stop()
	for {
		select {
		case line, more := <-c.lines:
			if !more {
				return 0, 0, false
			}
			if _, err := fmt.Sscanf(line, "stopped produced=%d failed=%d", &produced, &failed); err == nil {
				return produced, failed, true
			}
		case <-timer.C:
			return 0, 0, false
		}
	}
}

// serveMain is the child process's main (with $LOADGEN_SERVE set): it serves
// mode on a loopback port, prints the address and serves until SIGTERM or
// EOF on stdin. It returns the exit code.
func serveMain(mode string) int {
	signal.Ignore(os.Interrupt)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := serveChild(ctx, mode, os.Getenv, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "loadgen (%s server): %v\n", mode, err)
		return 1
	}
	return 0
}

// serveChild serves mode until ctx ends or a read of stdin returns (EOF or
// an error: the parent is gone).
func serveChild(ctx context.Context, mode string, getenv func(string) string, stdin io.Reader, stdout io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	parentGone := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, stdin)
		close(parentGone)
		cancel()
	}()

	var handler *floorHandler
	var addr string
	var stopSrv func() error
	var err error
	switch mode {
	case serveBaseline:
		addr, stopSrv, err = startBaseline()
	case serveFloor:
		topic := getenv(envServeTopic)
		if getenv(envKafkaBrokers) == "" || topic == "" {
			return fmt.Errorf("%s and %s must be set", envKafkaBrokers, envServeTopic)
		}
		conf, err := kafkaconf.FromEnv(getenv)
		if err != nil {
			return err
		}
		cl, err := newFloorClient(conf, getenv(envServeCompression), topic)
		if err != nil {
			return err
		}
		defer cl.Close()
		// Connect to the partitions' leaders before the load starts, as
		// the in-process floor's client did while creating the topic.
		wctx, wcancel := context.WithTimeout(ctx, floorAdminTimeout)
		err = waitLed(wctx, cl, topic)
		wcancel()
		if err != nil {
			return err
		}
		handler = &floorHandler{cl: cl}
		addr, stopSrv, err = serveLoopback("floor", handler.handle)
	default:
		return fmt.Errorf("unknown %s=%q: want %s or %s", envServe, mode, serveBaseline, serveFloor)
	}
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(stdout, "listening %s\n", addr); err != nil {
		return errors.Join(err, stopSrv())
	}
	<-ctx.Done()
	err = stopSrv()
	select {
	case <-parentGone:
		return nil // nobody to tell
	default:
	}
	if handler != nil {
		fmt.Fprintf(stdout, "stopped produced=%d failed=%d\n", handler.produced.Load(), handler.failed.Load())
	}
	return err
}
