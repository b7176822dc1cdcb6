package keymode

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

type latestValue struct {
	partition int32
	value     []byte
}

// readCompacted reads partitions ps of a compacted topic from their start
// to the end offsets at call time, and returns each key's last value
// (tombstones remove it).
func readCompacted(ctx context.Context, opts []kgo.Opt, topic string, ps []int32) (map[string]latestValue, error) {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read the end offsets of %s: %w", topic, err)
	}
	want := map[int32]int64{}
	from := map[int32]kgo.Offset{}
	for _, p := range ps {
		o, ok := ends.Lookup(topic, p)
		if !ok {
			return nil, fmt.Errorf("%s has no partition %d", topic, p)
		}
		if o.Offset > 0 {
			want[p] = o.Offset
			from[p] = kgo.NewOffset().AtStart()
		}
	}
	out := map[string]latestValue{}
	if len(want) == 0 {
		return out, nil
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: from})
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err := fs.Err0(); err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", topic, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Value == nil {
				delete(out, string(r.Key))
			} else {
				out[string(r.Key)] = latestValue{r.Partition, r.Value}
			}
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
	}
	return out, nil
}
