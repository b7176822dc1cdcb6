#!/usr/bin/env bash
# Peak memory (VmHWM) and CPU of each purchasesync process under a steady load on the
# local stack: the figures the manifests' requests and limits come from.
#
#   deploy/k8s/measure.sh [-rate 1000] [-duration 60s]
#
# Runs control, ingest, join and sink as separate processes (as on Kubernetes) on fresh
# topics and a fresh database, sends `loadgen -scenario both -xff` at -rate events/s
# (purchases with both sides, each shopper from its own address), waits for the sink to
# catch up, and prints one line per process: peak RSS and CPU seconds per 1,000 events.
# With PURCHASESYNC_KAFKA_BROKERS and PURCHASESYNC_CLICKHOUSE_ADDR set, it uses that stack.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
rate=1000 duration=60s
while [ $# -gt 0 ]; do
  case $1 in
    -rate) rate=$2; shift 2 ;;
    -duration) duration=$2; shift 2 ;;
    -h | --help) sed -n 2,11p "$0"; exit 0 ;;
    *) echo "measure.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p bin
go build -o bin/purchasesync ./cmd/purchasesync
go build -o bin/loadgen ./cmd/loadgen
# A stack whose client settings are already in the environment (e.g. one started from
# another checkout) is used as it is; otherwise the local stack is started.
if [ -z "${PURCHASESYNC_KAFKA_BROKERS:-}" ] || [ -z "${PURCHASESYNC_CLICKHOUSE_ADDR:-}" ]; then
  set -a; eval "$(bash deploy/local/stack.sh up)"; set +a
fi
export PURCHASESYNC_SHOPIFY_API_SECRET=measure-secret PURCHASESYNC_ADMIN_TOKEN=measure-admin-token
export PURCHASESYNC_LOG_FORMAT=text PURCHASESYNC_LOG_LEVEL=warn
export PURCHASESYNC_KAFKA_TOPICPREFIX="measure$$." PURCHASESYNC_CLICKHOUSE_DATABASE="measure$$"
./bin/purchasesync migrate -kafka.partitions 6 >/dev/null
declare -A pid
./bin/purchasesync control -ops.addr 127.0.0.1:18491 & pid[control]=$!
./bin/purchasesync ingest -ingest.addr 127.0.0.1:18490 -ops.addr 127.0.0.1:18492 -ingest.trustedProxies 127.0.0.1 & pid[ingest]=$!
./bin/purchasesync join -ops.addr 127.0.0.1:18493 -join.instance "measure$$" -join.group "measure$$-join" -refundroute.group "measure$$-refundroute" & pid[join]=$!
./bin/purchasesync sink -ops.addr 127.0.0.1:18494 -sink.group "measure$$-sink" & pid[sink]=$!
trap 'kill "${pid[@]}" 2>/dev/null; wait 2>/dev/null' EXIT
for port in 18491 18492 18493 18494; do
  for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.5; done
done
./bin/purchasesync sites put demo -shop demo-store.myshopify.com -order-key order_id -syncing=true -grace 5s \
  -admin.url http://127.0.0.1:18491 >/dev/null
sleep 2
cpu0=()
for p in control ingest join sink; do cpu0+=("$(awk '{print $14 + $15}' /proc/${pid[$p]}/stat)"); done
./bin/loadgen -target http://127.0.0.1:18490 -site demo -shop demo-store.myshopify.com -scenario both -xff \
  -rate "$rate" -duration "$duration" -quiet >&2 || true
sleep 15 # the grace and the sink's last flush
events=$(awk -v r="$rate" -v d="${duration%s}" 'BEGIN { print r * d }')
hz=$(getconf CLK_TCK)
i=0
for p in control ingest join sink; do
  hwm=$(awk '/VmHWM/ {print $2}' /proc/${pid[$p]}/status)
  cpu1=$(awk '{print $14 + $15}' /proc/${pid[$p]}/stat)
  awk -v p="$p" -v h="$hwm" -v c0="${cpu0[$i]}" -v c1="$cpu1" -v hz="$hz" -v e="$events" -v r="$rate" 'BEGIN {
    printf "%-8s peak RSS %4d MiB   CPU %.3f s per 1,000 events (%.2f cores at %d events/s)\n", p, h / 1024, (c1 - c0) / hz / e * 1000, (c1 - c0) / hz / (e / r), r }'
  i=$((i + 1))
done
