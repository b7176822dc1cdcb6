package proc

import (
	"context"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestBufferKeepsTheTail(t *testing.T) {
	b := &Buffer{Max: 4}
	b.Write([]byte("abc"))
	b.Write([]byte("defg"))
	if got := b.String(); got != "defg" {
		t.Errorf("String() = %q, want the last 4 bytes", got)
	}
	var all Buffer
	all.Write([]byte("abc"))
	all.Write([]byte("defg"))
	if got := all.String(); got != "abcdefg" {
		t.Errorf("String() = %q, want everything", got)
	}
}

// A child that ignores the stop signal is killed after the grace period; one
// that honours it is not.
func TestStop(t *testing.T) {
	c, err := Start(exec.Command("sh", "-c", `trap "" TERM; echo ready; sleep 30`))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // let the shell set its trap
	if killed := c.Stop(syscall.SIGTERM, 300*time.Millisecond); !killed || c.Running() {
		t.Errorf("Stop of a child ignoring SIGTERM: killed=%v running=%v", killed, c.Running())
	}
	c, err = Start(exec.Command("sleep", "30"))
	if err != nil {
		t.Fatal(err)
	}
	if killed := c.Stop(syscall.SIGTERM, 5*time.Second); killed || c.Running() {
		t.Errorf("Stop of a child honouring SIGTERM: killed=%v running=%v", killed, c.Running())
	}
	if err := c.Wait(); err == nil {
		t.Error("Wait after SIGTERM = nil, want the signal")
	}
}

func TestWaitHTTP200GivesUpWhenTheChildExits(t *testing.T) {
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Start(exec.Command("true"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := WaitHTTP200(ctx, "http://"+addr+"/readyz", 10*time.Millisecond, c.Exited()); err == nil || ctx.Err() != nil {
		t.Errorf("WaitHTTP200 = %v (ctx %v), want the child's exit noticed", err, ctx.Err())
	}
}
