#!/usr/bin/env bash
# Local service stack for purchasesync: Apache Kafka (KRaft, single node), ClickHouse and,
# optionally, Prometheus — all as plain background processes bound to 127.0.0.1. No Docker,
# no systemd: the same script works on a developer's machine and in CI (DESIGN.md §8).
#
# Usage:
#   stack.sh up [--with-prometheus]   install what is missing, start everything, wait until ready,
#                                     then print PURCHASESYNC_*=value lines on stdout
#   stack.sh down [--purge]           stop everything we started (--purge also deletes the state dir)
#   stack.sh status                   one line per service; always exits 0
#   stack.sh env                      print the PURCHASESYNC_*=value lines, start nothing
#   stack.sh start-kafka | stop-kafka [--kill]            (for outage tests; start-* waits for readiness)
#   stack.sh start-clickhouse | stop-clickhouse [--kill]
#   stack.sh start-prometheus | stop-prometheus [--kill]
#
# Typical use:  set -a; eval "$(deploy/local/stack.sh up)"; set +a
# Only the PURCHASESYNC_* lines go to stdout; every progress or error message goes to stderr.
#
# Environment (all optional):
#   PURCHASESYNC_KAFKA_PORT=19092              broker listener
#   PURCHASESYNC_KAFKA_CONTROLLER_PORT=19093   KRaft controller listener
#   PURCHASESYNC_CLICKHOUSE_PORT=19000         ClickHouse native protocol
#   PURCHASESYNC_CLICKHOUSE_HTTP_PORT=18123    ClickHouse HTTP
#   PURCHASESYNC_CLICKHOUSE_INTERSERVER_PORT=19009
#   PURCHASESYNC_PROMETHEUS_PORT=19090
#   PURCHASESYNC_STACK_PROMETHEUS=1            same as `up --with-prometheus`
#   PURCHASESYNC_STACK_DIR=deploy/local/.state data, logs, generated configs and pid files
#   PURCHASESYNC_KAFKA_JVM_OPTS                extra JVM flags for the broker
#   JAVA_HOME                                  which JDK to use (else `java` on PATH); needs 17+
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

KAFKA_PORT=${PURCHASESYNC_KAFKA_PORT:-19092}
KAFKA_CONTROLLER_PORT=${PURCHASESYNC_KAFKA_CONTROLLER_PORT:-19093}
CH_TCP_PORT=${PURCHASESYNC_CLICKHOUSE_PORT:-19000}
CH_HTTP_PORT=${PURCHASESYNC_CLICKHOUSE_HTTP_PORT:-18123}
CH_INTERSERVER_PORT=${PURCHASESYNC_CLICKHOUSE_INTERSERVER_PORT:-19009}
PROM_PORT=${PURCHASESYNC_PROMETHEUS_PORT:-19090}

# Absolute paths: they end up in the services' command lines, which is how we recognise our own
# processes later (see is_ours), and the services are started from another working directory.
STATE_DIR=$(realpath -m "${PURCHASESYNC_STACK_DIR:-$SCRIPT_DIR/.state}")
CACHE_DIR=$SCRIPT_DIR/.cache
KAFKA_LIBS=$CACHE_DIR/kafka-libs
KAFKA_POM=$SCRIPT_DIR/kafka/pom.xml
RUN_DIR=$STATE_DIR/run   # pid files

KAFKA_DIR=$STATE_DIR/kafka
CH_DIR=$STATE_DIR/clickhouse
PROM_DIR=$STATE_DIR/prometheus

KAFKA_READY_TIMEOUT=120
CH_READY_TIMEOUT=60
PROM_READY_TIMEOUT=60
STOP_TIMEOUT=30

# fd 3 keeps the caller's stdout for the PURCHASESYNC_* lines; everything else goes to stderr so that
# `eval "$(stack.sh up)"` only ever sees assignments. Background services must not inherit fd 3 (nor
# the lock fds 8 and 9): a command substitution waits for EOF on its pipe, i.e. for every holder of
# it to exit, and a lock would stay held for as long as the service runs.
exec 3>&1 1>&2

log() { printf 'stack: %s\n' "$*" >&2; }
die() { printf 'stack: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------

# alive PID: the process exists and is not a zombie (a service that died during `up` is still our
# child, so it stays a zombie until this script exits and kill -0 would still succeed).
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }          # the state letter follows the parenthesised command name
  [[ ${stat:0:1} != Z ]]
}

# (The braces catch the shell's own error when the process vanished between the glob and the read.)
cmdline() { { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null; }

# Each service's command line names its own directory under the state dir (config or data path),
# which tells our processes apart from another stack's or a system service — and from a recycled pid.
svc_marker() {
  case $1 in
    kafka) echo "kafka.Kafka $KAFKA_DIR/" ;;
    clickhouse) echo "--config-file=$CH_DIR/" ;;
    prometheus) echo "--storage.tsdb.path=$PROM_DIR/" ;;
  esac
}

is_ours() { # is_ours SERVICE PID
  local cmd marker
  marker=$(svc_marker "$1")
  cmd=$(cmdline "$2") || return 1
  [[ $cmd == *"$marker"* ]]
}

# Prints the pids of our live processes for SERVICE: the one in its pid file, plus any stray one
# whose pid file was lost (found by scanning /proc for the service's marker).
svc_pids() {
  local svc=$1 pid p found=()
  if [[ -f $RUN_DIR/$svc.pid ]]; then
    pid=$(<"$RUN_DIR/$svc.pid")
    if [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" && is_ours "$svc" "$pid"; then found+=("$pid"); fi
  fi
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [[ $p == "$$" || $p == "${found[0]:-}" ]] && continue
    if is_ours "$svc" "$p" && alive "$p"; then found+=("$p"); fi
  done
  [[ ${#found[@]} -gt 0 ]] && printf '%s\n' "${found[@]}"
  return 0
}

svc_pid() { # first live pid of SERVICE, or fail
  local pids
  pids=$(svc_pids "$1")
  [[ -n $pids ]] || return 1
  echo "${pids%%$'\n'*}"
}

# launch SERVICE WORKDIR LOGFILE CMD...: start detached and record the pid.
# setsid: own session, so a Ctrl-C in the caller's terminal does not reach the services; nohup for
# good measure. In a non-interactive script a background job is not a process-group leader, so
# setsid does not fork and $! is the service's own pid.
launch() {
  local svc=$1 workdir=$2 logfile=$3 pid
  shift 3
  mkdir -p "$RUN_DIR"
  (cd "$workdir" && exec setsid nohup "$@" </dev/null >>"$logfile" 2>&1 3>&- 8>&- 9>&-) &
  pid=$!
  echo "$pid" >"$RUN_DIR/$svc.pid"
  echo "$pid"
}

# terminate PID...: SIGTERM (clean shutdown), wait up to STOP_TIMEOUT s, then SIGKILL.
terminate() {
  local pid deadline left
  [[ $# -gt 0 ]] || return 0
  kill -TERM "$@" 2>/dev/null || true
  deadline=$((SECONDS + STOP_TIMEOUT))
  while :; do
    left=()
    for pid in "$@"; do alive "$pid" && left+=("$pid"); done
    [[ ${#left[@]} -eq 0 ]] && return 0
    if ((SECONDS >= deadline)); then
      log "still running after ${STOP_TIMEOUT}s, sending SIGKILL to ${left[*]}"
      kill -KILL "${left[@]}" 2>/dev/null || true
      sleep 1
      return 0
    fi
    sleep 0.3
  done
}

stop_svc() { # stop_svc SERVICE [--kill]
  local svc=$1 mode=${2:-} pids
  mapfile -t pids < <(svc_pids "$svc")
  if [[ ${#pids[@]} -eq 0 ]]; then
    log "$svc: not running"
  elif [[ $mode == --kill ]]; then
    # Abrupt crash, for outage tests; Kafka recovers its logs on the next start.
    log "$svc: SIGKILL ${pids[*]}"
    kill -KILL "${pids[@]}" 2>/dev/null || true
    sleep 0.5
  else
    log "$svc: stopping ${pids[*]}"
    terminate "${pids[@]}"
  fi
  rm -f "$RUN_DIR/$svc.pid"
}

# ---------------------------------------------------------------------------------------------
# Ports and prerequisites
# ---------------------------------------------------------------------------------------------

port_open() { timeout 2 bash -c "exec 5<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# Fails with one line naming the port and the variable that moves it.
require_free_port() { # require_free_port PORT VARNAME
  local who=""
  port_open "$1" || return 0
  if command -v ss >/dev/null; then
    who=$(ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'users:(("[^"]*",pid=[0-9]*' | head -1 |
      sed 's/users:(("\([^"]*\)",pid=\([0-9]*\)/ (held by \1, pid \2)/') || true
  fi
  die "port $1 is already in use by another process$who; set $2 to a free port"
}

need_java() {
  JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java
  command -v "$JAVA" >/dev/null ||
    die "java not found: install a JDK/JRE 17+ (e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
  local v major
  v=$("$JAVA" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -1)
  major=${v%%.*}
  [[ $major == 1 ]] && major=$(echo "$v" | cut -d. -f2) # 1.8.0_x -> 8
  [[ $major =~ ^[0-9]+$ ]] || major=0
  ((major >= 17)) ||
    die "Kafka 4.x needs Java 17+, found '${v:-unknown}' ($JAVA): install openjdk-17-jre-headless or newer, or set JAVA_HOME"
}

# apt_install PACKAGE...: only used when a service binary is missing (a fresh CI machine).
apt_install() {
  command -v apt-get >/dev/null || die "$* not installed and no apt-get here: install $* (Debian packages) by hand"
  [[ $EUID -eq 0 ]] || die "$* not installed: run as root so stack.sh can apt-get install them, or install them yourself"
  log "installing $* with apt-get"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2 || die "apt-get install $* failed"
}

# ---------------------------------------------------------------------------------------------
# Kafka
# ---------------------------------------------------------------------------------------------

kafka_pom_version() { sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$KAFKA_POM" | head -1; }

# Version of the jars actually in the cache (from the core jar's name), empty if none.
kafka_libs_version() {
  local j
  for j in "$KAFKA_LIBS"/kafka_2.13-*.jar; do
    [[ -e $j ]] || continue
    j=${j##*/kafka_2.13-}
    echo "${j%.jar}"
    return
  done
}

# Fetches the broker's jars from Maven Central once. The marker records the pom's hash, so a later
# start needs no network (nor mvn) until the pom changes. Downloads into a fresh temp dir and renames
# it: copy-dependencies never deletes old jars, and a leftover jar of another version on the
# classpath means NoSuchMethodErrors; an interrupted download must not look complete either.
# The cache is shared by every state dir (several stacks on other ports may run at once), so the
# download holds its own lock: without it, two first `up`s would both download, and the second's
# swap would delete the jars under the first one's broker.
kafka_libs_ok() { [[ -f $KAFKA_LIBS/.complete && $(<"$KAFKA_LIBS/.complete") == "$1" ]]; }

ensure_kafka_libs() {
  local want tmp
  want="kafka=$(kafka_pom_version) pom-sha256=$(sha256sum "$KAFKA_POM" | cut -d' ' -f1)"
  kafka_libs_ok "$want" && return 0
  mkdir -p "$CACHE_DIR"
  exec 8>"$CACHE_DIR/.lock"
  flock -w 600 8 || die "another stack.sh has been downloading into $CACHE_DIR for 10 minutes"
  if kafka_libs_ok "$want"; then exec 8>&-; return 0; fi # another stack.sh just fetched them
  command -v mvn >/dev/null || die "mvn not found: install Maven (apt-get install maven) to fetch the Kafka jars once"
  log "fetching Kafka $(kafka_pom_version) jars with Maven into $KAFKA_LIBS"
  tmp=$(mktemp -d "$CACHE_DIR/kafka-libs.tmp.XXXXXX")
  # (sed: Debian's mvn prints bare ESC[0m colour resets even in batch mode; pipefail keeps mvn's status.)
  if ! mvn -q -B -Dstyle.color=never -f "$KAFKA_POM" dependency:copy-dependencies \
    -DoutputDirectory="$tmp" -DincludeScope=runtime 2>&1 | sed $'s/\e\\[0m//g' >&2; then
    rm -rf "$tmp"
    die "mvn could not fetch the Kafka jars (see above)"
  fi
  # The jars that a plain-classpath broker silently misbehaves without (kafka-from-jars.md §6).
  local j
  for j in "kafka_2.13-$(kafka_pom_version).jar" 'log4j-slf4j-impl-*.jar' 'log4j-core-*.jar' 'slf4j-api-1.7.*.jar'; do
    compgen -G "$tmp/$j" >/dev/null || { rm -rf "$tmp"; die "Kafka jar set incomplete: no $j"; }
  done
  echo "$want" >"$tmp/.complete"
  rm -rf "$KAFKA_LIBS"
  mv "$tmp" "$KAFKA_LIBS"
  exec 8>&-
}

# Cluster id in Kafka's own format (Uuid.randomUuid: 16 random bytes, URL-safe base64, no padding,
# never starting with '-'), made without a JVM start. Stored next to the data and reused for ever:
# the data dir is bound to it.
new_cluster_id() {
  local id
  while :; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    [[ $id != -* ]] && { echo "$id"; return; }
  done
}

kafka_java_opts() {
  # Heap capped: the tarball's 1G default is more than a test broker needs. G1 chosen explicitly
  # (the JVM only picks it itself on "server-class" machines). The log4j2 config is what makes
  # server.log exist at all (see kafka/log4j2.properties).
  KAFKA_JAVA_OPTS=(
    -Xms512m -Xmx768m
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
    -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError
    -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$SCRIPT_DIR/kafka/log4j2.properties"
    "-Dkafka.logs.dir=$KAFKA_DIR/logs"
  )
  # shellcheck disable=SC2206 # word splitting of the user's extra flags is intended
  [[ -n ${PURCHASESYNC_KAFKA_JVM_OPTS:-} ]] && KAFKA_JAVA_OPTS+=(${PURCHASESYNC_KAFKA_JVM_OPTS})
  return 0
}

print_tail() { # print_tail FILE [BYTE_OFFSET]: the last lines written after BYTE_OFFSET
  [[ -s $1 ]] && (($(stat -c %s "$1") > ${2:-0})) || return 0
  echo "----- last lines of $1 -----" >&2
  tail -c "+$((${2:-0} + 1))" "$1" | tail -n 40 >&2
}

# Keeps one previous copy of a service's stdout/stderr capture, so a failed start shows only its own lines.
rotate() { [[ -f $1 ]] && mv -f "$1" "$1.prev"; return 0; }

start_kafka() {
  local pid
  if pid=$(svc_pid kafka); then
    log "kafka: already running (pid $pid)"
    wait_kafka "$pid" ""
    return
  fi
  need_java
  ensure_kafka_libs
  require_free_port "$KAFKA_PORT" PURCHASESYNC_KAFKA_PORT
  require_free_port "$KAFKA_CONTROLLER_PORT" PURCHASESYNC_KAFKA_CONTROLLER_PORT
  [[ $KAFKA_PORT != "$KAFKA_CONTROLLER_PORT" ]] || die "PURCHASESYNC_KAFKA_PORT and PURCHASESYNC_KAFKA_CONTROLLER_PORT must differ"

  mkdir -p "$KAFKA_DIR/data" "$KAFKA_DIR/logs"
  # Regenerated each start so changed ports take effect.
  sed -e "s|@BROKER_PORT@|$KAFKA_PORT|g" -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
    -e "s|@DATA_DIR@|$KAFKA_DIR/data|g" "$SCRIPT_DIR/kafka/server.properties.tmpl" >"$KAFKA_DIR/server.properties"

  local cid_file=$KAFKA_DIR/cluster.id
  if [[ ! -s $cid_file ]]; then
    if [[ -f $KAFKA_DIR/data/meta.properties ]]; then # keep an existing data dir's id
      sed -n 's/^cluster.id=//p' "$KAFKA_DIR/data/meta.properties" >"$cid_file"
    else
      new_cluster_id >"$cid_file"
    fi
  fi
  # Format once: a broker refuses to start without meta.properties. Static quorum
  # (controller.quorum.voters), so no --standalone: 4.2+ rejects combining the two.
  if [[ ! -f $KAFKA_DIR/data/meta.properties ]]; then
    log "kafka: formatting storage (cluster id $(<"$cid_file"))"
    if ! "$JAVA" -Xmx256m "-Dlog4j2.configurationFile=$SCRIPT_DIR/kafka/tools-log4j2.properties" \
      -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool format --ignore-formatted \
      -t "$(<"$cid_file")" -c "$KAFKA_DIR/server.properties" >"$KAFKA_DIR/logs/format.log" 2>&1; then
      print_tail "$KAFKA_DIR/logs/format.log"
      die "kafka: storage format failed"
    fi
  fi

  # server.log is appended to across restarts: only lines written after this offset count as
  # "started", else a restart would look ready at once because of the previous run's line.
  local offset=0
  [[ -f $KAFKA_DIR/logs/server.log ]] && offset=$(stat -c %s "$KAFKA_DIR/logs/server.log")

  rotate "$KAFKA_DIR/logs/stdout.log"
  kafka_java_opts
  log "kafka: starting $(kafka_libs_version) on 127.0.0.1:$KAFKA_PORT (controller :$KAFKA_CONTROLLER_PORT)"
  pid=$(launch kafka "$KAFKA_DIR" "$KAFKA_DIR/logs/stdout.log" \
    "$JAVA" "${KAFKA_JAVA_OPTS[@]}" -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_DIR/server.properties")
  wait_kafka "$pid" "$offset"
}

# wait_kafka PID OFFSET: ready when server.log (past OFFSET) says "Kafka Server started" and the
# broker port accepts TCP — the broker's acceptor only opens after the broker is unfenced, unlike
# the controller port. An empty OFFSET (already running) checks the port only.
wait_kafka() {
  local pid=$1 offset=$2 start=$SECONDS
  while :; do
    if ! alive "$pid"; then
      print_tail "$KAFKA_DIR/logs/server.log" "$offset"
      print_tail "$KAFKA_DIR/logs/stdout.log"
      rm -f "$RUN_DIR/kafka.pid"
      die "kafka exited during startup (logs: $KAFKA_DIR/logs)"
    fi
    if { [[ -z $offset ]] || tail -c "+$((offset + 1))" "$KAFKA_DIR/logs/server.log" 2>/dev/null |
      grep -q 'Kafka Server started'; } && port_open "$KAFKA_PORT"; then
      log "kafka: ready on 127.0.0.1:$KAFKA_PORT (pid $pid, $((SECONDS - start))s)"
      return 0
    fi
    if ((SECONDS - start >= KAFKA_READY_TIMEOUT)); then
      print_tail "$KAFKA_DIR/logs/server.log" "$offset"
      print_tail "$KAFKA_DIR/logs/stdout.log"
      [[ -n $offset ]] && stop_svc kafka # don't leave a half-started broker behind
      die "kafka not ready after ${KAFKA_READY_TIMEOUT}s (logs: $KAFKA_DIR/logs)"
    fi
    sleep 0.5
  done
}

# ---------------------------------------------------------------------------------------------
# ClickHouse
# ---------------------------------------------------------------------------------------------

clickhouse_bin() {
  if [[ -x /usr/sbin/clickhouse-server ]]; then echo /usr/sbin/clickhouse-server; return; fi
  command -v clickhouse-server 2>/dev/null || return 1
}

ch_query() { # ch_query SQL -> result on stdout (HTTP interface), fails if unreachable
  curl -sf --max-time 3 "http://127.0.0.1:$CH_HTTP_PORT/" --data-binary "$1" 2>/dev/null
}

start_clickhouse() {
  local pid bin
  if pid=$(svc_pid clickhouse); then
    log "clickhouse: already running (pid $pid)"
    wait_clickhouse "$pid" 0
    return
  fi
  command -v curl >/dev/null || die "curl not found: install curl (used to check ClickHouse readiness)"
  if ! bin=$(clickhouse_bin); then
    apt_install clickhouse-server clickhouse-client
    bin=$(clickhouse_bin) || die "clickhouse-server still missing after apt-get install"
  fi
  require_free_port "$CH_TCP_PORT" PURCHASESYNC_CLICKHOUSE_PORT
  require_free_port "$CH_HTTP_PORT" PURCHASESYNC_CLICKHOUSE_HTTP_PORT
  require_free_port "$CH_INTERSERVER_PORT" PURCHASESYNC_CLICKHOUSE_INTERSERVER_PORT

  # Own config instead of /etc/clickhouse-server: loopback only, our ports, every path under the
  # state dir; the package's service (if any) is never touched.
  mkdir -p "$CH_DIR/conf" "$CH_DIR/data" "$CH_DIR/logs"
  sed -e "s|@TCP_PORT@|$CH_TCP_PORT|g" -e "s|@HTTP_PORT@|$CH_HTTP_PORT|g" \
    -e "s|@INTERSERVER_PORT@|$CH_INTERSERVER_PORT|g" -e "s|@DATA_DIR@|$CH_DIR/data|g" \
    -e "s|@LOG_DIR@|$CH_DIR/logs|g" -e "s|@CONF_DIR@|$CH_DIR/conf|g" \
    "$SCRIPT_DIR/clickhouse/config.xml.tmpl" >"$CH_DIR/conf/config.xml"
  cp "$SCRIPT_DIR/clickhouse/users.xml" "$CH_DIR/conf/users.xml"

  rotate "$CH_DIR/logs/stdout.log"
  log "clickhouse: starting on 127.0.0.1:$CH_TCP_PORT (native), :$CH_HTTP_PORT (http)"
  # Foreground mode (no --daemon) so the recorded pid is the server itself.
  local err_offset=0 # the error log is appended to across restarts (like Kafka's server.log)
  [[ -f $CH_DIR/logs/clickhouse-server.err.log ]] && err_offset=$(stat -c %s "$CH_DIR/logs/clickhouse-server.err.log")
  pid=$(launch clickhouse "$CH_DIR" "$CH_DIR/logs/stdout.log" "$bin" "--config-file=$CH_DIR/conf/config.xml")
  wait_clickhouse "$pid" 1 "$err_offset"
}

wait_clickhouse() { # wait_clickhouse PID STARTED_BY_US [ERRLOG_OFFSET]
  local pid=$1 ours=$2 err_offset=${3:-0} start=$SECONDS
  while :; do
    if ! alive "$pid"; then
      print_tail "$CH_DIR/logs/clickhouse-server.err.log" "$err_offset"
      print_tail "$CH_DIR/logs/stdout.log"
      rm -f "$RUN_DIR/clickhouse.pid"
      die "clickhouse exited during startup (logs: $CH_DIR/logs)"
    fi
    if [[ $(curl -s --max-time 2 "http://127.0.0.1:$CH_HTTP_PORT/?query=SELECT%201" 2>/dev/null) == 1 ]]; then
      log "clickhouse: ready on 127.0.0.1:$CH_TCP_PORT (pid $pid, $((SECONDS - start))s)"
      return 0
    fi
    if ((SECONDS - start >= CH_READY_TIMEOUT)); then
      print_tail "$CH_DIR/logs/clickhouse-server.err.log" "$err_offset"
      print_tail "$CH_DIR/logs/stdout.log"
      ((ours)) && stop_svc clickhouse
      die "clickhouse not ready after ${CH_READY_TIMEOUT}s (logs: $CH_DIR/logs)"
    fi
    sleep 0.5
  done
}

# ---------------------------------------------------------------------------------------------
# Prometheus (optional)
# ---------------------------------------------------------------------------------------------

start_prometheus() {
  local pid bin
  if pid=$(svc_pid prometheus); then
    log "prometheus: already running (pid $pid)"
    wait_prometheus "$pid" 0
    return
  fi
  if ! bin=$(command -v prometheus); then
    apt_install prometheus
    bin=$(command -v prometheus) || die "prometheus still missing after apt-get install"
  fi
  require_free_port "$PROM_PORT" PURCHASESYNC_PROMETHEUS_PORT
  mkdir -p "$PROM_DIR/data"
  rotate "$PROM_DIR/prometheus.log"
  log "prometheus: starting on 127.0.0.1:$PROM_PORT, scraping 127.0.0.1:9464"
  pid=$(launch prometheus "$PROM_DIR" "$PROM_DIR/prometheus.log" "$bin" \
    "--config.file=$SCRIPT_DIR/prometheus/prometheus.yml" \
    "--storage.tsdb.path=$PROM_DIR/data" \
    "--web.listen-address=127.0.0.1:$PROM_PORT")
  wait_prometheus "$pid" 1
}

wait_prometheus() { # wait_prometheus PID STARTED_BY_US
  local pid=$1 ours=$2 start=$SECONDS
  while :; do
    if ! alive "$pid"; then
      print_tail "$PROM_DIR/prometheus.log"
      rm -f "$RUN_DIR/prometheus.pid"
      die "prometheus exited during startup (log: $PROM_DIR/prometheus.log)"
    fi
    if curl -sf --max-time 2 "http://127.0.0.1:$PROM_PORT/-/ready" >/dev/null 2>&1; then
      log "prometheus: ready on 127.0.0.1:$PROM_PORT (pid $pid, $((SECONDS - start))s)"
      return 0
    fi
    if ((SECONDS - start >= PROM_READY_TIMEOUT)); then
      print_tail "$PROM_DIR/prometheus.log"
      ((ours)) && stop_svc prometheus
      die "prometheus not ready after ${PROM_READY_TIMEOUT}s (log: $PROM_DIR/prometheus.log)"
    fi
    sleep 0.5
  done
}

# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------

# Serialises up/down/start/stop across processes (e.g. several `go test` packages calling `up` at
# once): the second caller waits, then finds the services running and only checks readiness.
take_lock() {
  mkdir -p "$STATE_DIR"
  exec 9>"$STATE_DIR/.lock"
  flock -w 300 9 || die "another stack.sh has held $STATE_DIR/.lock for 5 minutes"
}

print_env() { # on the saved stdout (fd 3) only
  {
    echo "PURCHASESYNC_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT"
    echo "PURCHASESYNC_CLICKHOUSE_ADDR=127.0.0.1:$CH_TCP_PORT"
    echo "PURCHASESYNC_CLICKHOUSE_HTTP=http://127.0.0.1:$CH_HTTP_PORT"
    if [[ ${1:-} == with-prometheus ]] || svc_pid prometheus >/dev/null; then
      echo "PURCHASESYNC_PROMETHEUS_URL=http://127.0.0.1:$PROM_PORT"
    fi
  } >&3
}

cmd_up() {
  local with_prom=${PURCHASESYNC_STACK_PROMETHEUS:-0} arg
  for arg in "$@"; do
    case $arg in
      --with-prometheus) with_prom=1 ;;
      *) die "up: unknown option $arg" ;;
    esac
  done
  take_lock
  start_kafka
  start_clickhouse
  if [[ $with_prom == 1 ]]; then start_prometheus; fi
  print_env
}

cmd_down() {
  local purge=0 arg svc pids=() p
  for arg in "$@"; do
    case $arg in
      --purge) purge=1 ;;
      *) die "down: unknown option $arg" ;;
    esac
  done
  take_lock
  # All services get SIGTERM at once, then share the one timeout.
  for svc in kafka clickhouse prometheus; do
    while read -r p; do [[ -n $p ]] && pids+=("$p"); done < <(svc_pids "$svc")
  done
  if [[ ${#pids[@]} -gt 0 ]]; then
    log "stopping pids ${pids[*]}"
    terminate "${pids[@]}"
  fi
  rm -f "$RUN_DIR"/*.pid
  for svc in kafka clickhouse prometheus; do
    [[ -z $(svc_pids "$svc") ]] || die "$svc is still running after SIGKILL: $(svc_pids "$svc" | tr '\n' ' ')"
  done
  if ((purge)); then
    log "deleting $STATE_DIR"
    rm -rf "$STATE_DIR"
  fi
  log "stack is down"
}

cmd_status() {
  local pid v
  v=$(kafka_libs_version)
  if pid=$(svc_pid kafka); then
    echo "kafka: running (pid $pid, 127.0.0.1:$KAFKA_PORT, controller 127.0.0.1:$KAFKA_CONTROLLER_PORT, Kafka ${v:-?})"
  else
    echo "kafka: stopped${v:+ (Kafka $v jars cached)}"
  fi
  if pid=$(svc_pid clickhouse); then
    v=$(ch_query 'SELECT version()') || v='?'
    echo "clickhouse: running (pid $pid, native 127.0.0.1:$CH_TCP_PORT, http http://127.0.0.1:$CH_HTTP_PORT, ClickHouse $v)"
  else
    echo "clickhouse: stopped"
  fi
  if pid=$(svc_pid prometheus); then
    echo "prometheus: running (pid $pid, http://127.0.0.1:$PROM_PORT)"
  else
    echo "prometheus: stopped"
  fi
}

usage() {
  sed -n '/^# Usage:/,/^# Only the/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
}

main() {
  local cmd=${1:-}
  [[ $# -gt 0 ]] && shift
  case $cmd in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    status) cmd_status >&3 ;;
    env) print_env "$([[ ${PURCHASESYNC_STACK_PROMETHEUS:-0} == 1 ]] && echo with-prometheus)" ;;
    start-kafka) take_lock; start_kafka ;;
    stop-kafka) take_lock; stop_svc kafka "${1:-}" ;;
    start-clickhouse) take_lock; start_clickhouse ;;
    stop-clickhouse) take_lock; stop_svc clickhouse "${1:-}" ;;
    start-prometheus) take_lock; start_prometheus ;;
    stop-prometheus) take_lock; stop_svc prometheus "${1:-}" ;;
    -h | --help | help) usage ;;
    *) usage; exit 2 ;;
  esac
}

main "$@"
