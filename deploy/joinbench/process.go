package joinbench

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"purchasesync/deploy/proc"
)

// child is a process under test: its output goes to a log file.
type child struct {
	*proc.Child
	name    string
	log     string
	started time.Time
}

// startChild starts argv with its stdout and stderr in logPath (stdout
// goes to stdout instead when it is not nil) and stdin from stdin.
func startChild(name, logPath string, stdin io.Reader, stdout io.Writer, argv ...string) (*child, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("cannot create the log of %s: %w", name, err)
	}
	// The child writes to its own descriptor of the file; ours closes
	// once it is started.
	defer f.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, f, f
	if stdout != nil {
		cmd.Stdout = stdout
	}
	// Its own process group: a Ctrl-C of the benchmark reaches the
	// benchmark, which stops its children itself.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	started := time.Now()
	p, err := proc.Start(cmd)
	if err != nil {
		return nil, fmt.Errorf("cannot start %s (%s): %w", name, argv[0], err)
	}
	return &child{Child: p, name: name, log: logPath, started: started}, nil
}

// stop sends SIGTERM, then SIGKILL after grace.
func (c *child) stop(grace time.Duration) { c.Stop(syscall.SIGTERM, grace) }

// exitError is why the process ended early, for messages.
func (c *child) exitError() error {
	if c.Running() {
		return nil
	}
	if err := c.Wait(); err != nil {
		return fmt.Errorf("%s exited: %v (see %s)", c.name, err, c.log)
	}
	return fmt.Errorf("%s exited (see %s)", c.name, c.log)
}
