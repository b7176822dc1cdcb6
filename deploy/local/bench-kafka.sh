#!/usr/bin/env bash
# Ingest produce throughput on each local Kafka profile, measured back to back in one run, so
# the figures compare on this (shared, noisy) machine:
#
#   deploy/local/bench-kafka.sh [-duration 15s] [-concurrency 128] [-runs 1]
#
# For the single plaintext broker (the default profile) and the three-broker SASL_SSL cluster
# (`stack.sh up --kafka-brokers 3 --kafka-security sasl_ssl`: TLS, SCRAM-SHA-512, RF 3, min ISR 2)
# in turn: create the topics under a fresh prefix (`purchasesync migrate`), start `control`
# (for the admin API) and `ingest`, register a site, and send signed orders/create webhooks flat
# out with bin/loadgen (acks=all: each 200 means Kafka holds the webhook). It prints loadgen's
# summary per profile, then one line with both rates and their ratio. Starts the profiles that
# are not running (and leaves them running).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin

duration=15s concurrency=128 runs=1
while [ $# -gt 0 ]; do
  case $1 in
    -duration) duration=$2; shift 2 ;;
    -concurrency) concurrency=$2; shift 2 ;;
    -runs) runs=$2; shift 2 ;;
    -h | --help) sed -n 2,13p "$0"; exit 0 ;;
    *) echo "bench-kafka.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

mkdir -p bin
go build -o bin/purchasesync ./cmd/purchasesync
go build -o bin/loadgen ./cmd/loadgen

export PURCHASESYNC_SHOPIFY_API_SECRET=bench-secret PURCHASESYNC_ADMIN_TOKEN=bench-admin-token
export PURCHASESYNC_LOG_FORMAT=text PURCHASESYNC_LOG_LEVEL=warn
CH_LINES=$(bash deploy/local/stack.sh up)

# bench NAME STACK_OPTIONS...: prints loadgen's output; the last line is "rate p99".
bench() {
  local name=$1 lines pids=() prefix ingest=127.0.0.1:18480 ops=127.0.0.1:18481 cops=127.0.0.1:18482 out
  shift
  lines=$(bash deploy/local/stack.sh up "$@")
  (
    set -a; eval "$CH_LINES"; eval "$lines"; set +a
    prefix="bench$$-$name-$RANDOM."
    ./bin/purchasesync migrate -kafka.topicPrefix "$prefix" -kafka.partitions 6 \
      -clickhouse.database "bench$$" >/dev/null
    ./bin/purchasesync control -kafka.topicPrefix "$prefix" -ops.addr "$cops" -clickhouse.database "bench$$" &
    pids+=($!)
    ./bin/purchasesync ingest -kafka.topicPrefix "$prefix" -ingest.addr "$ingest" -ops.addr "$ops" &
    pids+=($!)
    trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null' EXIT
    for _ in $(seq 1 120); do
      curl -sf "http://$ops/readyz" >/dev/null 2>&1 && curl -sf "http://$cops/readyz" >/dev/null 2>&1 && break
      sleep 0.5
    done
    ./bin/purchasesync sites put bench -shop bench-store.myshopify.com -order-key order_id -syncing=true \
      -admin.url "http://$cops" >/dev/null
    sleep 2 # the ingest follows sites.v1
    out=$(./bin/loadgen -target "http://$ingest" -site bench -shop bench-store.myshopify.com -scenario webhook \
      -concurrency "$concurrency" -duration "$duration")
    echo "$out" >&2
    # loadgen's table: target kind requests req/s p50 p99 max codes errors
    echo "$out" | awk '$1 == "ingest" && $2 == "webhook" { r = $4; p = $6 } END { print r, p }'
  )
}

for run in $(seq 1 "$runs"); do
  echo "== run $run: single plaintext broker" >&2
  read -r single single_p99 < <(bench single | tail -1)
  echo "== run $run: three-broker SASL_SSL cluster" >&2
  read -r cluster cluster_p99 < <(bench cluster --kafka-brokers 3 --kafka-security sasl_ssl | tail -1)
  awk -v s="$single" -v c="$cluster" -v sp="$single_p99" -v cp="$cluster_p99" -v run="$run" 'BEGIN {
    printf "run %d: single plaintext broker %s webhooks/s (p99 %s), three-broker SASL_SSL %s webhooks/s (p99 %s): ratio %.2f\n", run, s, sp, c, cp, (s > 0 ? c / s : 0) }'
done
