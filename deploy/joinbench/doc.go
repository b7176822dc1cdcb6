// Package joinbench is the join benchmark of deploy/local/bench-join.sh
// (issue 16, part 4): it fills a backlog shaped like the into
// scratch topics, runs `purchasesync join` on it as a separate process,
// times it from process start until its group has committed both inputs to
// their end offsets, reads its peak RSS from /proc and its held keys and
// heap from /metrics, optionally kills it with SIGKILL and times its
// restore, then runs the Kafka Streams peer (deploy/joinbench/kstreams) on
// the same backlog, timed the same way, and reports both side by side with
// their ratios.
//
// The records are the ingest's, byte for byte in shape: keys site/<order
// id> (sites in the default order_id mode), the headers of schemas'
// builders with received-at stamps, Shopify orders/create bodies and
// storefront events from ingest/ingesttest, the generator cmd/loadgen
// sends. Received-at stamps lie on a timeline that ends when the fill
// starts (a join that was down while the orders came in), so both peers
// read the backlog on the same event time.
//
// It is a measurement, not a test: cmd/joinbench holds its flags, and
// nothing in `go test ./...` starts it. Its unit tests cover the pure parts
// (the backlog's shape, /proc and /metrics parsing, the report's figures).
package joinbench
