// Package registrar forwards registered purchases to a Talkable-compatible
// purchase registry: POST {URL}/api/v2/origins with type "Purchase", a bearer
// API key and Talkable's origin fields (research §5.3). It is optional and off
// unless -registrar.url is set.
//
// It consumes purchases.v1 (read_committed) as its own consumer group and
// forwards each purchase once: only the first version of a purchase (version
// 1; later versions are matches and refunds of the same purchase) from the
// configured registration paths, and not test orders unless asked. A later
// version whose refund total or time is new marks the purchase refunded:
// POST {URL}/api/v2/origins/<order_number>/refund with data.refunded_at,
// sent after the poll's registrations so that it never precedes its
// purchase. It
// remembers the keys it forwarded, and commits offsets right after each poll's
// requests finished, so a crash repeats at most the requests in flight; the
// registry treats a repeated order number as the same purchase (Talkable
// matches it to the existing origin), and an answer saying the origin exists
// counts as success here.
//
// Requests that fail with 429, 5xx or a network error are retried with capped
// exponential backoff, honouring Retry-After, up to MaxAttempts; then the
// record goes to the dead-letter topic (header reason). Other 4xx answers
// (the registry refused the purchase) go there at once. 401 and 403 mean the
// API key is wrong: the registrar holds and retries until it is fixed rather
// than dead-letter every purchase.
//
// Kafka faults (a broker restart, a lost connection or group session, a
// failed commit or dead-letter produce) never end Run. Dead letters are
// retried until Kafka takes them, before the poll's offsets are committed; a
// failed commit is retried after a backoff (and carried by the next commit)
// rather than forgotten, and dropped only for partitions this member lost.
// Ready is nil while the registrar consumes normally, and says why not
// before it first joined its group and during a Kafka outage episode, which
// is logged once when it starts and once when it ends.
//
// Metrics (prefix purchasesync_registrar_): requests_total{outcome},
// request_duration_seconds, forwarded_total, refunds_forwarded_total,
// skipped_total{reason},
// dead_letters_total{reason}, retries_total, ready, outages_total{dependency}.
package registrar
