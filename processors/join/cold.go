package join

// Most keys spend almost all of the dedupe horizon (7 days) settled: both
// sides seen, or registered from Shopify and waiting for a late browser,
// with nothing due but their expiry. Their states are read again only for a
// repeat, a refund or a late browser event. A partition therefore keeps a
// settled key's state in a file of its own (coldStore) and, in memory, only
// a stub: where the state is in the file, and its header (its timers), so
// that expiry needs no read. Hot keys (held webhooks, storefront
// registrations waiting for their webhook) stay in memory.
//
// The file is a cache, not a store of record: join.state.v1 is. It is
// created at the partition's restore (which appends every restored settled
// state to it), unlinked at once, and closed when the partition is
// dropped, so nothing is left behind by a crash and nothing in it survives
// a restart. It is append-only; a state written again or expired leaves
// its old bytes dead, and the file is rewritten once the dead bytes
// outweigh the live ones.
//

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// coldFlushBytes is how much a coldStore buffers before writing; reads of
// what is buffered are served from memory.
const coldFlushBytes = 1 << 20

// coldCompactBytes: dead bytes below this are never worth a rewrite.
const coldCompactBytes = 64 << 20

// coldStore is one partition's file of settled states.
type coldStore struct {
	dir     string
	f       *os.File
	flushed int64  // bytes written to f
	tail    []byte // bytes appended after flushed
	live    int64  // bytes of the states stubs point to
	dead    int64  // bytes no stub points to
	err     error  // the first I/O error; the store takes nothing more
	readBuf []byte
	// compactMin: dead bytes below it are never worth a rewrite
	// (coldCompactBytes; tests lower it).
	compactMin int64
}

// errColdUnavailable: the store could not create or write its file; the
// partition keeps every state in memory instead.
var errColdUnavailable = errors.New("join: state spill file unavailable")

// put appends v and returns its offset.
func (c *coldStore) put(v []byte) (int64, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.f == nil {
		f, err := os.CreateTemp(c.dir, "purchasesync-join-*.state")
		if err != nil {
			c.err = fmt.Errorf("%w: %v", errColdUnavailable, err)
			return 0, c.err
		}
		// Unlinked at once: the open file lives until it is closed, and
		// a crash leaves nothing behind.
		if err := os.Remove(f.Name()); err != nil {
			f.Close()
			c.err = fmt.Errorf("%w: %v", errColdUnavailable, err)
			return 0, c.err
		}
		c.f = f
	}
	off := c.flushed + int64(len(c.tail))
	c.tail = append(c.tail, v...)
	c.live += int64(len(v))
	if len(c.tail) >= coldFlushBytes {
		if err := c.flush(); err != nil {
			return 0, err
		}
	}
	return off, nil
}

func (c *coldStore) flush() error {
	if len(c.tail) == 0 || c.err != nil {
		return c.err
	}
	if _, err := c.f.WriteAt(c.tail, c.flushed); err != nil {
		c.err = fmt.Errorf("%w: %v", errColdUnavailable, err)
		return c.err
	}
	c.flushed += int64(len(c.tail))
	c.tail = c.tail[:0]
	return nil
}

// get returns the n bytes at off; they are valid until the next call.
func (c *coldStore) get(off int64, n int) ([]byte, error) {
	if off >= c.flushed {
		i := off - c.flushed
		if i+int64(n) > int64(len(c.tail)) {
			return nil, fmt.Errorf("join: spilled state at %d+%d is past the end of the spill file", off, n)
		}
		return c.tail[i : i+int64(n)], nil
	}
	if cap(c.readBuf) < n {
		c.readBuf = make([]byte, n)
	}
	b := c.readBuf[:n]
	if _, err := c.f.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("join: cannot read a spilled state at %d+%d: %w", off, n, err)
	}
	return b, nil
}

// free marks n bytes dead.
func (c *coldStore) free(n int) {
	c.live -= int64(n)
	c.dead += int64(n)
}

// wantsCompaction: the dead bytes outweigh the live ones, and are many.
func (c *coldStore) wantsCompaction() bool {
	return c.err == nil && c.dead > c.compactMin && c.dead > c.live
}

func (c *coldStore) close() {
	if c.f != nil {
		c.f.Close()
		c.f = nil
	}
	c.tail, c.readBuf = nil, nil
}

// size is the file's length, buffered bytes included.
func (c *coldStore) size() int64 { return c.flushed + int64(len(c.tail)) }

// spillable: a settled state (nothing due but its expiry, a deadline a
// coldRef can hold), of a size a coldRef can point to.
func spillable(m stateMeta, value []byte) bool {
	return !m.held && m.heldUntil.IsZero() && m.webhookDue.IsZero() && !m.expiresAt.IsZero() &&
		m.expiresAt.Equal(time.Unix(0, timerAt(m.expiresAt))) && len(value) < 1<<coldLenBits
}

// coldRef is where a spilled state is: offset and length in the spill
// file (one word), and its expiry (Unix nanoseconds), which is all of its
// header a settled state needs in memory. 16 bytes, no pointer: the map of
// them is the bulk of a partition's memory, and the collector never scans
// it.
type coldRef struct {
	pos     uint64 // offset<<coldLenBits | length
	expires int64
}

// coldLenBits: states are at most a Kafka record (1 MiB by default), far
// below 16 MiB; offsets up to 1 TiB.
const coldLenBits = 24

func newColdRef(off int64, value []byte, m stateMeta) coldRef {
	return coldRef{pos: uint64(off)<<coldLenBits | uint64(len(value)), expires: m.expiresAt.UnixNano()}
}

func (r coldRef) off() int64 { return int64(r.pos >> coldLenBits) }
func (r coldRef) len() int   { return int(r.pos & (1<<coldLenBits - 1)) }

func (r coldRef) moved(off int64) coldRef {
	r.pos = uint64(off)<<coldLenBits | uint64(r.len())
	return r
}

func (r coldRef) meta() stateMeta { return stateMeta{expiresAt: time.Unix(0, r.expires).UTC()} }
