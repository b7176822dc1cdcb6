package joinbench

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Offsets are offsets per topic and partition.
type Offsets map[string]map[int32]int64

// Total is the sum over every partition.
func (o Offsets) Total() int64 {
	var n int64
	for _, ps := range o {
		for _, v := range ps {
			n += v
		}
	}
	return n
}

// EndOffsets lists the end offsets of topics.
func EndOffsets(ctx context.Context, adm *kadm.Client, topics ...string) (Offsets, error) {
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("cannot list end offsets of %v: %w", topics, err)
	}
	out := Offsets{}
	var ferr error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil && ferr == nil {
			ferr = fmt.Errorf("cannot list end offset of %s/%d: %w", o.Topic, o.Partition, o.Err)
		}
		if out[o.Topic] == nil {
			out[o.Topic] = map[int32]int64{}
		}
		out[o.Topic][o.Partition] = o.Offset
	})
	return out, ferr
}

// Behind is how many records of ends are not yet committed: a partition
// without a commit counts whole (a consumer starts at offset 0 on these
// fresh topics).
func Behind(ends, committed Offsets) int64 {
	var n int64
	for t, ps := range ends {
		for p, end := range ps {
			c, ok := committed[t][p]
			if !ok || c < 0 {
				c = 0
			}
			n += max(end-c, 0)
		}
	}
	return n
}

// Committed reads group's committed offsets.
func Committed(ctx context.Context, adm *kadm.Client, group string) (Offsets, error) {
	resp, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("cannot fetch the offsets of group %s: %w", group, err)
	}
	out := Offsets{}
	resp.Each(func(o kadm.OffsetResponse) {
		if out[o.Topic] == nil {
			out[o.Topic] = map[int32]int64{}
		}
		out[o.Topic][o.Partition] = o.At
	})
	return out, nil
}

// WaitCommitted polls group's committed offsets until they reach ends, and
// returns when that was seen. It gives up when ctx ends, or when exited
// says the process under test ended (it would never get there).
func WaitCommitted(ctx context.Context, adm *kadm.Client, group string, ends Offsets, poll time.Duration, exited <-chan struct{}) (time.Time, error) {
	t := time.NewTicker(poll)
	defer t.Stop()
	var last error
	for {
		c, err := Committed(ctx, adm, group)
		if err == nil && Behind(ends, c) == 0 {
			return time.Now(), nil
		}
		if err != nil {
			last = err // the group may not exist yet: keep polling
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return time.Time{}, fmt.Errorf("group %s did not commit its input (last error: %v): %w", group, last, ctx.Err())
			}
			return time.Time{}, fmt.Errorf("group %s did not commit its input: %w", group, ctx.Err())
		case <-exited:
			return time.Time{}, fmt.Errorf("the process of group %s exited before committing its input", group)
		case <-t.C:
		}
	}
}
