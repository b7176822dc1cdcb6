package joinbench

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MemStatus is a process's memory as /proc/<pid>/status reports it.
type MemStatus struct {
	RSS int64 // VmRSS, bytes
	HWM int64 // VmHWM: the peak resident set the kernel saw, bytes
}

// ParseStatus reads VmRSS and VmHWM (in kB) from a /proc/<pid>/status.
func ParseStatus(r io.Reader) (MemStatus, error) {
	var m MemStatus
	var seen int
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return m, fmt.Errorf("unexpected %s line %q", name, sc.Text())
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return m, fmt.Errorf("unexpected %s line %q: %w", name, sc.Text(), err)
		}
		if name == "VmRSS" {
			m.RSS = v * 1024
		} else {
			m.HWM = v * 1024
		}
		seen++
	}
	if err := sc.Err(); err != nil {
		return m, err
	}
	if seen < 2 {
		return m, fmt.Errorf("no VmRSS and VmHWM lines (a kernel thread, or a process that has exited)")
	}
	return m, nil
}

// ReadStatus reads /proc/<pid>/status.
func ReadStatus(pid int) (MemStatus, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return MemStatus{}, err
	}
	defer f.Close()
	m, err := ParseStatus(f)
	if err != nil {
		return m, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	return m, nil
}

// Sampler samples a process's RSS until stopped. VmHWM is the peak the
// benchmark reports (the kernel keeps it between samples); the samples'
// maximum is a check on it, and the last sample tells the RSS at the end.
type Sampler struct {
	pid  int
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	maxRSS  int64
	last    MemStatus
	samples int
}

// StartSampler samples pid every interval.
func StartSampler(pid int, every time.Duration) *Sampler {
	s := &Sampler{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			s.sample()
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *Sampler) sample() {
	m, err := ReadStatus(s.pid)
	if err != nil {
		return // exited: keep what was seen
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = m
	s.maxRSS = max(s.maxRSS, m.RSS)
	s.samples++
}

// Stop takes a last sample and stops; it returns the peak (VmHWM of the
// last sample), the largest sampled VmRSS and the last VmRSS.
func (s *Sampler) Stop() (hwm, maxRSS, lastRSS int64) {
	s.sample()
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return max(s.last.HWM, s.maxRSS), s.maxRSS, s.last.RSS
}
