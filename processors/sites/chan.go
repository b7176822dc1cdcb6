package sites

import "sync"

// chanMu is a broadcast: get returns a channel that broadcast closes.
type chanMu struct {
	mu sync.Mutex
	ch chan struct{}
}

func (c *chanMu) get() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ch
}

func (c *chanMu) broadcast() {
	c.mu.Lock()
	close(c.ch)
	c.ch = make(chan struct{})
	c.mu.Unlock()
}
