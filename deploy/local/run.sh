#!/usr/bin/env bash
# The README's first command: the whole pipeline on this machine, with a demo load.
#
#   deploy/local/run.sh [--no-demo]
#
# 1. starts Kafka, ClickHouse and Prometheus (deploy/local/stack.sh up --with-prometheus);
# 2. builds bin/purchasesync and bin/loadgen;
# 3. starts `purchasesync run` (topics and ClickHouse migrations are applied at start);
# 4. registers the demo site (grace 20s, so webhook-only orders register quickly);
# 5. unless --no-demo: sends signed webhooks and storefront events for every scenario
#    (both sides, webhook only, storefront only, bad signatures), waits past the grace,
#    and prints a summary from ClickHouse;
# 6. keeps serving until Ctrl-C, then stops the pipeline (the stack stays up:
#    deploy/local/stack.sh down stops it).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin

demo=1
for a in "$@"; do
  case $a in
    --no-demo) demo=0 ;;
    -h|--help) sed -n 2,14p "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $a (try --no-demo)" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

say "starting Kafka, ClickHouse and Prometheus"
env_lines=$(bash deploy/local/stack.sh up --with-prometheus)
set -a; eval "$env_lines"; set +a

say "building"
mkdir -p bin
go build -o bin/purchasesync ./cmd/purchasesync
go build -o bin/loadgen ./cmd/loadgen

# Local defaults; production sets these from a secret store.
export PURCHASESYNC_SHOPIFY_API_SECRET=${PURCHASESYNC_SHOPIFY_API_SECRET:-local-demo-secret}
export PURCHASESYNC_ADMIN_TOKEN=${PURCHASESYNC_ADMIN_TOKEN:-local-admin-token}
export PURCHASESYNC_LOG_FORMAT=${PURCHASESYNC_LOG_FORMAT:-json}
# The demo load stands for many shoppers behind one proxy (loopback): trust its
# X-Forwarded-For so per-shopper rate limits see many addresses.
export PURCHASESYNC_INGEST_TRUSTEDPROXIES=${PURCHASESYNC_INGEST_TRUSTEDPROXIES:-127.0.0.1}
DB=${PURCHASESYNC_CLICKHOUSE_DATABASE:-purchasesync}
INGEST=${PURCHASESYNC_INGEST_ADDR:-127.0.0.1:8080}
OPS=${PURCHASESYNC_OPS_ADDR:-127.0.0.1:9464}
LOG=${PURCHASESYNC_STACK_DIR:-deploy/local/.state}/purchasesync.log
mkdir -p "$(dirname "$LOG")"

say "starting purchasesync run (log: $LOG)"
# Its own session: Ctrl-C reaches only this script, whose trap sends one
# SIGTERM, so the pipeline drains (a second signal would make it exit at once).
setsid ./bin/purchasesync run >"$LOG" 2>&1 &
pid=$!
stop() { kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; say "pipeline stopped (stack still up: deploy/local/stack.sh down)"; }
trap stop EXIT
trap 'exit 130' INT TERM
for _ in $(seq 1 120); do
  if curl -sf "http://$OPS/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then echo "run.sh: purchasesync exited; last log lines:" >&2; tail -20 "$LOG" >&2; exit 1; fi
  sleep 0.5
done
curl -sf "http://$OPS/readyz" >/dev/null || { echo "run.sh: pipeline not ready after 60s; see $LOG" >&2; exit 1; }

say "registering demo site (demo-store.myshopify.com, grace 20s)"
./bin/purchasesync sites put demo -shop demo-store.myshopify.com -order-key order_id -syncing=true -grace 20s \
  -admin.url "http://$OPS" >/dev/null

if [ "$demo" = 1 ]; then
  say "demo load: signed webhooks and storefront events"
  lg() { ./bin/loadgen -target "http://$INGEST" -site demo -shop demo-store.myshopify.com -xff -quiet "$@"; }
  lg -scenario both       -requests 300 -seed 11 -pool 150 -concurrency 8 -mismatch 0.1 # storefront event then webhook; 1 in 10 disagree
  lg -scenario webhook    -requests 60  -seed 22 -pool 60  -concurrency 4   # the browser missed these
  lg -scenario storefront -requests 40  -seed 33 -pool 40  -concurrency 4   # no webhook (yet)
  lg -scenario badsig     -requests 10  -seed 44 -concurrency 2             # rejected with 401
  say "waiting for the grace (20s) to release webhook-only purchases"
  sleep 25
  say "purchases in ClickHouse by registered_via"
  q() { curl -sf "$PURCHASESYNC_CLICKHOUSE_HTTP/" --data-binary "$1"; }
  q "SELECT registered_via, count() AS purchases, sum(matched) AS matched FROM $DB.purchases FINAL GROUP BY registered_via ORDER BY registered_via FORMAT PrettyCompactMonoBlock"
  say "discrepancies by field"
  q "SELECT kind, field, count() AS n FROM $DB.discrepancies FINAL GROUP BY kind, field ORDER BY n DESC FORMAT PrettyCompactMonoBlock"
fi

cat >&2 <<MSG

  ingest      http://$INGEST   (POST /webhooks/shopify, POST /v1/sites/{site}/purchases)
  ops         http://$OPS/metrics   admin API http://$OPS/admin/v1/sites (token: \$PURCHASESYNC_ADMIN_TOKEN)
  clickhouse  $PURCHASESYNC_CLICKHOUSE_HTTP  (native $PURCHASESYNC_CLICKHOUSE_ADDR, database $DB)
  prometheus  ${PURCHASESYNC_PROMETHEUS_URL:-not started}   (alerts: deploy/prometheus/alerts.yml)
  dashboard   deploy/grafana/purchasesync.json  (import into Grafana; see README "Dashboards and alerts")

serving until Ctrl-C
MSG
wait "$pid"
