#!/usr/bin/env bash
# The chaos run: the pipeline split into its processes (control, ingest x2, join x2, sink x2)
# on three SASL_SSL brokers and two ClickHouse replicas over TLS, while `loadgen ledger` sends
# orders of every scenario. During the send it kills -9 and restarts each kind of process, kills a
# broker and a ClickHouse replica and starts them again, and forces join rebalances (a third join
# joins the group, then leaves it); the ledger check makes Shopify deliver every webhook up to
# three times. At the end it prints the timeline of the faults and the ledger report.
#
#   deploy/local/chaos.sh [--orders N] [--rate R] [--gap SECONDS]
#
#   --orders N    orders the ledger check sends (default 3000)
#   --rate R      orders per second (default 15; the faults go on until every order is sent,
#                 so orders/rate is the length of the fault window)
#   --gap S       seconds between one fault's recovery and the next fault (default 5)
#
# Exits non-zero when the ledger has any error, when a process exits by itself (a transient
# outage must never end one), when a process does not become ready again within 120 s of a
# fault, or when the window closed before every fault kind ran once. Logs and the timeline
# are kept under deploy/local/.state/chaos/<run>/. The stack stays up afterwards
# (deploy/local/stack.sh down stops it).
# The whole script is one brace group, read before any of it runs: editing the file while a
# run goes on (it can take half an hour) must not change what that run executes.
{
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin

ORDERS=3000 RATE=15 GAP=5
while [ $# -gt 0 ]; do
  case $1 in
    --orders) ORDERS=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --gap) GAP=$2; shift 2 ;;
    -h|--help) sed -n 2,20p "$0"; exit 0 ;;
    *) echo "chaos.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
for v in ORDERS GAP; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "chaos.sh: --${v,,} takes a whole number, not ${!v}" >&2; exit 2; }
done

KAFKA_PROFILE=(--kafka-brokers 3 --kafka-security sasl_ssl)
CH_PROFILE=(--clickhouse-replicas 2 --clickhouse-tls)
RUN=chaos$(date +%s)
DIR=${PURCHASESYNC_STACK_DIR:-deploy/local/.state}/chaos/$RUN
mkdir -p "$DIR"
TIMELINE=$DIR/timeline.txt
errors=0
# Microseconds since the epoch, and seconds (one decimal) since $1 of those.
now_us() { echo "${EPOCHREALTIME/./}"; }
since() { local d=$(($(now_us) - $1)); printf '%d.%d' $((d / 1000000)) $((d % 1000000 / 100000)); }
T0=$(now_us)

# One timeline line: seconds since the start, then the event.
say() {
  local line
  line=$(printf '%7ss  %s' "$(since "$T0")" "$*")
  echo "$line" >>"$TIMELINE"
  echo "chaos: $line" >&2
}
fail() { errors=$((errors + 1)); say "ERROR: $*"; }

say "starting three SASL_SSL brokers and two TLS ClickHouse replicas"
lines=$(bash deploy/local/stack.sh up "${KAFKA_PROFILE[@]}" "${CH_PROFILE[@]}" | grep -E '^PURCHASESYNC_(KAFKA|CLICKHOUSE)_')
# Nothing of the caller's shell may mix other profiles' settings in.
for v in $(compgen -v PURCHASESYNC_KAFKA_) $(compgen -v PURCHASESYNC_CLICKHOUSE_); do unset "$v"; done
set -a; eval "$lines"; set +a

say "building"
go build -o "$DIR/purchasesync" ./cmd/purchasesync
go build -o "$DIR/loadgen" ./cmd/loadgen
BIN=$DIR/purchasesync

export PURCHASESYNC_SHOPIFY_API_SECRET=chaos-secret-$RUN
export PURCHASESYNC_ADMIN_TOKEN=chaos-admin-token-$RUN
export PURCHASESYNC_KAFKA_TOPICPREFIX=$RUN.
export PURCHASESYNC_CLICKHOUSE_DATABASE=$RUN
export PURCHASESYNC_LOG_FORMAT=json PURCHASESYNC_LOG_LEVEL=info
export PURCHASESYNC_JOIN_GROUP=$RUN-join PURCHASESYNC_SINK_GROUP=$RUN-sink PURCHASESYNC_REFUNDROUTE_GROUP=$RUN-refundroute
export PURCHASESYNC_JOIN_WEBHOOKWAIT=20s
# The ledger sends each shopper from its own 127.x.y.z address; no proxy in front.
export PURCHASESYNC_INGEST_TRUSTEDPROXIES=

say "migrate (6 partitions, replicated tables ON CLUSTER)"
"$BIN" migrate -kafka.partitions 6 >"$DIR/migrate.log" 2>&1 || { cat "$DIR/migrate.log" >&2; exit 1; }

declare -A PID OPS ARGS
# The processes and their ops listeners; ingests also serve the public port.
OPS=([control]=127.0.0.1:19471 [ingest1]=127.0.0.1:19472 [ingest2]=127.0.0.1:19473
  [join1]=127.0.0.1:19474 [join2]=127.0.0.1:19475 [join3]=127.0.0.1:19476
  [sink1]=127.0.0.1:19477 [sink2]=127.0.0.1:19478)
ARGS=([control]="control" [ingest1]="ingest -ingest.addr 127.0.0.1:18481" [ingest2]="ingest -ingest.addr 127.0.0.1:18482"
  [join1]="join -join.instance $RUN-1" [join2]="join -join.instance $RUN-2" [join3]="join -join.instance $RUN-3"
  [sink1]="sink" [sink2]="sink")
RUNNING=(control ingest1 ingest2 join1 join2 sink1 sink2)

start() {
  local name=$1
  # shellcheck disable=SC2086 # ARGS holds a subcommand and its flags
  "$BIN" ${ARGS[$name]} -ops.addr "${OPS[$name]}" >>"$DIR/$name.log" 2>&1 &
  PID[$name]=$!
}
ready() { curl -sf -o /dev/null --max-time 2 "http://${OPS[$1]}/readyz"; }
# wait_ready NAME...: until each is ready; a process that is not within 120 s is an error.
wait_ready() {
  local name t
  for name in "$@"; do
    t=$(date +%s)
    until ready "$name"; do
      if [ $(($(date +%s) - t)) -ge 120 ]; then fail "$name not ready 120 s after the fault"; break; fi
      sleep 0.5
    done
  done
}
# A process that ended without being told to is an error; it is started again, as a
# supervisor would.
check_alive() {
  local name status
  for name in "${RUNNING[@]}"; do
    if ! kill -0 "${PID[$name]}" 2>/dev/null; then
      status=0; wait "${PID[$name]}" || status=$?
      fail "$name exited by itself (status $status); last log line: $(tail -1 "$DIR/$name.log" | cut -c1-300)"
      start "$name"
    fi
  done
}
not_running() { local n keep=(); for n in "${RUNNING[@]}"; do [ "$n" = "$1" ] || keep+=("$n"); done; RUNNING=("${keep[@]}"); }
# sleep_watching S: sleeps S seconds, checking every second that nothing exited by itself.
sleep_watching() { local i; for ((i = 0; i < $1; i++)); do check_alive; sleep 1; done; }

# stop NAME: SIGTERM, and 30 s to drain; a process that needs more is killed, an error.
stop() {
  local name=$1 i status=0
  kill -TERM "${PID[$name]}" 2>/dev/null || true
  for ((i = 0; i < 60; i++)); do kill -0 "${PID[$name]}" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "${PID[$name]}" 2>/dev/null; then
    fail "$name still running 30 s after SIGTERM; killed"
    kill -9 "${PID[$name]}" 2>/dev/null || true
  fi
  wait "${PID[$name]}" 2>/dev/null || status=$?
  [ "$status" = 0 ] || fail "$name ended with status $status on SIGTERM"
  unset "PID[$name]"
}

# The timeline and the ledger report are printed however the run ends.
finish() {
  local rc=$? name
  for name in "${!PID[@]}"; do kill -9 "${PID[$name]}" 2>/dev/null || true; done
  [ -n "${ledger_pid:-}" ] && kill "$ledger_pid" 2>/dev/null || true
  echo
  echo "== timeline ($TIMELINE)"
  cat "$TIMELINE"
  echo
  echo "== ledger report"
  cat "$DIR/ledger.txt" 2>/dev/null || echo "(none: the check did not get that far; see $DIR/ledger-progress.txt)"
  echo
  if [ "$rc" != 0 ] || [ "$errors" -gt 0 ]; then
    echo "chaos: FAILED, $errors errors (exit status $rc; logs under $DIR)"
    exit 1
  fi
  echo "chaos: OK in $(since "$T0") s ($ORDERS orders; logs under $DIR)"
}
trap finish EXIT

for name in "${RUNNING[@]}"; do start "$name"; done
wait_ready "${RUNNING[@]}"
say "pipeline ready: ${RUNNING[*]}"

say "ledger check: $ORDERS orders at $RATE/s, webhooks delivered up to 3 times, to both ingests"
SENT=$DIR/sent
"$DIR/loadgen" ledger -target http://127.0.0.1:18481,http://127.0.0.1:18482 -admin.url "http://${OPS[control]}" \
  -orders "$ORDERS" -rate "$RATE" -redeliver 3 -webhookWait 20s -runID "${RUN#chaos}" -sentFile "$SENT" \
  -waitFor "$DIR/faults-over" -retryFor 15m -settle 10m \
  -kafka.brokers "$PURCHASESYNC_KAFKA_BROKERS" -kafka.topicPrefix "$RUN." \
  >"$DIR/ledger.txt" 2>"$DIR/ledger-progress.txt" &
ledger_pid=$!

# kill9 NAME: SIGKILL, 3 s down, started again.
kill9() {
  local name=$1
  say "kill -9 $name (pid ${PID[$name]})"
  not_running "$name"
  kill -9 "${PID[$name]}" 2>/dev/null || true
  wait "${PID[$name]}" 2>/dev/null || true
  sleep_watching 3
  start "$name"; RUNNING+=("$name")
  local t; t=$(now_us)
  wait_ready "$name"
  say "$name started again, ready after $(since "$t") s"
}
# server WHAT SERVICE PROFILE...: kill -9 node 2 of a stack.sh service, 15 s down, started again
# (stack.sh start-* waits until it is ready).
server() {
  local what=$1 service=$2 t
  shift 2
  say "kill -9 $what"
  bash deploy/local/stack.sh "stop-$service" --node 2 --kill "$@" >>"$DIR/stack.log" 2>&1 || fail "stack.sh stop-$service failed"
  sleep_watching 15
  t=$(now_us)
  bash deploy/local/stack.sh "start-$service" --node 2 "$@" >>"$DIR/stack.log" 2>&1 || fail "$what did not start again"
  say "$what started again, ready after $(since "$t") s"
}
broker() { server "Kafka broker 2 of 3" kafka "${KAFKA_PROFILE[@]}"; }
replica() { server "ClickHouse replica 2 of 2" clickhouse "${CH_PROFILE[@]}"; }
rebalance() {
  say "rebalance: join3 joins the group"
  start join3; RUNNING+=(join3)
  wait_ready join3
  sleep_watching 10
  # A static member (-join.instance) does not leave on SIGTERM: its partitions move back
  # when its session times out (the join's 15 s), which the next 20 s cover.
  say "rebalance: join3 stops (SIGTERM); its partitions move back when its 15 s session expires"
  not_running join3
  stop join3
  sleep_watching 20
}

FAULTS=(kill9:ingest1 kill9:join1 broker kill9:sink1 rebalance kill9:control replica kill9:ingest2 kill9:join2 kill9:sink2)
KINDS=(ingest join sink control broker replica rebalance)
declare -A DONE
i=0
while [ ! -e "$SENT" ] && kill -0 "$ledger_pid" 2>/dev/null; do
  sleep_watching "$GAP"
  [ -e "$SENT" ] && break
  fault=${FAULTS[$((i % ${#FAULTS[@]}))]}
  i=$((i + 1))
  case $fault in
    kill9:*) kill9 "${fault#kill9:}"; kind=${fault#kill9:}; DONE[${kind%[0-9]}]=1 ;;
    *) "$fault"; DONE[$fault]=1 ;;
  esac
  wait_ready "${RUNNING[@]}"
done
if [ -e "$SENT" ]; then say "every order sent; no more faults"; else fail "the ledger check ended before every order was sent"; fi
for kind in "${KINDS[@]}"; do
  [ -n "${DONE[$kind]:-}" ] || fail "no $kind fault ran before the last order was sent (more --orders or a lower --rate)"
done
wait_ready "${RUNNING[@]}"
touch "$DIR/faults-over"
say "faults over, every process ready: the ledger check judges from now on"

while kill -0 "$ledger_pid" 2>/dev/null; do sleep_watching 2; done
ledger_status=0; wait "$ledger_pid" || ledger_status=$?
check_alive
say "ledger check ended (status $ledger_status)"
[ "$ledger_status" = 0 ] || fail "the ledger check failed"

# A graceful stop must work after all that.
for name in "${RUNNING[@]}"; do stop "$name"; done
say "pipeline stopped"
exit
}
