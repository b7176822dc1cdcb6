package ledger

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progress draws a progress bar: redrawn in place twice a second on a
// terminal, a line every ten seconds otherwise (a CI log keeps each line).
type progress struct {
	w     io.Writer
	term  bool
	label string
	start time.Time
}

func newProgress(w io.Writer, term bool, label string) *progress {
	return &progress{w: w, term: term, label: label, start: time.Now()}
}

// bar renders done of total.
func (p *progress) bar(done, total int) string {
	const width = 30
	filled := 0
	if total > 0 {
		filled = min(width, done*width/total)
	}
	return fmt.Sprintf("[%s%s] %d/%d", strings.Repeat("#", filled), strings.Repeat("-", width-filled), done, total)
}

// every prints status() until the returned stop is called with the final
// line.
func (p *progress) every(status func() string) (stop func(final string)) {
	period := 10 * time.Second
	if p.term {
		period = 500 * time.Millisecond
	}
	quit, finished := make(chan struct{}), make(chan struct{})
	var once sync.Once
	line := func(s string) {
		elapsed := time.Since(p.start).Round(time.Second)
		if p.term {
			fmt.Fprintf(p.w, "\r\033[K%-8s %s  %s", p.label, s, elapsed)
		} else {
			fmt.Fprintf(p.w, "%-8s %s  %s\n", p.label, s, elapsed)
		}
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				line(status())
			}
		}
	}()
	return func(final string) {
		once.Do(func() {
			close(quit)
			<-finished
			line(final)
			if p.term {
				fmt.Fprintln(p.w)
			}
		})
	}
}
