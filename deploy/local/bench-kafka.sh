#!/usr/bin/env bash
# Ingest produce throughput on each local Kafka profile, measured back to back in one run, so
# the figures compare on this (shared, noisy) machine:
#
#   deploy/local/bench-kafka.sh [-duration 15s] [-concurrency 128] [-runs 1] [-breakdown]
#
# For the single plaintext broker (the default profile) and the three-broker SASL_SSL cluster
# (`stack.sh up --kafka-brokers 3 --kafka-security sasl_ssl`: TLS, SCRAM-SHA-512, RF 3, min ISR 2)
# in turn: create the topics under a fresh prefix (`purchasesync migrate`), start `control`
# (for the admin API) and `ingest`, register a site, and send signed orders/create webhooks flat
# out with bin/loadgen (acks=all: each 200 means Kafka holds the webhook). It prints loadgen's
# summary per profile, then one line with both rates and their ratio. Starts the profiles that
# are not running (and leaves them running). -breakdown also measures the three-broker plaintext
# and the single-broker SASL_SSL profiles, to tell replication's cost from TLS+SASL's.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin

duration=15s concurrency=128 runs=1 breakdown=0
while [ $# -gt 0 ]; do
  case $1 in
    -duration) duration=$2; shift 2 ;;
    -concurrency) concurrency=$2; shift 2 ;;
    -runs) runs=$2; shift 2 ;;
    -breakdown) breakdown=1; shift ;;
    -h | --help) sed -n 2,15p "$0"; exit 0 ;;
    *) echo "bench-kafka.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

mkdir -p bin
go build -o bin/purchasesync ./cmd/purchasesync
go build -o bin/loadgen ./cmd/loadgen

export PURCHASESYNC_SHOPIFY_API_SECRET=bench-secret PURCHASESYNC_ADMIN_TOKEN=bench-admin-token
export PURCHASESYNC_LOG_FORMAT=text PURCHASESYNC_LOG_LEVEL=warn
CH_LINES=$(bash deploy/local/stack.sh up)

# bench NAME STACK_OPTIONS...: prints loadgen's output; the last line is "rate p99 floor-rate".
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
    # -floor: the same load against a server that only produces each body
    # (acks=all, the replication the cluster gives the ingest's topics): the
    # peer that says how much of a profile's cost is Kafka's own.
    out=$(./bin/loadgen -target "http://$ingest" -site bench -shop bench-store.myshopify.com -scenario webhook \
      -floor -concurrency "$concurrency" -duration "$duration")
    echo "$out" >&2
    # loadgen's table: target kind requests req/s p50 p99 max codes errors
    echo "$out" | awk '$2 == "webhook" && $1 == "ingest" { r = $4; p = $6 } $2 == "webhook" && $1 == "floor" { f = $4 } END { print r, p, f }'
  )
}

line() { # NAME RATE P99 FLOOR SINGLE
  awk -v n="$1" -v r="$2" -v p="$3" -v f="$4" -v s="$5" 'BEGIN {
    printf "  %-30s ingest %6s webhooks/s (p99 %s, %.2f of the single broker), produce-only floor %6s/s (ingest/floor %.2f)\n", n, r, p, (s > 0 ? r / s : 0), f, (f > 0 ? r / f : 0) }'
}
for run in $(seq 1 "$runs"); do
  echo "== run $run: single plaintext broker" >&2
  read -r single single_p99 single_floor < <(bench single | tail -1)
  echo "== run $run: three-broker SASL_SSL cluster" >&2
  read -r cluster cluster_p99 cluster_floor < <(bench cluster --kafka-brokers 3 --kafka-security sasl_ssl | tail -1)
  echo "run $run:"
  line "single plaintext broker" "$single" "$single_p99" "$single_floor" "$single"
  line "three-broker SASL_SSL (RF 3)" "$cluster" "$cluster_p99" "$cluster_floor" "$single"
  if [ "$breakdown" = 1 ]; then
    echo "== run $run: three-broker plaintext cluster" >&2
    read -r p3 p3_p99 p3_floor < <(bench plaintext3 --kafka-brokers 3 | tail -1)
    echo "== run $run: single SASL_SSL broker" >&2
    read -r s1 s1_p99 s1_floor < <(bench sasl1 --kafka-security sasl_ssl | tail -1)
    line "three-broker plaintext (RF 3)" "$p3" "$p3_p99" "$p3_floor" "$single"
    line "single SASL_SSL broker" "$s1" "$s1_p99" "$s1_floor" "$single"
  fi
done
