package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fasthttp"

	"purchasesync/schemas"
)

var (
	errTooBusy = errors.New("too many requests awaiting Kafka; retry later " +
		"(operators: see -ingest.maxInflightProduces and -ingest.maxQueueDuration)")
	errNotAcked = errors.New("Kafka did not acknowledge the event in time; retry later " +
		"(operators: see -ingest.produceTimeout and the Kafka brokers)")
)

// maxTimeLen is the longest RFC 3339 timestamp with nanoseconds in UTC.
const maxTimeLen = len("2006-01-02T15:04:05.999999999Z")

// newRecord builds a record whose key, value and header values are copies
// in one allocation. fasthttp reuses the request's buffers as soon as the
// handler returns, while the producer may still hold the record (after a
// 503 on timeout, or while it retries), so nothing may point into them.
// hdrs come from a schemas …HeaderList builder called with ReceivedAt
// unset: newRecord appends received-at (RFC 3339, nanoseconds, UTC) last,
// formatted straight into the arena, which is where those builders put it
// when nothing the ingest never sets follows. A stack buffer for it would
// move to the heap (the header values flow into the record), one more
// allocation per request.
func newRecord(topic, key string, body []byte, receivedAt time.Time, hdrs []kgo.RecordHeader) *kgo.Record {
	n := len(key) + len(body) + maxTimeLen
	for _, h := range hdrs {
		n += len(h.Value)
	}
	arena := make([]byte, 0, n)
	take := func(b []byte) []byte {
		start := len(arena)
		arena = append(arena, b...)
		return arena[start:len(arena):len(arena)]
	}
	rec := &kgo.Record{Topic: topic, Headers: make([]kgo.RecordHeader, 0, len(hdrs)+1)}
	if key != "" {
		start := len(arena)
		arena = append(arena, key...)
		rec.Key = arena[start:len(arena):len(arena)]
	}
	rec.Value = take(body)
	for _, h := range hdrs {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: h.Key, Value: take(h.Value)})
	}
	start := len(arena)
	arena = schemas.AppendReceivedAt(arena, receivedAt)
	rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: schemas.HeaderReceivedAt, Value: arena[start:len(arena):len(arena)]})
	if len(arena) > n {
		panic(fmt.Sprintf("BUG: record arena grew from %d to %d bytes", n, len(arena)))
	}
	return rec
}

// out is one record to produce and its index into Server.topics.
type out struct {
	rec *kgo.Record
	t   int
}

// produce hands the records to Kafka together and waits for all their
// acknowledgements (acks=all) for at most ProduceTimeout. It returns nil
// only when Kafka holds every one, and a 503 StatusError otherwise (then
// some may be held: the client's retry writes them again, which every
// reader of these topics takes as a repeat). Each record takes an
// in-flight slot, released when the producer is done with it, not when the
// handler gives up, so the limit bounds the bodies actually held.
func (s *Server) produce(recs ...out) error {
	for i := range recs {
		if err := s.inflight.acquire(); err != nil {
			for range i {
				s.inflight.release()
			}
			return err
		}
	}
	start := time.Now()
	pctx, cancel := context.WithTimeout(context.Background(), s.cfg.ProduceTimeout)
	type result struct {
		i   int
		err error
	}
	done := make(chan result, len(recs))
	left := int32(len(recs))
	finished := func() {
		if atomic.AddInt32(&left, -1) == 0 {
			cancel()
		}
	}
	for i, o := range recs {
		s.client.TryProduce(pctx, o.rec, func(_ *kgo.Record, err error) {
			done <- result{i, err} // before cancel: a closed pctx.Done must find the result waiting
			finished()
			s.inflight.release()
			if err == nil {
				s.m.produceDuration.WithLabelValues(topicLabels[o.t]).Observe(time.Since(start).Seconds())
			}
		})
	}
	var err error
	failed := 0
	for range recs {
		var r result
		select {
		case r = <-done:
		case <-pctx.Done():
			select {
			case r = <-done:
			default:
				r = result{0, context.DeadlineExceeded}
			}
		}
		if r.err != nil {
			err, failed = r.err, r.i
			break
		}
	}
	if err == nil {
		return nil
	}
	kind := produceRejected
	switch {
	case errors.Is(err, kgo.ErrMaxBuffered):
		kind = produceBufferFull
	case errors.Is(err, context.DeadlineExceeded):
		kind = produceTimeout
	}
	s.m.produceErrors.WithLabelValues(topicLabels[recs[failed].t], kind).Inc()
	s.log.Debug("record not acknowledged", "topic", recs[failed].rec.Topic, "kind", kind, "err", err)
	return &StatusError{Code: fasthttp.StatusServiceUnavailable, RetryAfter: s.cfg.RetryAfter,
		Err: fmt.Errorf("%w: %s", errNotAcked, kind)}
}

// ProducerOpts are what the ingest's producer adds to every producer's
// settings (cmd/kafkaconf.ProducerOpts); loadgen's Kafka floor, which
// measures the ingest's producer, adds them too. After a dropped broker
// connection a producer waits for fresh metadata at most once per
// MetadataMinAge (franz-go's default 5 s): longer than a webhook may wait,
// so every request in that window would get 503.
func ProducerOpts() []kgo.Opt {
	return []kgo.Opt{kgo.MetadataMinAge(500 * time.Millisecond)}
}
