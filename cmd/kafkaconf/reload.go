package kafkaconf

import (
	"os"
	"sync"
	"time"
)

// watched is a value loaded from files, loaded again on use when one of
// them changed size or modification time: a rotated client certificate or
// a refreshed token is used from the next connection on, without a restart.
// If the files cannot be read or parsed, mid-rotation say, the value loaded
// before stays in use and the next use tries again. Safe for concurrent use.
type watched[T any] struct {
	paths []string
	load  func() (T, error)

	mu     sync.Mutex
	stamps []stamp // of the files val was loaded from
	val    T
	ok     bool
}

type stamp struct {
	size int64
	mod  time.Time
}

func newWatched[T any](load func() (T, error), paths ...string) *watched[T] {
	return &watched[T]{paths: paths, load: load}
}

// get returns the value, loading it first if a file changed.
func (w *watched[T]) get() (T, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	stamps := make([]stamp, len(w.paths))
	changed := !w.ok
	for i, p := range w.paths {
		fi, err := os.Stat(p)
		if err != nil {
			if w.ok {
				return w.val, nil
			}
			var zero T
			return zero, err
		}
		stamps[i] = stamp{fi.Size(), fi.ModTime()}
		changed = changed || stamps[i] != w.stamps[i]
	}
	if !changed {
		return w.val, nil
	}
	v, err := w.load()
	if err != nil {
		if w.ok {
			return w.val, nil
		}
		return v, err
	}
	w.val, w.stamps, w.ok = v, stamps, true
	return v, nil
}
