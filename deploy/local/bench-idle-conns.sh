#!/usr/bin/env bash
# What idle connections cost the ingest, in RSS, measured in one run on this machine:
#
#   deploy/local/bench-idle-conns.sh [-conns 1000] [-announce 983040] [-compare REV]
#
# For each binary (this tree's, and with -compare also REV's, e.g. a commit before the fix), two
# fresh `purchasesync ingest` processes in turn: one gets -conns idle keep-alive connections (a
# GET /healthz answered, then nothing: the baseline), the other -conns connections that each
# announce -announce body bytes (960 KiB, the webhook limit) on the webhook, storefront, health
# and an unknown path and send none (the security review's H2). `loadgen -scenario idle` samples
# the ingest's RSS for 3 s and prints the peak growth. Kafka is only needed for the ingest to
# start (the stack's, read with `stack.sh env`; nothing is produced, and the topic prefix is
# fresh); no port is fixed.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin

conns=1000 announce=983040 compare=
while [ $# -gt 0 ]; do
  case $1 in
    -conns) conns=$2; shift 2 ;;
    -announce) announce=$2; shift 2 ;;
    -compare) compare=$2; shift 2 ;;
    -h | --help) sed -n 2,13p "$0"; exit 0 ;;
    *) echo "bench-idle-conns.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/loadgen" ./cmd/loadgen
go build -o "$tmp/purchasesync-tree" ./cmd/purchasesync
bins=(tree)
if [ -n "$compare" ]; then
  mkdir "$tmp/src"
  git archive "$compare" | tar -x -C "$tmp/src"
  (cd "$tmp/src" && go build -o "$tmp/purchasesync-$compare" ./cmd/purchasesync)
  bins+=("$compare")
fi

set -a
[ -n "${PURCHASESYNC_KAFKA_BROKERS:-}" ] || eval "$(bash deploy/local/stack.sh env | grep "^PURCHASESYNC_KAFKA_BROKERS=")"
PURCHASESYNC_SHOPIFY_API_SECRET=bench-secret PURCHASESYNC_LOG_FORMAT=text PURCHASESYNC_LOG_LEVEL=error
set +a

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# measure BIN ANNOUNCE: one fresh ingest, one loadgen run; prints loadgen's line.
measure() {
  local bin=$1 n=$2 addr ops pid
  addr=127.0.0.1:$(free_port) ops=127.0.0.1:$(free_port)
  "$tmp/purchasesync-$bin" ingest -kafka.topicPrefix "idlebench$$.$RANDOM." -ingest.addr "$addr" \
    -ops.addr "$ops" -ingest.maxConnsPerIP $((conns + 10)) -ingest.readTimeout 10s &
  pid=$!
  for _ in $(seq 1 100); do
    curl -sf "http://$addr/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  sleep 1 # let the start-up settle before the "before" sample
  "$tmp/loadgen" -scenario idle -target "http://$addr" -concurrency "$conns" -idle.announce "$n" \
    -idle.pid "$pid" -idle.hold 3s
  kill "$pid"
  wait "$pid" 2>/dev/null || true
}

for b in "${bins[@]}"; do
  echo "==> $b: baseline, $conns idle keep-alive connections"
  measure "$b" 0
  echo "==> $b: $conns connections announcing $announce bytes"
  measure "$b" "$announce"
done
