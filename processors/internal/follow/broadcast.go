package follow

import "sync"

// Broadcast wakes every waiter at once, as often as needed: Wait returns a
// channel that the next Notify closes. A waiter takes the channel before it
// checks what it waits for, so that a change between the check and the wait
// is not missed. The zero value is ready; safe for concurrent use.
type Broadcast struct {
	mu sync.Mutex
	ch chan struct{} // nil: nobody took one since the last Notify
}

// Wait returns the channel the next Notify closes.
func (b *Broadcast) Wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
}

// Notify wakes everyone waiting.
func (b *Broadcast) Notify() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch != nil {
		close(b.ch)
		b.ch = nil
	}
}
