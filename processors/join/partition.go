package join

import (
	"container/heap"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
	"purchasesync/schemas/deadletter"
)

// SiteLookup is what the join needs of the site registry.
type SiteLookup interface {
	Get(site string) (schemas.Site, bool)
}

// partition owns the state of one partition number. One goroutine at a time
// uses it (the processor's loop), so it has no locks.
type partition struct {
	id     int32
	topics schemas.Topics
	cfg    Config
	sites  SiteLookup
	m      *metrics

	// states holds each key's state encoded (codec.go): the bytes of its
	// last join.state.v1 value, decoded only when an event or a due timer
	// needs them. held counts the states holding a purchase; buf is the
	// encoder's scratch space; badValues are changelog values a restore
	// could not decode.
	states    map[string][]byte
	badValues map[string]badValue
	// spill holds the states of settled keys (cold.go), and coldRefs where
	// each is; nil keeps every state in memory (states). A key is in one
	// of states and coldRefs. fault is the first spilled state that could
	// not be read back: the processor then drops the partition and
	// restores it from the changelog.
	spill    *coldStore
	coldRefs map[string]coldRef
	fault    error
	timers   timerHeap
	held     int
	buf      []byte

	// Input positions and watermarks, per input: the next offset to read,
	// and the time up to which the input is known to be read (the latest
	// received-at read, or a periodic tick at which it was caught up with
	// its end offset). Watermarks only move forward.
	sfNext, whNext int64
	sfWM, whWM     time.Time
	// sfQ and whQ are inputs read but not applied yet, per input in offset
	// order. The two are merged by received-at, and a record received at T
	// is applied only once both watermarks reach T (the partition's event
	// clock): an input read ahead of the other waits for it, so decisions
	// follow received-at whatever each input's lag. What waits is a suffix
	// of its input, so committing the offset of its first record
	// (Processor.keepPending) makes a restart read exactly it again.
	sfQ, whQ  inputQueue
	decodeBuf []*inputEvent // decodeAhead's
	paused    bool          // fetching of the input ahead is paused (Processor.throttle)

	// blocked are due timers that a watermark held back (rule 9), with the
	// watermarks they were tried at: they are tried again only once a
	// watermark moves, so ticking before every record stays O(due timers).
	blocked              []timer
	blockedSF, blockedWH time.Time
	// input is the record being applied (nil while timers fire), for the
	// processor to know which input a refused output came from.
	input *kgo.Record
	// poisonedKeys are keys whose timer outputs Kafka refused for good
	// (the processor's map; nil in a replay).
	poisonedKeys map[string]string
}

func newPartition(id int32, cfg Config, sites SiteLookup, m *metrics) *partition {
	p := &partition{id: id, topics: cfg.Topics, cfg: cfg, sites: sites, m: m, states: map[string][]byte{}, sfNext: -1, whNext: -1}
	if cfg.StateDir != "" {
		p.spill = &coldStore{dir: cfg.StateDir, compactMin: coldCompactBytes}
		p.coldRefs = map[string]coldRef{}
	}
	return p
}

// keys is how many keys the partition knows.
func (p *partition) keys() int { return len(p.states) + len(p.coldRefs) }

// has: the partition knows key.
func (p *partition) has(key string) bool {
	if _, ok := p.states[key]; ok {
		return true
	}
	_, ok := p.coldRefs[key]
	return ok
}

// presize makes room for about n keys (a restore, before reading them).
func (p *partition) presize(n int64) {
	if p.keys() > 0 {
		return
	}
	if p.spill != nil {
		p.coldRefs = make(map[string]coldRef, n)
		return
	}
	p.states = make(map[string][]byte, n)
}

// close releases the partition's spill file.
func (p *partition) close() {
	if p.spill != nil {
		p.spill.close()
	}
}

// keep stores key's new state: a settled one in the spill file (a stub in
// memory), any other in memory. value must not be modified afterwards.
func (p *partition) keep(key string, value []byte, m stateMeta) {
	p.release(key)
	if p.spill != nil && spillable(m, value) {
		if off, err := p.spill.put(value); err == nil {
			delete(p.states, key)
			p.coldRefs[key] = newColdRef(off, value, m)
			if p.spill.wantsCompaction() {
				p.compact()
			}
			return
		}
		// The spill file is unavailable (the processor says so once):
		// memory holds it instead.
	}
	p.states[key] = value
}

// release forgets where key's spilled state was, if it was.
func (p *partition) release(key string) {
	if ref, ok := p.coldRefs[key]; ok {
		p.spill.free(ref.len())
		delete(p.coldRefs, key)
	}
}

// forget deletes key's state.
func (p *partition) forget(key string) {
	p.release(key)
	delete(p.states, key)
}

// compact rewrites the spill file with only the states stubs point to.
func (p *partition) compact() {
	fresh := &coldStore{dir: p.spill.dir, compactMin: p.spill.compactMin}
	for k, ref := range p.coldRefs {
		b, err := p.spill.get(ref.off(), ref.len())
		var off int64
		if err == nil {
			off, err = fresh.put(b)
		}
		if err != nil {
			// Keep the old file; a failed read is a fault like any other.
			fresh.close()
			if !errors.Is(err, errColdUnavailable) {
				p.setFault(err)
			}
			return
		}
		p.coldRefs[k] = ref.moved(off)
	}
	p.spill.close()
	p.spill = fresh
}

func (p *partition) setFault(err error) {
	if p.fault == nil {
		p.fault = fmt.Errorf("join: partition %d: %w", p.id, err)
	}
}

// output is where a partition writes its records (a transaction, or a
// replay's sink).
type output func(*kgo.Record)

// restoreValue takes a changelog value of key (nil: a tombstone), in
// reading order: the last one of each key is its state. A value that does
// not decode is kept aside (restoreErr), unless a later one of its key
// replaces it.
func (p *partition) restoreValue(key string, value []byte, offset int64) {
	if value == nil {
		p.forget(key)
		delete(p.badValues, key)
		return
	}
	v, m, err := checkState(key, value)
	if err != nil {
		if p.badValues == nil {
			p.badValues = map[string]badValue{}
		}
		p.badValues[key] = badValue{offset, err}
		p.forget(key)
		return
	}
	delete(p.badValues, key)
	if &v[0] == &value[0] && !(p.spill != nil && p.spill.err == nil && spillable(m, v)) {
		// In memory of its own: the fetched batch it came in is not
		// kept reachable. (The spill file copies what it takes.)
		v = slices.Clone(v)
	}
	p.keep(key, v, m)
}

// badValue is a changelog value that did not decode.
type badValue struct {
	offset int64
	err    error
}

// restoreErr is the first (by offset) key whose last value did not decode.
func (p *partition) restoreErr() *stateDecodeError {
	var first *stateDecodeError
	for k, b := range p.badValues {
		if first == nil || b.offset < first.offset {
			first = &stateDecodeError{key: k, offset: b.offset, err: b.err}
		}
	}
	return first
}

// checkState checks a changelog value (so that a corrupt one stops the
// restore, naming its key, instead of a later decision) and returns it in
// the current encoding (value itself when it already is).
func checkState(key string, value []byte) ([]byte, stateMeta, error) {
	if len(value) > 0 && value[0] == '{' {
		s, err := decodeState(key, value)
		if err != nil {
			return nil, stateMeta{}, err
		}
		return encodeState(nil, s), metaOf(s), nil
	}
	m, err := checkValue(value)
	if err != nil {
		return nil, stateMeta{}, err
	}
	return value, m, nil
}

// stateDecodeError is a join.state.v1 value that does not decode.
type stateDecodeError struct {
	key    string
	offset int64
	err    error
}

func (e *stateDecodeError) Error() string {
	return fmt.Sprintf("cannot decode join state of %s: %v", e.key, e.err)
}

func (e *stateDecodeError) Unwrap() error { return e.err }

// finishRestore indexes the restored states: held count and timers.
func (p *partition) finishRestore() {
	p.timers, p.held = p.timers[:0], 0
	for k, v := range p.states {
		m, err := decodeMeta(k, v)
		if err != nil {
			panic(fmt.Sprintf("BUG: restored join state of %s does not decode: %v", k, err))
		}
		if m.held {
			p.held++
		}
		if d := m.deadline(); !d.IsZero() {
			p.timers = append(p.timers, timer{at: timerAt(d), key: k})
		}
	}
	for k, ref := range p.coldRefs {
		p.timers = append(p.timers, timer{at: ref.expires, key: k})
	}
	heap.Init(&p.timers)
}

// state decodes key's state (nil: nothing known), from memory or the spill
// file. What either holds was encoded here or checked at restore, so only
// reading the file back can fail.
func (p *partition) state(key string) (*State, error) {
	v, ok := p.states[key]
	if ref, cold := p.coldRefs[key]; cold {
		b, err := p.spill.get(ref.off(), ref.len())
		if err != nil {
			return nil, err
		}
		v, ok = b, true
	}
	if !ok {
		return nil, nil
	}
	s, err := decodeState(key, v)
	if err != nil {
		panic(fmt.Sprintf("BUG: join state of %s does not decode: %v", key, err))
	}
	return s, nil
}

// meta reads the header of key's state (ok false: nothing known).
func (p *partition) meta(key string) (stateMeta, bool) {
	if ref, ok := p.coldRefs[key]; ok {
		return ref.meta(), true
	}
	v, ok := p.states[key]
	if !ok {
		return stateMeta{}, false
	}
	m, err := decodeMeta(key, v)
	if err != nil {
		panic(fmt.Sprintf("BUG: join state of %s in memory does not decode: %v", key, err))
	}
	return m, true
}

func (p *partition) settings(site string) Settings {
	set := Settings{Grace: schemas.DefaultGrace, WebhookWait: p.cfg.WebhookWait, DedupeHorizon: p.cfg.DedupeHorizon}
	if s, ok := p.sites.Get(site); ok {
		set.Grace = time.Duration(s.Grace)
		set.SyncingEnabled = s.PurchaseSyncing
	}
	return set
}

// handleDecoded decides on one decoded input record and writes the results.
func (p *partition) handleDecoded(rec *kgo.Record, ev Event, err error, out output) {
	if err != nil {
		p.m.invalid.WithLabelValues(rec.Topic).Inc()
		p.emitDeadLetter(rec, err.Error(), true, out)
		return
	}
	key := string(rec.Key)
	s, err := p.state(key)
	if err != nil {
		p.setFault(err) // decided once the partition is restored
		return
	}
	p.apply(key, Decide(s, ev, p.settings(ev.Site)), out)
}

// inputEvent is one input record of a partition, decoded, or marked
// poisoned (its outputs were refused by Kafka; see Processor.poison).
type inputEvent struct {
	rec        *kgo.Record
	ev         Event
	err        error
	storefront bool
	poison     string // dead-letter reason; "" = decide on it
	dropValue  bool   // a poisoned input too large for the dead-letter topic
	// raw: only ev.ReceivedAt is set; the body is decoded just before the
	// record is applied (decodeAhead), so that what waits in the queues
	// (a read-ahead input, up to about max poll records a partition) is only
	// the record, not its decoded order as well.
	raw bool
}

// receivedBefore: a is decided before b, by received-at; Shopify's first
// on a tie (its purchase is then held when the storefront event comes).
func receivedBefore(a, b *inputEvent) bool {
	if c := a.ev.ReceivedAt.Compare(b.ev.ReceivedAt); c != 0 {
		return c < 0
	}
	return !a.storefront && b.storefront
}

// read takes one poll's inputs of the partition (each input in offset
// order): the positions and watermarks move past them, and they wait in
// their input's queue. A record below an input's position was read before
// (a client that fetched again what this partition holds) and is skipped.
func (p *partition) read(evs []inputEvent) {
	for i := range evs {
		e := &evs[i]
		next, wm, q := &p.whNext, &p.whWM, &p.whQ
		if e.storefront {
			next, wm, q = &p.sfNext, &p.sfWM, &p.sfQ
		}
		if e.rec.Offset < *next {
			continue
		}
		*next = e.rec.Offset + 1
		if e.ev.ReceivedAt.After(*wm) {
			*wm = e.ev.ReceivedAt
		}
		q.push(*e)
	}
}

// pendingLen is how many inputs wait.
func (p *partition) pendingLen() int { return p.sfQ.len() + p.whQ.len() }

// inputQueue is a FIFO of inputs that reuses its array.
type inputQueue struct {
	evs  []inputEvent
	head int
}

func (q *inputQueue) len() int          { return len(q.evs) - q.head }
func (q *inputQueue) push(e inputEvent) { q.evs = append(q.evs, e) }
func (q *inputQueue) peek() *inputEvent {
	if q.head == len(q.evs) {
		return nil
	}
	return &q.evs[q.head]
}

func (q *inputQueue) pop() {
	q.evs[q.head] = inputEvent{} // the record is not kept reachable
	q.head++
	switch {
	case q.head == len(q.evs):
		q.evs, q.head = q.evs[:0], 0
	case q.head >= 1024 && 2*q.head >= len(q.evs):
		n := copy(q.evs, q.evs[q.head:])
		clear(q.evs[n:])
		q.evs, q.head = q.evs[:n], 0
	}
}

// raise moves the watermarks forward to at least sf and wh (a periodic
// tick that saw an input caught up; the end of a replay).
func (p *partition) raise(sf, wh time.Time) {
	if sf.After(p.sfWM) {
		p.sfWM = sf
	}
	if wh.After(p.whWM) {
		p.whWM = wh
	}
}

// clock is the partition's event time: both inputs are read up to it.
func (p *partition) clock() time.Time { return minTime(p.sfWM, p.whWM) }

// advance applies every waiting input received at or before the clock,
// in received-at order, and before each record received at T fires every
// timer due at or before T (DESIGN §3 rule 9): the clock of a decision is
// the ingest's received-at, not how the records happened to be fetched.
// The live processor and Replay both decide through here.
func (p *partition) advance(out output) {
	clock := p.clock()
	for {
		q := &p.whQ
		e := q.peek()
		if s := p.sfQ.peek(); s != nil && (e == nil || receivedBefore(s, e)) {
			q, e = &p.sfQ, s
		}
		if e == nil || e.ev.ReceivedAt.After(clock) {
			break
		}
		if e.raw {
			p.decodeAhead(clock)
		}
		p.input = nil
		p.tick(e.ev.ReceivedAt, p.sfWM, p.whWM, clockEvent, out)
		p.input = e.rec
		if e.poison != "" {
			p.emitDeadLetter(e.rec, e.poison, !e.dropValue, out)
		} else {
			p.handleDecoded(e.rec, e.ev, e.err, out)
		}
		q.pop()
	}
	p.input = nil
}

// decodeAheadMax is how many waiting records decodeAhead decodes at once.
const decodeAheadMax = 512

// decodeAhead decodes, on every core, the next raw records that advance
// will apply (in its order, received at or before clock). Decoding the
// bodies is most of the join's work and needs nothing of the state.
func (p *partition) decodeAhead(clock time.Time) {
	batch := p.decodeBuf[:0]
	i, j := p.sfQ.head, p.whQ.head
	for len(batch) < decodeAheadMax {
		var e *inputEvent
		switch {
		case i < len(p.sfQ.evs) && (j == len(p.whQ.evs) || receivedBefore(&p.sfQ.evs[i], &p.whQ.evs[j])):
			e = &p.sfQ.evs[i]
			i++
		case j < len(p.whQ.evs):
			e = &p.whQ.evs[j]
			j++
		}
		if e == nil || e.ev.ReceivedAt.After(clock) {
			break
		}
		if e.raw {
			batch = append(batch, e)
		}
	}
	decodeEvents(batch)
	clear(batch)
	p.decodeBuf = batch[:0]
}

// decodeEvents decodes raw inputs in chunks, on every core.
func decodeEvents(evs []*inputEvent) {
	const chunk = 32
	decode := func(from, to int) {
		for _, e := range evs[from:to] {
			e.ev, e.err = decodeEvent(e.rec, e.storefront)
			e.raw = false
		}
	}
	workers := min(runtime.GOMAXPROCS(0), (len(evs)+chunk-1)/chunk)
	if workers <= 1 {
		decode(0, len(evs))
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				from := int(next.Add(chunk)) - chunk
				if from >= len(evs) {
					return
				}
				decode(from, min(from+chunk, len(evs)))
			}
		}()
	}
	wg.Wait()
}

// replay decides on a partition's whole input, read to its end: both
// inputs are complete up to endAt, and the timers then run at endAt.
func (p *partition) replay(evs []inputEvent, endAt time.Time, out output) {
	p.read(evs)
	p.raise(endAt, endAt)
	p.advance(out)
	p.tick(endAt, endAt, endAt, clockWall, out)
}

// pendingFrom returns, per input, the first record waiting (nil when
// none): the offset to commit for that input.
func (p *partition) pendingFrom() (sf, wh *kgo.Record) {
	if e := p.sfQ.peek(); e != nil {
		sf = e.rec
	}
	if e := p.whQ.peek(); e != nil {
		wh = e.rec
	}
	return sf, wh
}

func (p *partition) emitDeadLetter(rec *kgo.Record, reason string, withValue bool, out output) {
	dl := deadletter.Record(p.topics.Name(schemas.TopicDeadLetter), rec, reason)
	// The dead-letter topic is not co-partitioned (one partition by
	// default) and this client partitions manually.
	dl.Partition = 0
	if !withValue {
		dl.Value = nil
	}
	out(dl)
}

// deadLetterState gives up on a key whose timer's outputs Kafka refused:
// its state goes to the dead-letter topic and is deleted (tombstone), so
// the partition is not stalled by it.
func (p *partition) deadLetterState(key string, s *State, reason string, out output) {
	// JSON, not the changelog's encoding: the dead letter is for people.
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("BUG: cannot encode join state: %v", err))
	}
	if s.Held != nil {
		p.held--
	}
	p.forget(key)
	state := p.topics.Name(schemas.TopicJoinState)
	// The shared builder, with the state's own partition and no offset
	// (-1): the value is the state as it was in memory, not a record read.
	dl := deadletter.Record(p.topics.Name(schemas.TopicDeadLetter), &kgo.Record{Topic: state, Partition: p.id, Offset: -1, Key: []byte(key), Value: b}, reason)
	dl.Partition = 0
	out(dl)
	out(&kgo.Record{Topic: state, Key: []byte(key), Partition: p.id})
}

// The clocks timers fire by, for purchasesync_join_hold_releases_total:
// before a record, at its received-at (clockEvent), or at a periodic tick
// (clockWall: wall time for a caught-up partition, its watermark else).
const (
	clockEvent = "event"
	clockWall  = "wall"
)

// tick runs the timers due at now with the given input watermarks.
func (p *partition) tick(now, sfWM, whWM time.Time, clock string, out output) {
	if len(p.blocked) > 0 && (!sfWM.Equal(p.blockedSF) || !whWM.Equal(p.blockedWH)) {
		for _, t := range p.blocked {
			heap.Push(&p.timers, t)
		}
		p.blocked = p.blocked[:0]
	}
	p.blockedSF, p.blockedWH = sfWM, whWM
	for len(p.timers) > 0 && p.timers[0].due(now) {
		t := heap.Pop(&p.timers).(timer)
		m, ok := p.meta(t.key)
		if !ok || timerAt(m.deadline()) != t.at {
			continue // stale timer: the state moved on
		}
		var s *State
		var d Decision
		if _, spilled := p.coldRefs[t.key]; spilled && p.poisonedKeys[t.key] == "" {
			// A settled key's only timer is its expiry, which needs
			// nothing of the state but its deadlines: it is not read back.
			s = &State{HeldUntil: m.heldUntil, WebhookDue: m.webhookDue, ExpiresAt: m.expiresAt}
			s.Site, s.OrderNumber, _ = schemas.SplitKey(t.key)
			if d = Tick(s, now, sfWM, whWM, p.settings(s.Site)); !d.Delete {
				s = nil // not an expiry after all: decide on the whole state
			}
		}
		if s == nil {
			var err error
			if s, err = p.state(t.key); err != nil {
				p.setFault(err)
				return
			}
			if reason := p.poisonedKeys[t.key]; reason != "" {
				p.deadLetterState(t.key, s, reason, out)
				continue
			}
			d = Tick(s, now, sfWM, whWM, p.settings(s.Site))
		}
		if !d.StateChanged {
			// Blocked by a watermark (rule 9): tried again once one moves.
			p.blocked = append(p.blocked, t)
			continue
		}
		if s.Held != nil && d.State != nil && d.State.Held == nil {
			p.m.holdReleases.WithLabelValues(clock).Inc()
		}
		p.apply(t.key, d, out)
	}
}

func (p *partition) apply(key string, d Decision, out output) {
	for _, o := range d.Outcomes {
		p.m.decisions.decided(o)
	}
	if d.StateChanged {
		if m, ok := p.meta(key); ok && m.held {
			p.held--
		}
		var value []byte
		if d.Delete {
			p.forget(key)
		} else {
			// One exact copy of the encoding is both the state in memory
			// (or what the spill file copies) and the changelog record's
			// value (neither is modified).
			p.buf = encodeState(p.buf[:0], d.State)
			value = slices.Clone(p.buf)
			p.keep(key, value, metaOf(d.State))
			if dl := d.State.NextDeadline(); !dl.IsZero() {
				heap.Push(&p.timers, timer{at: timerAt(dl), key: key})
			}
			if d.State.Held != nil {
				p.held++
			}
		}
		out(&kgo.Record{Topic: p.topics.Name(schemas.TopicJoinState), Key: []byte(key), Value: value, Partition: p.id})
	}
	for _, pu := range d.Purchases {
		b, err := schemas.MarshalPurchase(pu)
		if err != nil {
			panic(fmt.Sprintf("BUG: cannot encode purchase: %v", err))
		}
		out(&kgo.Record{Topic: p.topics.Name(schemas.TopicPurchases), Key: []byte(key), Value: b, Partition: p.id})
	}
	for _, x := range d.Discrepancies {
		b, err := schemas.MarshalDiscrepancy(x)
		if err != nil {
			panic(fmt.Sprintf("BUG: cannot encode discrepancy: %v", err))
		}
		field := x.Field
		if field == "" {
			field = "none"
		}
		p.m.discrepancies.WithLabelValues(field).Inc()
		out(&kgo.Record{Topic: p.topics.Name(schemas.TopicDiscrepancies), Key: []byte(key), Value: b, Partition: p.id})
	}
}

// receivedAt is the ingest's received-at stamp of a raw record (its header;
// the record's timestamp if the header is missing or unreadable).
func receivedAt(rec *kgo.Record) time.Time {
	if t, ok := schemas.ReceivedAtOf(rec.Headers); ok {
		return t.UTC()
	}
	return rec.Timestamp.UTC()
}

// decodeEvent turns a raw record into an Event. The key was computed by
// ingest with the site's order_key mode, so it is the join key as is.
func decodeEvent(rec *kgo.Record, storefront bool) (Event, error) {
	site, orderNumber, err := schemas.SplitKey(string(rec.Key))
	ev := Event{Site: site, OrderNumber: orderNumber, ReceivedAt: receivedAt(rec)}
	if err != nil {
		return ev, err
	}
	switch wh := schemas.ParseWebhookHeaders(rec.Headers); {
	case storefront:
		sh := schemas.ParseStorefrontHeaders(rec.Headers)
		ev.Meta.ClientIP, ev.Meta.UserAgent = string(sh.ClientIP), string(sh.UserAgent)
		ev.Storefront, err = schemas.ParseStorefrontPurchase(rec.Value)
	case wh.IsRefund():
		ev.Refund, err = schemas.ParseShopifyRefund(rec.Value)
	default:
		ev.Order, err = schemas.ParseShopifyOrder(rec.Value)
		ev.Reconciled = wh.Reconciled
	}
	if err != nil {
		return ev, fmt.Errorf("cannot decode %s record at offset %d: %w", rec.Topic, rec.Offset, err)
	}
	return ev, nil
}

// overdueHolds counts the held purchases past their deadline (received_at +
// grace) that are still held, because rule 9 waits for the storefront input,
// and returns how far past its deadline the oldest one is. Due timers are at
// the top of the heap (blocked ones are pushed back by tick), so this visits
// only them.
func (p *partition) overdueHolds(now time.Time) (n int, oldest time.Duration) {
	var seen map[string]bool // a key may have stale duplicate timers
	count := func(k string) {
		if m, ok := p.meta(k); ok && m.held && !now.Before(m.heldUntil) && !seen[k] {
			if seen == nil {
				seen = map[string]bool{}
			}
			seen[k] = true
			n++
			oldest = max(oldest, now.Sub(m.heldUntil))
		}
	}
	var walk func(i int)
	walk = func(i int) {
		if i >= len(p.timers) || !p.timers[i].due(now) {
			return
		}
		count(p.timers[i].key)
		walk(2*i + 1)
		walk(2*i + 2)
	}
	walk(0)
	for _, t := range p.blocked { // held back by rule 9: overdue by definition
		count(t.key)
	}
	return n, oldest
}

// timer is one pending deadline; the heap may hold stale entries, which
// tick skips by re-checking the state. Every key has one (its expiry at
// least), so its deadline is Unix nanoseconds (timerAt), not a time.Time:
// 16 bytes less per key.
type timer struct {
	at  int64
	key string
}

// timerAt is t in Unix nanoseconds, saturated outside the years 1678–2262
// (where UnixNano is undefined) so that the order of deadlines holds.
func timerAt(t time.Time) int64 {
	switch {
	case t.Before(minTimerTime):
		return math.MinInt64
	case t.After(maxTimerTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

var (
	minTimerTime = time.Unix(0, math.MinInt64)
	maxTimerTime = time.Unix(0, math.MaxInt64)
)

// due: the timer's deadline is at or before now.
func (t timer) due(now time.Time) bool { return t.at <= timerAt(now) }

type timerHeap []timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timer)) }
func (h *timerHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
