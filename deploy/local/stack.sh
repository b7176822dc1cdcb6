#!/usr/bin/env bash
# Local service stack for purchasesync: Apache Kafka (KRaft), ClickHouse and, optionally,
# Prometheus — all as plain background processes bound to 127.0.0.1. No Docker, no systemd: the
# same script works on a developer's machine and in CI (DESIGN.md §8).
#
# Usage:
#   stack.sh up [--with-prometheus] [KAFKA] [CH]  install what is missing, start everything, wait until
#                                    ready, then print PURCHASESYNC_*=value lines on stdout
#   stack.sh down [--purge]          stop everything we started, every Kafka profile's nodes too
#                                    (--purge also deletes the state dir)
#   stack.sh status                  one line per service and per node of every running Kafka
#                                    profile; always exits 0
#   stack.sh env [KAFKA] [CH]        print the profile's PURCHASESYNC_*=value lines, start nothing
#   stack.sh start-kafka [--node N] [KAFKA]           for outage tests: without --node, every
#   stack.sh stop-kafka [--node N] [--kill] [KAFKA]   node of the profile; start-* waits until ready
#   stack.sh start-clickhouse [--node N] [CH]        without --node, every server of the ClickHouse
#   stack.sh stop-clickhouse [--node N] [--kill] [CH] profile; start-* waits until ready
#   stack.sh query [--node N] [CH] SQL     one query on one server (node 1 by default) with the
#                                    profile's credentials; the result as TSV on stdout
#   stack.sh start-prometheus | stop-prometheus [--kill]
# KAFKA selects the Kafka profile: [--kafka-brokers 1|3] [--kafka-security plaintext|sasl_ssl]
# (default: 1 broker, plaintext), or PURCHASESYNC_STACK_KAFKA_BROKERS / _SECURITY (the flags win).
# CH selects the ClickHouse profile: [--clickhouse-replicas 1|2] [--clickhouse-tls] (default: one
# plaintext server without a password), or PURCHASESYNC_STACK_CLICKHOUSE_REPLICAS / _TLS=1; `up` and
# `env` take both KAFKA and CH. See the ClickHouse section for the profiles' ports; `up` prints
# PURCHASESYNC_CLICKHOUSE_ADDR=<every node's client port> and _HTTP=<node 1>, and for the other
# profiles also _USER, _PASSWORD, _CLUSTER=purchasesync (two replicas), _TLS=true and _TLS_CAFILE
# (tls), and PURCHASESYNC_STACK_CLICKHOUSE_HTTP_ALL=<every node's HTTP URL>.
#
# Typical use:  set -a; eval "$(deploy/local/stack.sh up)"; set +a
# Only the PURCHASESYNC_* lines go to stdout; every progress or error message goes to stderr.
#
# Kafka profiles. Each is its own cluster (own cluster id, own state dir, fixed ports), and all of
# them can run at once; ClickHouse and Prometheus are shared. Profile k's node N listens for
# clients on 19092 + 100*k + 10*(N-1), and for KRaft (always PLAINTEXT, loopback) on that + 1:
#   k brokers security   state dir under $STATE_DIR          node ports (client/controller)
#   0 1       plaintext  kafka/              (the default)   19092/19093 (PURCHASESYNC_KAFKA_*PORT)
#   1 1       sasl_ssl   kafka-1-sasl_ssl/node1/             19192/19193
#   2 3       plaintext  kafka-3-plaintext/node{1,2,3}/      19292/19293, 19302/19303, 19312/19313
#   3 3       sasl_ssl   kafka-3-sasl_ssl/node{1,2,3}/       19392/19393, 19402/19403, 19412/19413
# Three nodes: combined broker+controller each (static quorum of the three), one JVM each with a
# 256-512 MiB heap; internal topics and default.replication.factor 3, min.insync.replicas 2.
# `up` prints PURCHASESYNC_KAFKA_BROKERS=<every node>; sasl_ssl profiles also print
#   PURCHASESYNC_KAFKA_TLS=true, PURCHASESYNC_KAFKA_TLS_CAFILE=<CA pem>,
#   PURCHASESYNC_KAFKA_SASL_MECHANISM=scram-sha-512, PURCHASESYNC_KAFKA_SASL_USERNAME=purchasesync,
#   PURCHASESYNC_KAFKA_SASL_PASSWORD=<password>, and, for mutual-TLS tests (deliberately not
#   PURCHASESYNC_KAFKA_TLS_* names, so clients do not send them unless told),
#   PURCHASESYNC_STACK_KAFKA_CLIENT_CERT=<pem> and PURCHASESYNC_STACK_KAFKA_CLIENT_KEY=<pem>.
# sasl_ssl: clients and brokers talk SASL_SSL only. Made once under the profile's state dir and
# reused: a throwaway CA and one certificate per node (SAN IP:127.0.0.1, DNS:localhost) in tls/, a
# client certificate signed by the same CA (brokers have ssl.client.auth=requested), and random
# passwords in sasl.secrets. SASL mechanisms enabled: SCRAM-SHA-512 and SCRAM-SHA-256 (user
# purchasesync, credentials written at storage format time on every node), PLAIN (same user and
# password, static JAAS on the listener) and OAUTHBEARER with Kafka's default unsecured validator
# (unsigned JWS tokens, alg "none", any "sub": authentication only, for client tests — never an
# identity check). Brokers authenticate to each other with SCRAM-SHA-512 as user "broker".
#
# Environment (all optional):
#   PURCHASESYNC_KAFKA_PORT=19092              broker listener       } of the default profile only;
#   PURCHASESYNC_KAFKA_CONTROLLER_PORT=19093   KRaft controller      } the other profiles' are fixed
#   PURCHASESYNC_STACK_KAFKA_BROKERS=1         same as --kafka-brokers
#   PURCHASESYNC_STACK_KAFKA_SECURITY=plaintext  same as --kafka-security
#   PURCHASESYNC_CLICKHOUSE_PORT=19000         ClickHouse native protocol
#   PURCHASESYNC_CLICKHOUSE_HTTP_PORT=18123    ClickHouse HTTP
#   PURCHASESYNC_CLICKHOUSE_INTERSERVER_PORT=19009
#   PURCHASESYNC_PROMETHEUS_PORT=19090
#   PURCHASESYNC_STACK_PROMETHEUS=1            same as `up --with-prometheus`
#   PURCHASESYNC_STACK_DIR=deploy/local/.state data, logs, generated configs and pid files
#   PURCHASESYNC_KAFKA_JVM_OPTS                extra JVM flags for the brokers
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

KAFKA_DIR=$STATE_DIR/kafka # the default profile's single node
CH_DIR=$STATE_DIR/clickhouse
PROM_DIR=$STATE_DIR/prometheus

# The Kafka profiles other than the default one (1 plaintext broker in $KAFKA_DIR), by "brokers-security":
# the index k gives the ports (base 19092 + 100*k, see the header); the default has k=0.
declare -A PROFILE_INDEX=([1-plaintext]=0 [1-sasl_ssl]=1 [3-plaintext]=2 [3-sasl_ssl]=3)
SASL_USER=purchasesync
SASL_MECHANISMS=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN,OAUTHBEARER

# A SIGKILLed broker recovers every partition's log before it listens; with the thousands of
# partitions test runs leave in a long-lived state folder that took over 2 minutes here.
KAFKA_READY_TIMEOUT=300
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
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
  stat=${stat##*) }          # the state letter follows the parenthesised command name
  [[ ${stat:0:1} != Z ]]
}

# read_cmdline PID: sets CMDLINE to the process's arguments, each followed by one space (so the last
# one can be matched exactly). Builtins only: svc_pids calls it for every process on the machine.
# (The braces catch the shell's own error when the process vanished between the glob and the read.)
read_cmdline() {
  local -a args
  CMDLINE=
  { mapfile -d '' -t args <"/proc/$1/cmdline"; } 2>/dev/null || return 1
  [[ ${#args[@]} -gt 0 ]] || return 1 # kernel thread
  printf -v CMDLINE '%s ' "${args[@]}"
}

# Kafka services are "kafka" (the default profile's node, in $KAFKA_DIR) and "<profile>-node<N>"
# (in $STATE_DIR/<profile>/node<N>), e.g. kafka-3-sasl_ssl-node2; kafka_svc_dir maps one to the other.
kafka_svc_dir() {
  case $1 in
    kafka) echo "$KAFKA_DIR" ;;
    kafka-*-node*) echo "$STATE_DIR/${1%-node*}/node${1##*-node}" ;;
    *) return 1 ;;
  esac
}

# Each service's command line names its own directory under the state dir (config or data path),
# which tells our processes apart from another stack's or a system service — and from a recycled pid.
# A broker's is its server.properties, the last argument (hence the trailing space): an exact match,
# so no node is taken for another whose directory merely starts the same.
set_marker() { # set_marker SERVICE: sets MARKER
  case $1 in
    kafka*) MARKER="kafka.Kafka $(kafka_svc_dir "$1")/server.properties " ;;
    clickhouse) MARKER="--config-file=$CH_DIR/" ;;
    clickhouse-*-node*) MARKER="--config-file=$STATE_DIR/${1%-node*}/node${1##*-node}/conf/config.xml" ;;
    zookeeper) MARKER="QuorumPeerMain $ZK_DIR/zoo.cfg " ;;
    prometheus) MARKER="--storage.tsdb.path=$PROM_DIR/" ;;
    *) die "internal: unknown service $1" ;;
  esac
}

is_ours() { # is_ours PID (after set_marker)
  read_cmdline "$1" || return 1
  [[ $CMDLINE == *"$MARKER"* ]]
}

# Prints the pids of our live processes for SERVICE: the one in its pid file, plus any stray one
# whose pid file was lost (found by scanning /proc for the service's marker).
svc_pids() {
  local svc=$1 pid p found=()
  set_marker "$svc"
  if [[ -f $RUN_DIR/$svc.pid ]]; then
    pid=$(<"$RUN_DIR/$svc.pid")
    if [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" && is_ours "$pid"; then found+=("$pid"); fi
  fi
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [[ $p == "$$" || $p == "${found[0]:-}" ]] && continue
    if is_ours "$p" && alive "$p"; then found+=("$p"); fi
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

# stop_svcs MODE SERVICE...: stops them all at once (one shared timeout); MODE --kill is an abrupt
# crash, for outage tests (Kafka recovers its logs on the next start), anything else a clean stop.
stop_svcs() {
  local mode=$1 svc p pids=() names=()
  shift
  for svc; do
    mapfile -t p < <(svc_pids "$svc")
    if [[ ${#p[@]} -eq 0 ]]; then
      log "$(svc_label "$svc"): not running"
    else
      pids+=("${p[@]}")
      names+=("$(svc_label "$svc")")
    fi
  done
  if [[ ${#pids[@]} -gt 0 && $mode == --kill ]]; then
    log "${names[*]}: SIGKILL ${pids[*]}"
    kill -KILL "${pids[@]}" 2>/dev/null || true
    sleep 0.5
  elif [[ ${#pids[@]} -gt 0 ]]; then
    log "${names[*]}: stopping ${pids[*]}"
    terminate "${pids[@]}"
  fi
  for svc; do rm -f "$RUN_DIR/$svc.pid"; done
}

stop_svc() { stop_svcs "${2:-}" "$1"; } # stop_svc SERVICE [--kill]

# svc_label SERVICE: how messages name it: kafka, kafka-3-sasl_ssl/node2, clickhouse, ...
svc_label() {
  case $1 in
    kafka-*-node* | clickhouse-*-node*) echo "${1%-node*}/node${1##*-node}" ;;
    *) echo "$1" ;;
  esac
}

# ---------------------------------------------------------------------------------------------
# Ports and prerequisites
# ---------------------------------------------------------------------------------------------

port_open() { timeout 2 bash -c "exec 5<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# Fails with one line naming the port and what to do about it.
require_free_port() { # require_free_port PORT FIX
  local who=""
  port_open "$1" || return 0
  if command -v ss >/dev/null; then
    who=$(ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'users:(("[^"]*",pid=[0-9]*' | head -1 |
      sed 's/users:(("\([^"]*\)",pid=\([0-9]*\)/ (held by \1, pid \2)/') || true
  fi
  die "port $1 is already in use by another process$who; $2"
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
# Kafka: jars
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

# ---------------------------------------------------------------------------------------------
# Kafka: profiles and nodes
# ---------------------------------------------------------------------------------------------

# Profile options, shared by up, env, start-kafka and stop-kafka; the flags override these.
KAFKA_BROKERS=${PURCHASESYNC_STACK_KAFKA_BROKERS:-1}
KAFKA_SECURITY=${PURCHASESYNC_STACK_KAFKA_SECURITY:-plaintext}
CH_REPLICAS=${PURCHASESYNC_STACK_CLICKHOUSE_REPLICAS:-1}
CH_TLS=${PURCHASESYNC_STACK_CLICKHOUSE_TLS:-0}

# parse_opts COMMAND ALLOWED ARG...: ALLOWED is a space-separated list among profile (the
# --kafka-brokers and --kafka-security options), --with-prometheus, --purge, --kill and --node;
# any other argument is fatal. Sets OPT_NODE, OPT_KILL, OPT_PROM, OPT_PURGE and, with profile,
# KAFKA_BROKERS and KAFKA_SECURITY, then the profile (set_profile).
OPT_NODE='' OPT_KILL=0 OPT_PROM=${PURCHASESYNC_STACK_PROMETHEUS:-0} OPT_PURGE=0
parse_opts() {
  local cmd=$1 allowed=" $2 " opt val
  shift 2
  while [[ $# -gt 0 ]]; do
    opt=$1 val=
    shift
    case $opt in
      --*=*) val=${opt#*=} opt=${opt%%=*} ;;
    esac
    case $opt in
      --kafka-brokers | --kafka-security | --node | --clickhouse-replicas)
        if [[ -z $val ]]; then
          [[ $# -gt 0 ]] || die "$cmd: $opt needs a value"
          val=$1
          shift
        fi
        ;;
    esac
    if [[ $opt == --kafka-brokers || $opt == --kafka-security ]]; then
      [[ $cmd != down ]] || die "down stops every profile and takes no $opt (stop-kafka $opt ... stops one profile)"
      [[ $allowed == *" profile "* ]] || die "$cmd takes no $opt"
    elif [[ $opt == --clickhouse-replicas || $opt == --clickhouse-tls ]]; then
      [[ $cmd != down ]] || die "down stops every profile and takes no $opt (stop-clickhouse $opt ... stops one profile)"
      [[ $allowed == *" chprofile "* ]] || die "$cmd takes no $opt"
    elif [[ $allowed != *" $opt "* ]]; then
      die "$cmd: unknown option $opt (see stack.sh help)"
    fi
    case $opt in
      --kafka-brokers) KAFKA_BROKERS=$val ;;
      --kafka-security) KAFKA_SECURITY=$val ;;
      --clickhouse-replicas) CH_REPLICAS=$val ;;
      --clickhouse-tls) CH_TLS=1 ;;
      --node) OPT_NODE=$val ;;
      --kill) OPT_KILL=1 ;;
      --with-prometheus) OPT_PROM=1 ;;
      --purge) OPT_PURGE=1 ;;
      *) die "$cmd: unknown option $opt (see stack.sh help)" ;;
    esac
  done
  if [[ $allowed == *" chprofile "* ]]; then
    set_ch_profile
    if [[ -n $OPT_NODE && $allowed != *" profile "* ]]; then
      if [[ ! $OPT_NODE =~ ^[0-9]+$ ]] || ((OPT_NODE < 1 || OPT_NODE > CH_NODES)); then
        die "$cmd: --node must be between 1 and $CH_NODES (the profile's replicas), not '$OPT_NODE'"
      fi
    fi
  fi
  [[ $allowed == *" profile "* ]] || return 0
  set_profile
  if [[ -n $OPT_NODE ]]; then
    if [[ ! $OPT_NODE =~ ^[0-9]+$ ]] || ((OPT_NODE < 1 || OPT_NODE > NODES)); then
      die "$cmd: --node must be between 1 and $NODES (the profile's brokers), not '$OPT_NODE'"
    fi
  fi
  return 0
}

# set_profile: from KAFKA_BROKERS and KAFKA_SECURITY, sets PROFILE (its name: kafka for the default,
# else kafka-<brokers>-<security>), PROFILE_DIR, NODES and PROFILE_BASE (node 1's client port).
set_profile() {
  KAFKA_SECURITY=${KAFKA_SECURITY,,}
  [[ $KAFKA_BROKERS =~ ^[13]$ ]] ||
    die "--kafka-brokers (or PURCHASESYNC_STACK_KAFKA_BROKERS) must be 1 or 3, not '$KAFKA_BROKERS'"
  [[ $KAFKA_SECURITY == plaintext || $KAFKA_SECURITY == sasl_ssl ]] ||
    die "--kafka-security (or PURCHASESYNC_STACK_KAFKA_SECURITY) must be plaintext or sasl_ssl, not '$KAFKA_SECURITY'"
  NODES=$KAFKA_BROKERS
  local k=${PROFILE_INDEX[$KAFKA_BROKERS-$KAFKA_SECURITY]}
  if ((k == 0)); then
    PROFILE=kafka PROFILE_DIR=$KAFKA_DIR PROFILE_BASE=$KAFKA_PORT
    [[ $KAFKA_PORT != "$KAFKA_CONTROLLER_PORT" ]] ||
      die "PURCHASESYNC_KAFKA_PORT and PURCHASESYNC_KAFKA_CONTROLLER_PORT must differ"
  else
    PROFILE=kafka-$KAFKA_BROKERS-$KAFKA_SECURITY PROFILE_DIR=$STATE_DIR/kafka-$KAFKA_BROKERS-$KAFKA_SECURITY
    PROFILE_BASE=$((19092 + 100 * k))
  fi
  TLS_DIR=$PROFILE_DIR/tls
  SECRETS=$PROFILE_DIR/sasl.secrets
}

# Every Kafka service of every profile (for down and status), default first.
all_kafka_svcs() {
  local p n
  echo kafka
  for p in 1-sasl_ssl 3-plaintext 3-sasl_ssl; do
    for ((n = 1; n <= ${p%%-*}; n++)); do echo "kafka-$p-node$n"; done
  done
}

# Per node N of the current profile:
node_svc() { if [[ $PROFILE == kafka ]]; then echo kafka; else echo "$PROFILE-node$1"; fi; }
node_dir() { if [[ $PROFILE == kafka ]]; then echo "$KAFKA_DIR"; else echo "$PROFILE_DIR/node$1"; fi; }
node_label() { svc_label "$(node_svc "$1")"; }
node_port() { echo $((PROFILE_BASE + 10 * ($1 - 1))); }
node_cport() {
  if [[ $PROFILE == kafka ]]; then echo "$KAFKA_CONTROLLER_PORT"; else echo $(($(node_port "$1") + 1)); fi
}
port_fix() { # what to tell the user when node N's port (PORT_VAR of the default) is taken
  if [[ $PROFILE == kafka ]]; then
    echo "set $2 to a free port"
  else
    echo "the ports of profile $PROFILE are fixed (see the header of stack.sh): stop what holds it"
  fi
}
profile_opts() { echo "--kafka-brokers $KAFKA_BROKERS --kafka-security $KAFKA_SECURITY"; }

brokers_list() { # 127.0.0.1:a,127.0.0.1:b,...
  local n out=()
  for ((n = 1; n <= NODES; n++)); do out+=("127.0.0.1:$(node_port "$n")"); done
  local IFS=,
  echo "${out[*]}"
}

# Cluster id in Kafka's own format (Uuid.randomUuid: 16 random bytes, URL-safe base64, no padding,
# never starting with '-'), made without a JVM start. Stored next to the data and reused for ever:
# the data dir is bound to it. One per profile, shared by its nodes.
new_cluster_id() {
  local id
  while :; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    [[ $id != -* ]] && { echo "$id"; return; }
  done
}

ensure_cluster_id() { # prints the profile's cluster id, making it once
  local cid_file=$PROFILE_DIR/cluster.id n meta
  if [[ ! -s $cid_file ]]; then
    mkdir -p "$PROFILE_DIR"
    for ((n = 1; n <= NODES; n++)); do # keep an existing data dir's id
      meta=$(node_dir "$n")/data/meta.properties
      if [[ -f $meta ]]; then sed -n 's/^cluster.id=//p' "$meta" >"$cid_file"; break; fi
    done
    [[ -s $cid_file ]] || new_cluster_id >"$cid_file"
  fi
  cat "$cid_file"
}

# 24 random letters and digits: safe unquoted in properties, JAAS, StorageTool's --add-scram and eval.
random_password() {
  local pw
  pw=$(head -c 48 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9')
  echo "${pw:0:24}"
}

# sasl.secrets (mode 600): the SCRAM/PLAIN password of the client user and of the inter-broker user.
# Made once, before the first format: the SCRAM credentials are written into the metadata then.
load_secrets() { # sets SASL_PASSWORD and BROKER_PASSWORD, or fails
  [[ -s $SECRETS ]] || return 1
  SASL_PASSWORD=$(sed -n 's/^password=//p' "$SECRETS")
  BROKER_PASSWORD=$(sed -n 's/^broker_password=//p' "$SECRETS")
  [[ -n $SASL_PASSWORD && -n $BROKER_PASSWORD ]] || die "$PROFILE: $SECRETS is damaged: delete $PROFILE_DIR to start the profile afresh"
}

ensure_secrets() {
  local n
  if [[ ! -s $SECRETS ]]; then
    for ((n = 1; n <= NODES; n++)); do
      [[ ! -f $(node_dir "$n")/data/meta.properties ]] ||
        die "$PROFILE: $SECRETS is missing but the nodes are formatted with its passwords: delete $PROFILE_DIR to start the profile afresh"
    done
    mkdir -p "$PROFILE_DIR"
    (umask 077 && printf 'password=%s\nbroker_password=%s\n' "$(random_password)" "$(random_password)" >"$SECRETS.tmp")
    mv "$SECRETS.tmp" "$SECRETS"
  fi
  load_secrets
}

# The profile's throwaway CA, one certificate per node and a client certificate, made once with
# openssl into tls/ (via a temp dir: a half-made set never looks complete).
tls_complete() {
  local n f
  for f in ca.pem client.crt client.key; do [[ -s $TLS_DIR/$f ]] || return 1; done
  for ((n = 1; n <= NODES; n++)); do [[ -s $TLS_DIR/node$n.pem ]] || return 1; done
}

ensure_tls() {
  local tmp n
  tls_complete && return 0
  if [[ -d $TLS_DIR ]]; then # files lost: a new CA would not be trusted by the nodes still running
    for ((n = 1; n <= NODES; n++)); do
      ! svc_pid "$(node_svc "$n")" >/dev/null ||
        die "$PROFILE: $TLS_DIR is incomplete: stop the profile (stop-kafka $(profile_opts)) so that new certificates can be made"
    done
  fi
  command -v openssl >/dev/null || die "openssl not found: install it (apt-get install openssl) to make the $PROFILE certificates"
  mkdir -p "$PROFILE_DIR"
  tmp=$(mktemp -d "$PROFILE_DIR/tls.tmp.XXXXXX")
  log "$PROFILE: making a throwaway CA and certificates in $TLS_DIR"
  if ! (umask 077 && make_certs "$tmp") >"$tmp/openssl.log" 2>&1; then
    print_tail "$tmp/openssl.log"
    rm -rf "$tmp"
    die "$PROFILE: openssl could not make the test certificates (see above)"
  fi
  rm -f "$tmp/openssl.log"
  rm -rf "$TLS_DIR"
  mv "$tmp" "$TLS_DIR"
}

make_certs() { # make_certs DIR
  local d=$1 n
  openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 3650 \
    -subj "/CN=purchasesync local test CA ($PROFILE)" -keyout "$d/ca.key" -out "$d/ca.pem" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
  for ((n = 1; n <= NODES; n++)); do
    # serverAuth for clients, clientAuth for the inter-broker connections (ssl.client.auth=requested).
    sign_cert "$d" "node$n" "kafka-node$n" serverAuth,clientAuth "subjectAltName=IP:127.0.0.1,DNS:localhost"
    cat "$d/node$n.key" "$d/node$n.crt" >"$d/node$n.pem" # Kafka's PEM key store: key, then chain
    rm -f "$d/node$n.key" "$d/node$n.crt"
  done
  sign_cert "$d" client "$SASL_USER" clientAuth ""
  rm -f "$d/ca.srl"
}

sign_cert() { # sign_cert DIR NAME CN EXTENDED_KEY_USAGE EXTRA_EXTENSION
  openssl req -new -newkey rsa:2048 -nodes -sha256 -subj "/CN=$3" -keyout "$1/$2.key" -out "$1/$2.csr"
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=%s\n%s\n' \
    "$4" "$5" >"$1/$2.ext"
  openssl x509 -req -sha256 -days 3650 -in "$1/$2.csr" -CA "$1/ca.pem" -CAkey "$1/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -extfile "$1/$2.ext" -out "$1/$2.crt"
  rm -f "$1/$2.csr" "$1/$2.ext"
}

kafka_java_opts() { # kafka_java_opts LOG_DIR
  # Heap capped: the tarball's 1G default is more than a test broker needs; a node of a profile gets
  # less than the default broker so that three fit beside everything else. G1 chosen explicitly
  # (the JVM only picks it itself on "server-class" machines). The log4j2 config is what makes
  # server.log exist at all (see kafka/log4j2.properties).
  local heap=(-Xms512m -Xmx768m)
  [[ $PROFILE == kafka ]] || heap=(-Xms256m -Xmx512m)
  KAFKA_JAVA_OPTS=(
    "${heap[@]}"
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
    -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError
    -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$SCRIPT_DIR/kafka/log4j2.properties"
    "-Dkafka.logs.dir=$1"
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

# write_node_config N: node N's server.properties, regenerated each start so changed ports take effect.
write_node_config() {
  local n=$1 dir voters=() v rf=1 isr=1 listener=PLAINTEXT
  dir=$(node_dir "$n")
  for ((v = 1; v <= NODES; v++)); do voters+=("$v@127.0.0.1:$(node_cport "$v")"); done
  ((NODES >= 3)) && rf=3 isr=2
  [[ $KAFKA_SECURITY == sasl_ssl ]] && listener=SASL_SSL
  mkdir -p "$dir/data" "$dir/logs"
  (
    IFS=,
    umask 077 # the sasl_ssl part holds passwords
    exec >"$dir/server.properties.tmp"
    sed -e "s|@NODE_ID@|$n|g" -e "s|@QUORUM_VOTERS@|${voters[*]}|g" -e "s|@LISTENER@|$listener|g" \
      -e "s|@BROKER_PORT@|$(node_port "$n")|g" -e "s|@CONTROLLER_PORT@|$(node_cport "$n")|g" \
      -e "s|@DATA_DIR@|$dir/data|g" -e "s|@RF@|$rf|g" -e "s|@MIN_ISR@|$isr|g" \
      "$SCRIPT_DIR/kafka/server.properties.tmpl"
    if [[ $KAFKA_SECURITY == sasl_ssl ]]; then
      sed -e "s|@NODE_ID@|$n|g" -e "s|@TLS_DIR@|$TLS_DIR|g" -e "s|@SASL_MECHANISMS@|$SASL_MECHANISMS|g" \
        -e "s|@SASL_USER@|$SASL_USER|g" -e "s|@SASL_PASSWORD@|$SASL_PASSWORD|g" \
        -e "s|@BROKER_PASSWORD@|$BROKER_PASSWORD|g" "$SCRIPT_DIR/kafka/server-sasl_ssl.properties.tmpl"
    fi
  )
  mv "$dir/server.properties.tmp" "$dir/server.properties"
}

# format_nodes N...: formats (concurrently) the storage of those nodes that have none yet: a broker
# refuses to start without meta.properties. Static quorum (controller.quorum.voters), so no
# --standalone: 4.2+ rejects combining the two. The SCRAM credentials of sasl_ssl profiles are
# bootstrap metadata, written on every node (the same on each).
format_nodes() {
  local n dir cid scram=() pids=() nodes=() failed=() k
  cid=$(ensure_cluster_id)
  if [[ $KAFKA_SECURITY == sasl_ssl ]]; then
    for k in SCRAM-SHA-512 SCRAM-SHA-256; do
      scram+=(--add-scram "$k=[name=$SASL_USER,password=$SASL_PASSWORD]" --add-scram "$k=[name=broker,password=$BROKER_PASSWORD]")
    done
  fi
  for n; do
    dir=$(node_dir "$n")
    [[ -f $dir/data/meta.properties ]] && continue
    log "$(node_label "$n"): formatting storage (cluster id $cid)"
    "$JAVA" -Xmx256m "-Dlog4j2.configurationFile=$SCRIPT_DIR/kafka/tools-log4j2.properties" \
      -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool format --ignore-formatted \
      -t "$cid" -c "$dir/server.properties" "${scram[@]}" </dev/null >"$dir/logs/format.log" 2>&1 3>&- &
    pids+=("$!") nodes+=("$n")
  done
  for k in "${!pids[@]}"; do
    wait "${pids[k]}" || failed+=("${nodes[k]}")
  done
  for n in "${failed[@]}"; do print_tail "$(node_dir "$n")/logs/format.log"; done
  [[ ${#failed[@]} -eq 0 ]] || die "$PROFILE: storage format failed for node(s) ${failed[*]} (logs above)"
}

# start_kafka [N...]: starts the given nodes of the profile (default: all) that are not running,
# all at once (the nodes of a cluster need each other for a quorum), then waits until every given
# node is ready.
start_kafka() {
  local n pid svc dir offset waits=() todo=() nodes=("$@")
  if [[ ${#nodes[@]} -eq 0 ]]; then for ((n = 1; n <= NODES; n++)); do nodes+=("$n"); done; fi
  for n in "${nodes[@]}"; do
    if pid=$(svc_pid "$(node_svc "$n")"); then
      log "$(node_label "$n"): already running (pid $pid)"
      waits+=("$n:$pid:")
    else
      todo+=("$n")
    fi
  done
  if [[ ${#todo[@]} -gt 0 ]]; then
    need_java
    ensure_kafka_libs
    for n in "${todo[@]}"; do
      require_free_port "$(node_port "$n")" "$(port_fix "$n" PURCHASESYNC_KAFKA_PORT)"
      require_free_port "$(node_cport "$n")" "$(port_fix "$n" PURCHASESYNC_KAFKA_CONTROLLER_PORT)"
    done
    if [[ $KAFKA_SECURITY == sasl_ssl ]]; then
      ensure_secrets
      ensure_tls
    fi
    for n in "${todo[@]}"; do write_node_config "$n"; done
    format_nodes "${todo[@]}"
    for n in "${todo[@]}"; do
      svc=$(node_svc "$n") dir=$(node_dir "$n")
      # server.log is appended to across restarts: only lines written after this offset count as
      # "started", else a restart would look ready at once because of the previous run's line.
      offset=0
      [[ -f $dir/logs/server.log ]] && offset=$(stat -c %s "$dir/logs/server.log")
      rotate "$dir/logs/stdout.log"
      kafka_java_opts "$dir/logs"
      log "$(node_label "$n"): starting $(kafka_libs_version) on 127.0.0.1:$(node_port "$n") ($KAFKA_SECURITY; controller :$(node_cport "$n"))"
      pid=$(launch "$svc" "$dir" "$dir/logs/stdout.log" \
        "$JAVA" "${KAFKA_JAVA_OPTS[@]}" -cp "$KAFKA_LIBS/*" kafka.Kafka "$dir/server.properties")
      waits+=("$n:$pid:$offset")
    done
  fi
  wait_kafka "${waits[@]}"
}

# wait_kafka N:PID:OFFSET...: node N is ready when its server.log (past OFFSET) says "Kafka Server
# started" and its broker port accepts TCP — the broker's acceptor only opens after the broker is
# unfenced, unlike the controller port. An empty OFFSET (already running) checks the port only.
# When one fails, the nodes started by this call are stopped again (no half-started cluster).
wait_kafka() {
  local start=$SECONDS e n pid offset dir pending=("$@") left started=()
  for e in "$@"; do [[ -n ${e##*:} ]] && started+=("$(node_svc "${e%%:*}")"); done
  while [[ ${#pending[@]} -gt 0 ]]; do
    left=()
    for e in "${pending[@]}"; do
      IFS=: read -r n pid offset <<<"$e"
      dir=$(node_dir "$n")
      if ! alive "$pid"; then
        print_tail "$dir/logs/server.log" "${offset:-0}"
        print_tail "$dir/logs/stdout.log"
        rm -f "$RUN_DIR/$(node_svc "$n").pid"
        [[ ${#started[@]} -gt 1 ]] && stop_svcs "" "${started[@]}"
        die "$(node_label "$n") exited during startup (logs: $dir/logs)"
      fi
      if { [[ -z $offset ]] || tail -c "+$((offset + 1))" "$dir/logs/server.log" 2>/dev/null |
        grep -q 'Kafka Server started'; } && port_open "$(node_port "$n")"; then
        log "$(node_label "$n"): ready on 127.0.0.1:$(node_port "$n") (pid $pid, $((SECONDS - start))s)"
      else
        left+=("$e")
      fi
    done
    pending=("${left[@]}")
    [[ ${#pending[@]} -eq 0 ]] && return 0
    if ((SECONDS - start >= KAFKA_READY_TIMEOUT)); then
      for e in "${pending[@]}"; do
        IFS=: read -r n pid offset <<<"$e"
        print_tail "$(node_dir "$n")/logs/server.log" "${offset:-0}"
        print_tail "$(node_dir "$n")/logs/stdout.log"
      done
      [[ ${#started[@]} -gt 0 ]] && stop_svcs "" "${started[@]}" # don't leave half-started brokers behind
      die "$PROFILE not ready after ${KAFKA_READY_TIMEOUT}s: $(for e in "${pending[@]}"; do printf '%s ' "$(node_label "${e%%:*}")"; done)(logs: $PROFILE_DIR)"
    fi
    sleep 0.5
  done
}

stop_kafka() { # stop_kafka [N...]: the given nodes of the profile (default: all), at once
  local n svcs=() nodes=("$@") mode=""
  ((OPT_KILL)) && mode=--kill
  if [[ ${#nodes[@]} -eq 0 ]]; then for ((n = 1; n <= NODES; n++)); do nodes+=("$n"); done; fi
  for n in "${nodes[@]}"; do svcs+=("$(node_svc "$n")"); done
  stop_svcs "$mode" "${svcs[@]}"
}

# ---------------------------------------------------------------------------------------------
# ClickHouse
# ---------------------------------------------------------------------------------------------
# ClickHouse profiles, like Kafka's: each is its own set of servers (own state dir, fixed ports),
# all of them can run at once. Profile k's node N listens on 19500 + 100*k + 10*(N-1) + {0 native,
# 1 secure native, 2 http, 3 interserver}:
#   k replicas tls  state dir under $STATE_DIR          node 1 ports (node 2: +10)
#   0 1        no   clickhouse/        (the default)    19000 / - / 18123 / 19009 (PURCHASESYNC_CLICKHOUSE_*PORT)
#   1 1        yes  clickhouse-1-tls/node1/             19600 / 19601 / 19602 / 19603
#   2 2        no   clickhouse-2-plaintext/node{1,2}/   19700 / - / 19702 / 19703
#   3 2        yes  clickhouse-2-tls/node{1,2}/         19800 / 19801 / 19802 / 19803
# Every profile but the default has user purchasesync (and default) with a random password, made once
# in its state dir. Two replicas: one shard, two replicas (macros shard=01, replica=node<N>), cluster
# "purchasesync" in remote_servers, ON CLUSTER DDL, and one ZooKeeper (Debian's zookeeper package,
# a plain JVM on 127.0.0.1:$ZK_PORT, state in zookeeper/) shared by the replicated profiles, each
# under its own root znode. tls: a throwaway CA and one server certificate (SAN IP:127.0.0.1,
# DNS:localhost) in tls/; clients use the secure port only, while the plaintext native port stays
# open on loopback for the servers' own Distributed connections and ON CLUSTER DDL.
declare -A CH_PROFILE_INDEX=([1-plaintext]=0 [1-tls]=1 [2-plaintext]=2 [2-tls]=3)
CH_CLUSTER=purchasesync
CH_USER=purchasesync
ZK_PORT=19590
ZK_DIR=$STATE_DIR/zookeeper
ZK_READY_TIMEOUT=60

# set_ch_profile: from CH_REPLICAS and CH_TLS, sets CH_PROFILE (clickhouse for the default, else
# clickhouse-<replicas>-<plaintext|tls>), CH_PROFILE_DIR, CH_NODES, CH_BASE and CH_SECURITY.
set_ch_profile() {
  [[ $CH_REPLICAS =~ ^[12]$ ]] ||
    die "--clickhouse-replicas (or PURCHASESYNC_STACK_CLICKHOUSE_REPLICAS) must be 1 or 2, not '$CH_REPLICAS'"
  CH_SECURITY=plaintext
  [[ $CH_TLS == 1 ]] && CH_SECURITY=tls
  CH_NODES=$CH_REPLICAS
  local k=${CH_PROFILE_INDEX[$CH_REPLICAS-$CH_SECURITY]}
  if ((k == 0)); then
    CH_PROFILE=clickhouse CH_PROFILE_DIR=$CH_DIR CH_BASE=
  else
    CH_PROFILE=clickhouse-$CH_REPLICAS-$CH_SECURITY CH_PROFILE_DIR=$STATE_DIR/clickhouse-$CH_REPLICAS-$CH_SECURITY
    CH_BASE=$((19500 + 100 * k))
  fi
  CH_TLS_DIR=$CH_PROFILE_DIR/tls
  CH_SECRETS=$CH_PROFILE_DIR/password
}
ch_opts() { if [[ $CH_TLS == 1 ]]; then echo "--clickhouse-replicas $CH_REPLICAS --clickhouse-tls"; else echo "--clickhouse-replicas $CH_REPLICAS"; fi; }

# Per node N of the current ClickHouse profile:
ch_svc() { if [[ $CH_PROFILE == clickhouse ]]; then echo clickhouse; else echo "$CH_PROFILE-node$1"; fi; }
ch_dir() { if [[ $CH_PROFILE == clickhouse ]]; then echo "$CH_DIR"; else echo "$CH_PROFILE_DIR/node$1"; fi; }
ch_label() { svc_label "$(ch_svc "$1")"; }
ch_port() { # ch_port N native|secure|http|interserver
  if [[ $CH_PROFILE == clickhouse ]]; then
    case $2 in native) echo "$CH_TCP_PORT" ;; http) echo "$CH_HTTP_PORT" ;; interserver) echo "$CH_INTERSERVER_PORT" ;; *) return 1 ;; esac
    return
  fi
  local off
  case $2 in native) off=0 ;; secure) off=1 ;; http) off=2 ;; interserver) off=3 ;; esac
  echo $((CH_BASE + 10 * ($1 - 1) + off))
}
ch_client_port() { if [[ $CH_SECURITY == tls ]]; then ch_port "$1" secure; else ch_port "$1" native; fi; }

clickhouse_bin() {
  if [[ -x /usr/sbin/clickhouse-server ]]; then echo /usr/sbin/clickhouse-server; return; fi
  command -v clickhouse-server 2>/dev/null || return 1
}

# ch_query_node N SQL -> result on stdout (HTTP interface, the profile's credentials, TSV), fails if
# unreachable or refused. The password goes to curl on stdin, never on a command line.
ch_query_node() {
  if [[ $CH_PROFILE == clickhouse ]]; then
    curl -sf --max-time 10 "http://127.0.0.1:$(ch_port "$1" http)/" --data-binary "$2" 2>/dev/null
    return
  fi
  load_ch_password || return 1
  printf 'user = "%s:%s"\n' "$CH_USER" "$CH_PASSWORD" |
    curl -sf --max-time 10 -K - "http://127.0.0.1:$(ch_port "$1" http)/" --data-binary "$2" 2>/dev/null
}
ch_query() { ch_query_node 1 "$1"; } # ch_query SQL: on node 1

load_ch_password() { [[ -s $CH_SECRETS ]] && CH_PASSWORD=$(<"$CH_SECRETS") && [[ -n $CH_PASSWORD ]]; }
ensure_ch_password() {
  load_ch_password && return 0
  mkdir -p "$CH_PROFILE_DIR"
  (umask 077 && random_password >"$CH_SECRETS.tmp")
  mv "$CH_SECRETS.tmp" "$CH_SECRETS"
  load_ch_password
}

ensure_ch_tls() {
  local tmp
  [[ -s $CH_TLS_DIR/ca.pem && -s $CH_TLS_DIR/server.crt && -s $CH_TLS_DIR/server.key ]] && return 0
  command -v openssl >/dev/null || die "openssl not found: install it (apt-get install openssl) to make the $CH_PROFILE certificates"
  mkdir -p "$CH_PROFILE_DIR"
  tmp=$(mktemp -d "$CH_PROFILE_DIR/tls.tmp.XXXXXX")
  log "$CH_PROFILE: making a throwaway CA and a server certificate in $CH_TLS_DIR"
  if ! (umask 077 && openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 3650 \
    -subj "/CN=purchasesync local test CA ($CH_PROFILE)" -keyout "$tmp/ca.key" -out "$tmp/ca.pem" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign &&
    sign_cert "$tmp" server clickhouse serverAuth "subjectAltName=IP:127.0.0.1,DNS:localhost") >"$tmp/openssl.log" 2>&1; then
    print_tail "$tmp/openssl.log"
    rm -rf "$tmp"
    die "$CH_PROFILE: openssl could not make the test certificates (see above)"
  fi
  rm -f "$tmp/openssl.log"
  rm -rf "$CH_TLS_DIR"
  mv "$tmp" "$CH_TLS_DIR"
}

# write_ch_config N: config.xml from the template (as for the default), plus, for the other
# profiles, config.d/profile.xml (secure port, macros, ZooKeeper, cluster) and users.xml with the
# password.
write_ch_config() {
  local n=$1 dir r hash
  dir=$(ch_dir "$n")
  mkdir -p "$dir/conf" "$dir/data" "$dir/logs"
  sed -e "s|@TCP_PORT@|$(ch_port "$n" native)|g" -e "s|@HTTP_PORT@|$(ch_port "$n" http)|g" \
    -e "s|@INTERSERVER_PORT@|$(ch_port "$n" interserver)|g" -e "s|@DATA_DIR@|$dir/data|g" \
    -e "s|@LOG_DIR@|$dir/logs|g" -e "s|@CONF_DIR@|$dir/conf|g" \
    "$SCRIPT_DIR/clickhouse/config.xml.tmpl" >"$dir/conf/config.xml"
  if [[ $CH_PROFILE == clickhouse ]]; then
    cp "$SCRIPT_DIR/clickhouse/users.xml" "$dir/conf/users.xml"
    return
  fi
  hash=$(printf '%s' "$CH_PASSWORD" | sha256sum | cut -d' ' -f1)
  (umask 077 && sed -e "s|<password></password>|<password_sha256_hex>$hash</password_sha256_hex>|" \
    -e "s|^\( *\)<users>|&\n\1    <$CH_USER><password_sha256_hex>$hash</password_sha256_hex><networks><ip>::1</ip><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></$CH_USER>|" \
    "$SCRIPT_DIR/clickhouse/users.xml" >"$dir/conf/users.xml")
  mkdir -p "$dir/conf/config.d"
  {
    echo '<?xml version="1.0"?>'
    echo "<!-- Generated by stack.sh for profile $CH_PROFILE, node $n. -->"
    echo '<yandex>'
    if [[ $CH_SECURITY == tls ]]; then
      echo "    <tcp_port_secure>$(ch_port "$n" secure)</tcp_port_secure>"
      echo "    <openSSL><server><certificateFile>$CH_TLS_DIR/server.crt</certificateFile><privateKeyFile>$CH_TLS_DIR/server.key</privateKeyFile>"
      echo "        <verificationMode>none</verificationMode><loadDefaultCAFile>false</loadDefaultCAFile><cacheSessions>true</cacheSessions>"
      echo "        <disableProtocols>sslv2,sslv3,tlsv1,tlsv1_1</disableProtocols><preferServerCiphers>true</preferServerCiphers></server></openSSL>"
    fi
    echo "    <macros><shard>01</shard><replica>node$n</replica></macros>"
    if ((CH_NODES > 1)); then
      echo "    <zookeeper><node><host>127.0.0.1</host><port>$ZK_PORT</port></node><root>/$CH_PROFILE</root><session_timeout_ms>10000</session_timeout_ms></zookeeper>"
      echo "    <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>"
      echo "    <remote_servers><$CH_CLUSTER><shard><internal_replication>true</internal_replication>"
      for ((r = 1; r <= CH_NODES; r++)); do
        echo "        <replica><host>127.0.0.1</host><port>$(ch_port "$r" native)</port><user>$CH_USER</user><password>$CH_PASSWORD</password></replica>"
      done
      echo "    </shard></$CH_CLUSTER></remote_servers>"
    fi
    echo '</yandex>'
  } >"$dir/conf/config.d/profile.xml"
  chmod 600 "$dir/conf/config.d/profile.xml"
}

# start_clickhouse [N...]: the given nodes of the ClickHouse profile (default: all), and ZooKeeper
# first when the profile is replicated.
start_clickhouse() {
  local pid bin n dir offset nodes=("$@") waits=() kind
  if [[ ${#nodes[@]} -eq 0 ]]; then for ((n = 1; n <= CH_NODES; n++)); do nodes+=("$n"); done; fi
  command -v curl >/dev/null || die "curl not found: install curl (used to check ClickHouse readiness)"
  if ((CH_NODES > 1)); then
    start_zookeeper
    zk_ensure_root "/$CH_PROFILE"
  fi
  if [[ $CH_PROFILE != clickhouse ]]; then ensure_ch_password; fi
  [[ $CH_SECURITY == tls ]] && ensure_ch_tls
  for n in "${nodes[@]}"; do
    if pid=$(svc_pid "$(ch_svc "$n")"); then
      log "$(ch_label "$n"): already running (pid $pid)"
      waits+=("$n:$pid:0:0")
      continue
    fi
    if ! bin=$(clickhouse_bin); then
      apt_install clickhouse-server clickhouse-client
      bin=$(clickhouse_bin) || die "clickhouse-server still missing after apt-get install"
    fi
    for kind in native http interserver $([[ $CH_SECURITY == tls ]] && echo secure); do
      if [[ $CH_PROFILE == clickhouse ]]; then
        require_free_port "$(ch_port "$n" "$kind")" "set PURCHASESYNC_CLICKHOUSE_$(case $kind in native) ;; http) echo HTTP_ ;; interserver) echo INTERSERVER_ ;; esac)PORT to a free port"
      else
        require_free_port "$(ch_port "$n" "$kind")" "the ports of profile $CH_PROFILE are fixed (see the header of stack.sh's ClickHouse section): stop what holds it"
      fi
    done
    # Own config instead of /etc/clickhouse-server: loopback only, our ports, every path under the
    # state dir; the package's service (if any) is never touched.
    write_ch_config "$n"
    dir=$(ch_dir "$n")
    rotate "$dir/logs/stdout.log"
    log "$(ch_label "$n"): starting on 127.0.0.1:$(ch_client_port "$n") (native$([[ $CH_SECURITY == tls ]] && echo " TLS")), :$(ch_port "$n" http) (http)"
    # Foreground mode (no --daemon) so the recorded pid is the server itself.
    offset=0 # the error log is appended to across restarts (like Kafka's server.log)
    [[ -f $dir/logs/clickhouse-server.err.log ]] && offset=$(stat -c %s "$dir/logs/clickhouse-server.err.log")
    pid=$(launch "$(ch_svc "$n")" "$dir" "$dir/logs/stdout.log" "$bin" "--config-file=$dir/conf/config.xml")
    waits+=("$n:$pid:1:$offset")
  done
  for e in "${waits[@]}"; do
    IFS=: read -r n pid ours offset <<<"$e"
    wait_clickhouse "$n" "$pid" "$ours" "$offset"
  done
}

wait_clickhouse() { # wait_clickhouse N PID STARTED_BY_US ERRLOG_OFFSET
  local n=$1 pid=$2 ours=$3 err_offset=$4 start=$SECONDS dir svc
  dir=$(ch_dir "$n") svc=$(ch_svc "$n")
  while :; do
    if ! alive "$pid"; then
      print_tail "$dir/logs/clickhouse-server.err.log" "$err_offset"
      print_tail "$dir/logs/stdout.log"
      rm -f "$RUN_DIR/$svc.pid"
      die "$(ch_label "$n") exited during startup (logs: $dir/logs)"
    fi
    if [[ $(ch_query_node "$n" 'SELECT 1') == 1 ]]; then
      log "$(ch_label "$n"): ready on 127.0.0.1:$(ch_client_port "$n") (pid $pid, $((SECONDS - start))s)"
      return 0
    fi
    if ((SECONDS - start >= CH_READY_TIMEOUT)); then
      print_tail "$dir/logs/clickhouse-server.err.log" "$err_offset"
      print_tail "$dir/logs/stdout.log"
      ((ours)) && stop_svc "$svc"
      die "$(ch_label "$n") not ready after ${CH_READY_TIMEOUT}s (logs: $dir/logs)"
    fi
    sleep 0.5
  done
}

# stop_clickhouse [N...]: the given nodes of the profile (default: all, and then ZooKeeper if no
# other replicated profile runs), at once.
stop_clickhouse() {
  local n svcs=() nodes=("$@")
  if [[ ${#nodes[@]} -eq 0 ]]; then for ((n = 1; n <= CH_NODES; n++)); do nodes+=("$n"); done; fi
  for n in "${nodes[@]}"; do svcs+=("$(ch_svc "$n")"); done
  stop_svcs "$([[ $OPT_KILL == 1 ]] && echo --kill)" "${svcs[@]}"
  # The whole profile stopped: ZooKeeper too, unless another replicated profile still uses it.
  if [[ $# -eq 0 ]] && ((CH_NODES > 1)) && svc_pid zookeeper >/dev/null; then
    local s
    while read -r s; do
      [[ $s == clickhouse-1-* ]] && continue
      svc_pid "$s" >/dev/null && return 0
    done < <(all_ch_profile_svcs)
    stop_svc zookeeper
  fi
}

# Every ClickHouse service of every profile but the default (for down and status).
all_ch_profile_svcs() {
  local p n
  for p in 1-tls 2-plaintext 2-tls; do
    for ((n = 1; n <= ${p%%-*}; n++)); do echo "clickhouse-$p-node$n"; done
  done
}

# ZooKeeper for the replicated ClickHouse profiles: Debian's package (its jar's manifest names its
# dependencies), standalone, on loopback.
zookeeper_jar() { [[ -f /usr/share/java/zookeeper.jar ]] && echo /usr/share/java/zookeeper.jar; }
zk_ok() { [[ $( (exec 5<>"/dev/tcp/127.0.0.1/$ZK_PORT" && echo ruok >&5 && timeout 2 cat <&5) 2>/dev/null) == imok ]]; }

# zk_ensure_root ZNODE: the profile's root znode, which ClickHouse 18.16 needs to exist before it
# starts (it crashes on a missing <root>). Made once, with the package's own client.
zk_ensure_root() {
  local out
  [[ -f $ZK_DIR/roots && $(grep -cxF "$1" "$ZK_DIR/roots") -gt 0 ]] && return 0
  need_java
  out=$("$JAVA" -cp "$(zookeeper_jar)" org.apache.zookeeper.ZooKeeperMain -server "127.0.0.1:$ZK_PORT" create "$1" 2>&1) ||
    [[ $out == *"already exists"* ]] || [[ $out == *"Created $1"* ]] || { printf '%s\n' "$out" | tail -5 >&2; die "zookeeper: cannot create $1"; }
  echo "$1" >>"$ZK_DIR/roots"
}

start_zookeeper() {
  local pid jar start=$SECONDS
  if pid=$(svc_pid zookeeper); then
    zk_ok || sleep 2
    log "zookeeper: already running (pid $pid)"
    return
  fi
  need_java
  jar=$(zookeeper_jar) || { apt_install zookeeper; jar=$(zookeeper_jar) || die "zookeeper still missing after apt-get install"; }
  require_free_port "$ZK_PORT" "ZooKeeper's port is fixed: stop what holds it"
  mkdir -p "$ZK_DIR/data" "$ZK_DIR/logs"
  printf '%s\n' "tickTime=2000" "dataDir=$ZK_DIR/data" "clientPort=$ZK_PORT" "clientPortAddress=127.0.0.1" \
    "admin.enableServer=false" "4lw.commands.whitelist=ruok,srvr" "maxClientCnxns=0" >"$ZK_DIR/zoo.cfg"
  rotate "$ZK_DIR/logs/stdout.log"
  log "zookeeper: starting on 127.0.0.1:$ZK_PORT"
  pid=$(launch zookeeper "$ZK_DIR" "$ZK_DIR/logs/stdout.log" "$JAVA" -Xms64m -Xmx256m \
    "-Dzookeeper.log.dir=$ZK_DIR/logs" -cp "$jar" org.apache.zookeeper.server.quorum.QuorumPeerMain "$ZK_DIR/zoo.cfg")
  until zk_ok; do
    alive "$pid" || { print_tail "$ZK_DIR/logs/stdout.log"; die "zookeeper exited during startup (logs: $ZK_DIR/logs)"; }
    ((SECONDS - start < ZK_READY_TIMEOUT)) || { stop_svc zookeeper; die "zookeeper not ready after ${ZK_READY_TIMEOUT}s"; }
    sleep 0.5
  done
  log "zookeeper: ready on 127.0.0.1:$ZK_PORT (pid $pid, $((SECONDS - start))s)"
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

print_env() { # print_env [with-prometheus]: the profile's lines, on the saved stdout (fd 3) only
  local lines=("PURCHASESYNC_KAFKA_BROKERS=$(brokers_list)")
  if [[ $KAFKA_SECURITY == sasl_ssl ]]; then
    { load_secrets && tls_complete; } ||
      die "$PROFILE has no certificates or passwords yet: run stack.sh up $(profile_opts) first"
    [[ $TLS_DIR =~ ^[A-Za-z0-9_./+-]+$ ]] ||
      die "$TLS_DIR has characters that eval would mangle: set PURCHASESYNC_STACK_DIR to a plainer path"
    lines+=(
      PURCHASESYNC_KAFKA_TLS=true
      "PURCHASESYNC_KAFKA_TLS_CAFILE=$TLS_DIR/ca.pem"
      PURCHASESYNC_KAFKA_SASL_MECHANISM=scram-sha-512
      "PURCHASESYNC_KAFKA_SASL_USERNAME=$SASL_USER"
      "PURCHASESYNC_KAFKA_SASL_PASSWORD=$SASL_PASSWORD"
      "PURCHASESYNC_STACK_KAFKA_CLIENT_CERT=$TLS_DIR/client.crt"
      "PURCHASESYNC_STACK_KAFKA_CLIENT_KEY=$TLS_DIR/client.key"
    )
  fi
  local n addrs=() https=()
  for ((n = 1; n <= CH_NODES; n++)); do
    addrs+=("127.0.0.1:$(ch_client_port "$n")")
    https+=("http://127.0.0.1:$(ch_port "$n" http)")
  done
  lines+=(
    "PURCHASESYNC_CLICKHOUSE_ADDR=$(IFS=,; echo "${addrs[*]}")"
    "PURCHASESYNC_CLICKHOUSE_HTTP=${https[0]}"
  )
  if [[ $CH_PROFILE != clickhouse ]]; then
    load_ch_password || die "$CH_PROFILE has no password yet: run stack.sh up $(ch_opts) first"
    lines+=("PURCHASESYNC_CLICKHOUSE_USER=$CH_USER" "PURCHASESYNC_CLICKHOUSE_PASSWORD=$CH_PASSWORD"
      "PURCHASESYNC_STACK_CLICKHOUSE_HTTP_ALL=$(IFS=,; echo "${https[*]}")")
    ((CH_NODES > 1)) && lines+=("PURCHASESYNC_CLICKHOUSE_CLUSTER=$CH_CLUSTER")
  fi
  if [[ $CH_SECURITY == tls ]]; then
    [[ $CH_TLS_DIR =~ ^[A-Za-z0-9_./+-]+$ ]] ||
      die "$CH_TLS_DIR has characters that eval would mangle: set PURCHASESYNC_STACK_DIR to a plainer path"
    lines+=(PURCHASESYNC_CLICKHOUSE_TLS=true "PURCHASESYNC_CLICKHOUSE_TLS_CAFILE=$CH_TLS_DIR/ca.pem")
  fi
  if [[ ${1:-} == with-prometheus ]] || svc_pid prometheus >/dev/null; then
    lines+=("PURCHASESYNC_PROMETHEUS_URL=http://127.0.0.1:$PROM_PORT")
  fi
  printf '%s\n' "${lines[@]}" >&3
}

cmd_up() {
  parse_opts up "profile chprofile --with-prometheus" "$@"
  take_lock
  start_kafka
  start_clickhouse
  if [[ $OPT_PROM == 1 ]]; then start_prometheus; fi
  print_env
}

cmd_down() {
  local svc svcs pids=() p
  parse_opts down "--purge" "$@"
  take_lock
  mapfile -t svcs < <(all_kafka_svcs)
  mapfile -t -O "${#svcs[@]}" svcs < <(all_ch_profile_svcs)
  svcs+=(clickhouse zookeeper prometheus)
  # All services get SIGTERM at once, then share the one timeout.
  for svc in "${svcs[@]}"; do
    while read -r p; do [[ -n $p ]] && pids+=("$p"); done < <(svc_pids "$svc")
  done
  if [[ ${#pids[@]} -gt 0 ]]; then
    log "stopping pids ${pids[*]}"
    terminate "${pids[@]}"
  fi
  rm -f "$RUN_DIR"/*.pid
  for svc in "${svcs[@]}"; do
    [[ -z $(svc_pids "$svc") ]] || die "$(svc_label "$svc") is still running after SIGKILL: $(svc_pids "$svc" | tr '\n' ' ')"
  done
  if ((OPT_PURGE)); then
    log "deleting $STATE_DIR"
    rm -rf "$STATE_DIR"
  fi
  log "stack is down"
}

cmd_status() {
  local pid v p n lines up
  v=$(kafka_libs_version)
  if pid=$(svc_pid kafka); then
    echo "kafka: running (pid $pid, 127.0.0.1:$KAFKA_PORT, controller 127.0.0.1:$KAFKA_CONTROLLER_PORT, Kafka ${v:-?})"
  else
    echo "kafka: stopped${v:+ (Kafka $v jars cached)}"
  fi
  # The other profiles: every node while any runs; one line for a stopped profile that has state.
  for p in 1-sasl_ssl 3-plaintext 3-sasl_ssl; do
    KAFKA_BROKERS=${p%%-*} KAFKA_SECURITY=${p#*-}
    set_profile
    lines=() up=0
    for ((n = 1; n <= NODES; n++)); do
      if pid=$(svc_pid "$(node_svc "$n")"); then
        up=1
        lines+=("$(node_label "$n"): running (pid $pid, 127.0.0.1:$(node_port "$n") ${KAFKA_SECURITY^^}, controller 127.0.0.1:$(node_cport "$n"), Kafka ${v:-?})")
      else
        lines+=("$(node_label "$n"): stopped")
      fi
    done
    if ((up)); then
      printf '%s\n' "${lines[@]}"
    elif [[ -d $PROFILE_DIR ]]; then
      echo "$PROFILE: stopped (state in $PROFILE_DIR)"
    fi
  done
  CH_REPLICAS=1 CH_TLS=0
  set_ch_profile
  if pid=$(svc_pid clickhouse); then
    v=$(ch_query 'SELECT version()') || v='?'
    echo "clickhouse: running (pid $pid, native 127.0.0.1:$CH_TCP_PORT, http http://127.0.0.1:$CH_HTTP_PORT, ClickHouse $v)"
  else
    echo "clickhouse: stopped"
  fi
  for p in 1-tls 2-plaintext 2-tls; do
    CH_REPLICAS=${p%%-*} CH_TLS=$([[ $p == *tls ]] && echo 1 || echo 0)
    set_ch_profile
    lines=() up=0
    for ((n = 1; n <= CH_NODES; n++)); do
      if pid=$(svc_pid "$(ch_svc "$n")"); then
        up=1
        v=$(ch_query_node "$n" 'SELECT version()') || v='?'
        lines+=("$(ch_label "$n"): running (pid $pid, native 127.0.0.1:$(ch_client_port "$n") ${CH_SECURITY^^}, http http://127.0.0.1:$(ch_port "$n" http), ClickHouse $v)")
      else
        lines+=("$(ch_label "$n"): stopped")
      fi
    done
    if ((up)); then
      printf '%s\n' "${lines[@]}"
    elif [[ -d $CH_PROFILE_DIR ]]; then
      echo "$CH_PROFILE: stopped (state in $CH_PROFILE_DIR)"
    fi
  done
  if pid=$(svc_pid zookeeper); then echo "zookeeper: running (pid $pid, 127.0.0.1:$ZK_PORT)"; fi
  if pid=$(svc_pid prometheus); then
    echo "prometheus: running (pid $pid, http://127.0.0.1:$PROM_PORT)"
  else
    echo "prometheus: stopped"
  fi
}

# cmd_query [--node N] [CLICKHOUSE PROFILE] SQL: one query on one server of the profile, with its
# credentials, over HTTP; the result as TSV on stdout.
cmd_query() {
  local sql=${*: -1}
  [[ $# -ge 1 ]] || die "query: give the SQL as the last argument"
  parse_opts query "chprofile --node" "${@:1:$#-1}"
  local n=${OPT_NODE:-1} out auth=''
  if [[ $CH_PROFILE != clickhouse ]]; then
    load_ch_password || die "$CH_PROFILE has no password yet: run stack.sh up $(ch_opts) first"
    auth="user = \"$CH_USER:$CH_PASSWORD\""
  fi
  out=$(printf '%s\n' "$auth" | curl -sS --max-time 30 -K - -w '\n%{http_code}' \
    "http://127.0.0.1:$(ch_port "$n" http)/" --data-binary "$sql") || die "query: $(ch_label "$n") did not answer"
  [[ ${out##*$'\n'} == 200 ]] || die "query on $(ch_label "$n"): $(printf '%s' "${out%$'\n'*}" | tr '\n' ' ')"
  out=${out%$'\n'*}
  printf '%s' "$out" >&3 # TSV, each row ending in a newline
}

usage() {
  sed -n '/^# Usage:/,/^# Only the/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
}

main() {
  local cmd=${1:-} mode=""
  [[ $# -gt 0 ]] && shift
  case $cmd in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    status) parse_opts status "" "$@"; cmd_status >&3 ;;
    env)
      parse_opts env "profile chprofile --with-prometheus" "$@"
      print_env "$([[ $OPT_PROM == 1 ]] && echo with-prometheus)"
      ;;
    start-kafka) parse_opts start-kafka "profile --node" "$@"; take_lock; start_kafka ${OPT_NODE:+"$OPT_NODE"} ;;
    stop-kafka) parse_opts stop-kafka "profile --node --kill" "$@"; take_lock; stop_kafka ${OPT_NODE:+"$OPT_NODE"} ;;
    start-clickhouse) parse_opts "$cmd" "chprofile --node" "$@"; take_lock; start_clickhouse ${OPT_NODE:+"$OPT_NODE"} ;;
    stop-clickhouse) parse_opts "$cmd" "chprofile --node --kill" "$@"; take_lock; stop_clickhouse ${OPT_NODE:+"$OPT_NODE"} ;;
    query) cmd_query "$@" ;;
    start-prometheus) parse_opts "$cmd" "" "$@"; take_lock; "start_${cmd#start-}" ;;
    stop-prometheus)
      parse_opts "$cmd" "--kill" "$@"
      ((OPT_KILL)) && mode=--kill
      take_lock
      stop_svc "${cmd#stop-}" "$mode"
      ;;
    -h | --help | help) usage ;;
    *) usage; exit 2 ;;
  esac
}

main "$@"
