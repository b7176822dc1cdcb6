package health

import (
	"context"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Offsets are commit offsets: topic → partition → next offset to read.
type Offsets = map[string]map[int32]kgo.EpochOffset

// Commit commits offs synchronously and returns the request's error or the
// first partition's (CommitOffsetsSync reports those only in the response).
func Commit(ctx context.Context, cl *kgo.Client, offs Offsets) error {
	if len(offs) == 0 {
		return nil
	}
	var cerr error
	cl.CommitOffsetsSync(ctx, offs, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if e := kerr.ErrorForCode(p.ErrorCode); e != nil && cerr == nil {
					cerr = fmt.Errorf("%s[%d]: %w", t.Topic, p.Partition, e)
				}
			}
		}
	})
	if cerr != nil {
		return fmt.Errorf("cannot commit offsets: %w", cerr)
	}
	return nil
}

// OffsetsOf is what committing recs commits: per partition, the offset
// after its last record.
func OffsetsOf(recs []*kgo.Record) Offsets {
	out := Offsets{}
	for _, r := range recs {
		if out[r.Topic] == nil {
			out[r.Topic] = map[int32]kgo.EpochOffset{}
		}
		if cur, ok := out[r.Topic][r.Partition]; !ok || cur.Offset <= r.Offset {
			out[r.Topic][r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}
		}
	}
	return out
}

// Uncommitted holds the offsets of work a stage finished (written,
// delivered) whose commit failed, so that a later commit carries them
// again: a failed commit is retried, never forgotten. The offsets of
// partitions the stage loses are dropped: their next owner reads those
// records again, and the stage's writes are idempotent (rows collapse in
// FINAL, the registry knows a repeated order). Safe for concurrent use.
type Uncommitted struct {
	mu   sync.Mutex
	offs Offsets
}

// Len is the number of partitions owed a commit.
func (u *Uncommitted) Len() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, ps := range u.offs {
		n += len(ps)
	}
	return n
}

// With returns offs (not modified) merged with what is owed: per partition
// the higher offset, which covers the lower.
func (u *Uncommitted) With(offs Offsets) Offsets {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := Offsets{}
	merge(out, u.offs)
	merge(out, offs)
	return out
}

// Failed records offsets whose commit failed.
func (u *Uncommitted) Failed(offs Offsets) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.offs == nil {
		u.offs = Offsets{}
	}
	merge(u.offs, offs)
}

// Committed forgets what offs covers (after offs was committed).
func (u *Uncommitted) Committed(offs Offsets) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for t, ps := range offs {
		for p, eo := range ps {
			if o, ok := u.offs[t][p]; ok && o.Offset <= eo.Offset {
				delete(u.offs[t], p)
			}
		}
		if len(u.offs[t]) == 0 {
			delete(u.offs, t)
		}
	}
}

// Take removes and returns what is owed for parts (to commit it while they
// are being revoked).
func (u *Uncommitted) Take(parts map[string][]int32) Offsets {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := Offsets{}
	for t, ps := range parts {
		for _, p := range ps {
			if eo, ok := u.offs[t][p]; ok {
				if out[t] == nil {
					out[t] = map[int32]kgo.EpochOffset{}
				}
				out[t][p] = eo
				delete(u.offs[t], p)
			}
		}
		if len(u.offs[t]) == 0 {
			delete(u.offs, t)
		}
	}
	return out
}

func merge(dst, src Offsets) {
	for t, ps := range src {
		for p, eo := range ps {
			if dst[t] == nil {
				dst[t] = map[int32]kgo.EpochOffset{}
			}
			if cur, ok := dst[t][p]; !ok || cur.Offset < eo.Offset {
				dst[t][p] = eo
			}
		}
	}
}
