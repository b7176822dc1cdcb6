package main

// The floor is a third reference point between the do-nothing baseline and
// the ingest. The baseline answers 200 at once; the ingest verifies the
// signature, parses, validates and builds a record, and then waits for Kafka
// to acknowledge it. On a small machine Kafka's broker shares the cores with
// the ingest and the load generator, so much of the gap between the two is
// Kafka's work, not the ingest's. The floor server does nothing but copy the
// body and produce it with the ingest's producer settings (acks=all,
// idempotent, 2 ms linger, lz4), answering 200 only once the broker has
// acknowledged. floor/baseline is then Kafka's share of the gap, and
// ingest/floor the ingest's own share: an ingest/floor close to 1 means there
// is little left to gain inside the ingest.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fasthttp"

	"purchasesync/cmd/kafkaconf"
	"purchasesync/ingest"
	"purchasesync/schemas/topicadmin"
)

const (
	// floorTopicPrefix names the floor's scratch topics; one is created per
	// run and deleted at its end. A leftover one (after kill -9) can be
	// deleted by hand.
	floorTopicPrefix     = "purchasesync.loadgen.floor."
	floorPartitions      = 6
	floorClientID        = "purchasesync-loadgen-floor" // the default of -kafka.clientID
	compressionLZ4       = "lz4"
	compressionNone      = "none"
	floorAcceptedBody    = `{"status":"accepted"}` + "\n"
	floorUnavailableBody = `{"status":"unavailable"}` + "\n"
)

// floorAdminTimeout bounds creating and deleting the scratch topic, so that
// an unreachable Kafka is a prompt error (a variable for tests).
var floorAdminTimeout = 10 * time.Second

// floor is a running floor: its scratch topic, the client that created it
// (and, in-process, produces to it) and the floor server, in-process or in a
// child process (see child.go).
type floor struct {
	topic   string
	brokers []string
	cl      *kgo.Client // creates and deletes the topic; the producer too with -inprocess
	srv     *refServer  // nil until the server runs
	rf      int16       // the scratch topic's replication factor
	minISR  int
}

// floorHandler is the floor server's state: a producer with the ingest's
// settings and its counters. It runs in-process (-inprocess) or in the
// child process.
type floorHandler struct {
	cl       *kgo.Client
	seq      atomic.Int64 // the next record's key
	produced atomic.Int64 // records acknowledged
	failed   atomic.Int64 // requests answered 503
}

// floorProduceTimeout is the ingest's default -ingest.produceTimeout.
func floorProduceTimeout() time.Duration { return ingest.DefaultConfig().ProduceTimeout }

func compressionCodec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case compressionLZ4:
		return kgo.Lz4Compression(), nil
	case compressionNone:
		return kgo.NoCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("unknown -kafka.compression %q: want lz4 or none", name)
}

// newFloorClient returns a Kafka client on the connection of conf (TLS,
// SASL; cmd/kafkaconf) with the ingest's producer settings, taken from
// where cmd/purchasesync takes them (kafkaconf.ProducerOpts with the
// defaults of -kafka.linger and -ingest.produceTimeout, then
// ingest.ProducerOpts), so that the floor measures exactly that producer;
// it produces to topic.
func newFloorClient(conf kafkaconf.Config, compression, topic string) (*kgo.Client, error) {
	codec, err := compressionCodec(compression)
	if err != nil {
		return nil, err
	}
	opts, err := conf.Opts()
	if err != nil {
		return nil, err
	}
	opts = append(opts, kafkaconf.ProducerOpts(kafkaconf.DefaultLinger, floorProduceTimeout(), codec)...)
	opts = append(opts, ingest.ProducerOpts()...)
	cl, err := kgo.NewClient(append(opts, kgo.DefaultProduceTopic(topic))...)
	if err != nil {
		return nil, fmt.Errorf("cannot create the floor's Kafka client: %w", err)
	}
	return cl, nil
}

// startFloor checks the Kafka connection, creates the scratch topic and
// starts the floor server: in a child process that only produces to the
// topic, or with -inprocess in this process. The topic is created and
// deleted here, by the parent, so that it goes even if the child crashes.
// On error nothing is left behind; otherwise the caller must call close.
func startFloor(ctx context.Context, o options) (*floor, error) {
	if len(o.kafka.Brokers) == 0 {
		return nil, errors.New("-floor needs Kafka: set -kafka.brokers or PURCHASESYNC_KAFKA_BROKERS")
	}
	if err := checkKafka(ctx, o.kafka); err != nil {
		return nil, err
	}
	var suffix [8]byte
	_, _ = rand.Read(suffix[:])
	f := &floor{topic: floorTopicPrefix + hex.EncodeToString(suffix[:]), brokers: o.kafka.Brokers}
	var err error
	f.cl, err = newFloorClient(o.kafka, o.kafkaCompression, f.topic)
	if err != nil {
		return nil, err
	}
	if err := f.createTopic(ctx); err != nil {
		f.cl.Close()
		return nil, err
	}
	if o.inprocess {
		f.srv, err = startFloorInProcess(f.cl)
	} else {
		// The connection goes as PURCHASESYNC_KAFKA_* variables, replacing
		// any the child inherits.
		f.srv, err = startChild(ctx, serveFloor, append(o.kafka.Environ(),
			envServeCompression+"="+o.kafkaCompression,
			envServeTopic+"="+f.topic,
		))
	}
	if err != nil {
		return nil, errors.Join(err, f.close())
	}
	return f, nil
}

// checkKafka makes one request to Kafka (kafkaconf's Check) within
// floorAdminTimeout, so that a configuration error (a wrong password, an
// unknown CA, TLS against a plaintext listener, ...) is its one line.
// Kafka not answering is left to creating the scratch topic to report.
func checkKafka(ctx context.Context, conf kafkaconf.Config) error {
	ctx, cancel := context.WithTimeout(ctx, floorAdminTimeout)
	defer cancel()
	if err := conf.Check(ctx); err != nil && !errors.Is(err, kafkaconf.ErrUnreachable) {
		return err
	}
	return nil
}

// startFloorInProcess serves the floor handler with cl in this process.
func startFloorInProcess(cl *kgo.Client) (*refServer, error) {
	h := &floorHandler{cl: cl}
	addr, stop, err := serveLoopback("floor", h.handle)
	if err != nil {
		return nil, err
	}
	return &refServer{addr: addr, where: whereInProcess, pid: os.Getpid(), stop: stop,
		counts: func() (int64, int64, bool) { return h.produced.Load(), h.failed.Load(), true },
	}, nil
}

func (f *floor) createTopic(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, floorAdminTimeout)
	defer cancel()
	// The replication the ingest's topics get on this cluster (migrate's
	// rule: RF min(3, brokers), min ISR RF-1), so that on three brokers the
	// floor pays for replication as the ingest does; a broker-wide
	// min.insync.replicas is overridden by the topic's own.
	adm := kadm.NewClient(f.cl)
	brokers, err := adm.ListBrokers(ctx)
	if err == nil {
		var rep topicadmin.Config
		rep, err = topicadmin.Config{Partitions: floorPartitions, OtherPartitions: floorPartitions}.ForBrokers(len(brokers))
		if err != nil {
			return err
		}
		f.rf, f.minISR = rep.ReplicationFactor, rep.MinInsyncReplicas
		minISR := strconv.Itoa(rep.MinInsyncReplicas)
		_, err = adm.CreateTopic(ctx, floorPartitions, rep.ReplicationFactor,
			map[string]*string{"min.insync.replicas": &minISR}, f.topic)
	}
	if err != nil {
		var why string
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			why = fmt.Sprintf(" (no answer within %s)", floorAdminTimeout)
		}
		err = fmt.Errorf("cannot create the floor's scratch topic %s on Kafka at %s%s; is Kafka running? set -kafka.brokers or PURCHASESYNC_KAFKA_BROKERS: %w",
			f.topic, strings.Join(f.brokers, ","), why, err)
		if ctx.Err() != nil {
			// Timed out or interrupted: the broker may have created the
			// topic all the same. Try briefly to delete it; an error here
			// most likely means it does not exist.
			_ = f.deleteTopic(min(2*time.Second, floorAdminTimeout))
		}
		return err
	}
	if err := waitLed(ctx, f.cl, f.topic); err != nil {
		return errors.Join(err, f.deleteTopic(floorAdminTimeout))
	}
	return nil
}

// waitLed waits until every partition of topic has a leader that answers.
// A broker answers CreateTopics before it leads the new partitions: metadata
// already names it leader while produces still get NOT_LEADER_FOR_PARTITION
// and back off (a few hundred ms on a real broker), which would be charged
// to the floor. ListOffsets answers only from a partition's leader, so wait
// until it does for every partition. The child process calls it too, which
// also connects its fresh client to the brokers before the load starts.
func waitLed(ctx context.Context, cl *kgo.Client, topic string) error {
	for {
		ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
		if err == nil && ends.Error() == nil && len(ends[topic]) == floorPartitions {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the floor's scratch topic %s is not led on all its %d partitions after %s: %w",
				topic, floorPartitions, floorAdminTimeout, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// deleteTopic deletes the scratch topic, with its own deadline so that it
// runs after an interrupt too.
func (f *floor) deleteTopic(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if _, err := kadm.NewClient(f.cl).DeleteTopic(ctx, f.topic); err != nil {
		return fmt.Errorf("cannot delete the floor's scratch topic %s (delete it by hand): %w", f.topic, err)
	}
	return nil
}

// handle copies the body, produces it and answers 200 once the broker
// acknowledged it, 503 otherwise. The copy is needed, as in the ingest:
// fasthttp reuses the body's buffer once the handler returns, while a record
// that timed out may still sit in the producer's buffer and be retried.
func (f *floorHandler) handle(ctx *fasthttp.RequestCtx) {
	body := append([]byte(nil), ctx.PostBody()...)
	key := strconv.AppendInt(nil, f.seq.Add(1)-1, 10)
	pctx, cancel := context.WithTimeout(context.Background(), floorProduceTimeout())
	err := f.cl.ProduceSync(pctx, &kgo.Record{Key: key, Value: body}).FirstErr()
	cancel()
	ctx.SetContentType("application/json")
	if err != nil {
		f.failed.Add(1)
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.SetBodyString(floorUnavailableBody)
		return
	}
	f.produced.Add(1)
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetBodyString(floorAcceptedBody)
}

// close stops the server, deletes the scratch topic and closes the client.
func (f *floor) close() error {
	var err error
	if f.srv != nil {
		err = f.srv.stop()
	}
	defer f.cl.Close()
	return errors.Join(err, f.deleteTopic(floorAdminTimeout))
}

// runFloor creates the scratch topic, drives the load at the floor server and
// deletes the topic. A result that was measured is returned even when the
// clean-up failed (with the clean-up error). o.floorCheck, if set, sees the
// topic after the load and before its deletion.
func runFloor(ctx context.Context, o options, reqs []request, logf func(string, ...any)) (res *result, err error) {
	f, err := startFloor(ctx, o)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := f.close(); cerr != nil {
			err = errors.Join(err, cerr)
		} else if produced, failed, ok := f.srv.counts(); ok {
			logf("floor: %d records acknowledged, %d requests failed; deleted scratch topic %s", produced, failed, f.topic)
		} else {
			logf("floor: deleted scratch topic %s", f.topic)
		}
	}()
	if w := o.kafka.Warning(); w != "" {
		logf("floor: %s", w)
	}
	logf("floor: fasthttp server %s producing to %s (%d partitions, replication %d, min ISR %d, acks=all, %s) on %s via %s",
		f.srv.where, f.topic, floorPartitions, f.rf, f.minISR, o.kafkaCompression, f.srv.addr, strings.Join(f.brokers, ","))
	if o.onServer != nil {
		o.onServer("floor", f.srv.addr, f.srv.pid)
	}
	res, err = drive(ctx, o, "floor", "http://"+f.srv.addr, reqs)
	if err != nil {
		return nil, err
	}
	if o.floorCheck != nil {
		if err := o.floorCheck(f.topic); err != nil {
			return res, fmt.Errorf("floor check: %w", err)
		}
	}
	return res, nil
}
