#!/usr/bin/env bash
# The README's second command: every test, on the real local stack.
#
#   deploy/local/test.sh [go test flags...]     e.g. deploy/local/test.sh -run Functional ./processors/...
#
# Starts Kafka, ClickHouse and Prometheus (deploy/local/stack.sh up), plus the secured
# three-broker Kafka profile (stack.sh up --kafka-brokers 3 --kafka-security sasl_ssl),
# installs the chdb-core wheel (current ClickHouse engine, used to check our SQL on it)
# and Debian's chromium (the merchant page's browser tests),
# fetches Shopify's Admin API schemas (deploy/local/shopify-schema.sh),
# then runs `go test` with PURCHASESYNC_FUNCTIONAL_TESTS=1, so a test whose service is
# missing FAILS instead of skipping; then the chaos tests, then a short chaos run
# (deploy/local/chaos.sh) with the ledger check. Services this script started are stopped at the end;
# a stack or cluster that was already running is left running.
#
# The tests get the single plaintext broker's lines as they are (PURCHASESYNC_KAFKA_*)
# and the cluster's Kafka lines renamed with the prefix PURCHASESYNC_CLUSTER_
# (PURCHASESYNC_CLUSTER_KAFKA_BROKERS, ..._KAFKA_TLS_CAFILE, ..._KAFKA_SASL_PASSWORD,
# PURCHASESYNC_CLUSTER_STACK_KAFKA_CLIENT_CERT/_KEY), plus PURCHASESYNC_CLUSTER_PROFILE,
# the stack.sh options of the cluster (see deploy/testenv: KafkaCluster, Stack).
# Likewise the two-replica ClickHouse over TLS with a password (stack.sh up
# --clickhouse-replicas 2 --clickhouse-tls, with its ZooKeeper): its lines with the prefix
# PURCHASESYNC_CHCLUSTER_ (PURCHASESYNC_CHCLUSTER_CLICKHOUSE_ADDR, ..._PASSWORD, ...), plus
# PURCHASESYNC_CHCLUSTER_PROFILE (see deploy/testenv: ClickHouseCluster).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
# The default stack must be the default profile, whatever the caller's shell selects
# (the tests' own stack.sh calls inherit this environment too).
unset PURCHASESYNC_STACK_KAFKA_BROKERS PURCHASESYNC_STACK_KAFKA_SECURITY
unset PURCHASESYNC_STACK_CLICKHOUSE_REPLICAS PURCHASESYNC_STACK_CLICKHOUSE_TLS
# Nor may a secured profile's client settings, eval'ed into the caller's shell earlier,
# leak into the plaintext broker's PURCHASESYNC_KAFKA_* or the single ClickHouse's
# PURCHASESYNC_CLICKHOUSE_* (the stack prints no such lines),
# nor stale cluster lines into the fresh ones.
for v in $(compgen -v PURCHASESYNC_KAFKA_TLS) $(compgen -v PURCHASESYNC_KAFKA_SASL) $(compgen -v PURCHASESYNC_CLUSTER_) \
  $(compgen -v PURCHASESYNC_CHCLUSTER_) $(compgen -v PURCHASESYNC_CLICKHOUSE_TLS) \
  PURCHASESYNC_CLICKHOUSE_USER PURCHASESYNC_CLICKHOUSE_PASSWORD PURCHASESYNC_CLICKHOUSE_PASSWORD_FILE \
  PURCHASESYNC_CLICKHOUSE_CLUSTER; do
  unset "$v"
done
CLUSTER_PROFILE="--kafka-brokers 3 --kafka-security sasl_ssl"
read -r -a cluster_opts <<<"$CLUSTER_PROFILE"
CHCLUSTER_PROFILE="--clickhouse-replicas 2 --clickhouse-tls"
read -r -a chcluster_opts <<<"$CHCLUSTER_PROFILE"

# Go may be installed but not on a non-login shell's PATH.
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
for tool in go python3 npm; do
  command -v "$tool" >/dev/null || { echo "test.sh: $tool is not installed (need Go 1.26+, Python 3 and npm)" >&2; exit 1; }
done

started=0 cluster_started=0 chcluster_started=0
# Not a pipe into grep -q: with pipefail, grep closing early would make
# `status` die of SIGPIPE and the check fail even when Kafka runs.
status=$(bash deploy/local/stack.sh status)
if ! grep -q '^kafka: running' <<<"$status"; then
  started=1
fi
if ! grep -q '^kafka-3-sasl_ssl/node[0-9]*: running' <<<"$status"; then
  cluster_started=1
fi
if ! grep -q '^clickhouse-2-tls/node[0-9]*: running' <<<"$status"; then
  chcluster_started=1
fi
# `down` stops every profile; a cluster started beside an already running stack is
# stopped on its own.
stop_stack() {
  if [ "$started" = 1 ]; then
    bash deploy/local/stack.sh down >&2 || true
    return
  fi
  if [ "$cluster_started" = 1 ]; then
    bash deploy/local/stack.sh stop-kafka "${cluster_opts[@]}" >&2 || true
  fi
  if [ "$chcluster_started" = 1 ]; then
    bash deploy/local/stack.sh stop-clickhouse "${chcluster_opts[@]}" >&2 || true
  fi
}
trap stop_stack EXIT

t0=$(date +%s)
env_lines=$(bash deploy/local/stack.sh up --with-prometheus)
set -a; eval "$env_lines"; set +a
# Only the cluster's Kafka lines, renamed; the ClickHouse/Prometheus lines are the same.
cluster_lines=$(bash deploy/local/stack.sh up "${cluster_opts[@]}" |
  sed -n -e 's/^PURCHASESYNC_KAFKA_/PURCHASESYNC_CLUSTER_KAFKA_/p' \
    -e 's/^PURCHASESYNC_STACK_KAFKA_/PURCHASESYNC_CLUSTER_STACK_KAFKA_/p')
set -a; eval "$cluster_lines"; set +a
export PURCHASESYNC_CLUSTER_PROFILE="$CLUSTER_PROFILE"
# Only the ClickHouse cluster's lines (and ZooKeeper's start), renamed.
chcluster_lines=$(bash deploy/local/stack.sh up "${chcluster_opts[@]}" |
  sed -n -e 's/^PURCHASESYNC_CLICKHOUSE_/PURCHASESYNC_CHCLUSTER_CLICKHOUSE_/p' \
    -e 's/^PURCHASESYNC_STACK_CLICKHOUSE_/PURCHASESYNC_CHCLUSTER_STACK_CLICKHOUSE_/p')
set -a; eval "$chcluster_lines"; set +a
export PURCHASESYNC_CHCLUSTER_PROFILE="$CHCLUSTER_PROFILE"
echo "test.sh: stack and cluster ready in $(( $(date +%s) - t0 ))s" >&2

# chdb-core runs the current ClickHouse engine in-process: the schema and analyst
# SQL are checked against it as well as against the local 18.16 server.
if ! python3 -c 'import chdb' 2>/dev/null; then
  # A system Python (PEP 668) refuses user installs; the wheel is
  # self-contained, so overriding that is safe on a test machine.
  python3 -m pip install --quiet --disable-pip-version-check chdb-core >&2 \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages chdb-core >&2 \
    || { echo "test.sh: cannot install chdb-core from PyPI (python3 -m pip install chdb-core)" >&2; exit 1; }
  python3 -c 'import chdb' || { echo "test.sh: chdb-core installed but 'import chdb' fails" >&2; exit 1; }
fi

# Debian's Chromium drives the merchant page's browser tests (chromedp, headless).
if [ -z "${PURCHASESYNC_CHROMIUM:-}" ] && ! command -v chromium >/dev/null; then
  [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null \
    || { echo "test.sh: chromium is missing: install Debian's chromium (apt-get install chromium) or set PURCHASESYNC_CHROMIUM" >&2; exit 1; }
  echo "test.sh: installing chromium with apt-get" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2 \
    || { echo "test.sh: apt-get install chromium failed" >&2; exit 1; }
fi

# Shopify's published Admin API GraphQL schemas (npm @shopify/dev-mcp, pinned in the script;
# fetched once into deploy/local/.cache/): the tests check every GraphQL document the Admin API
# client sends and every answer the fake Shopify gives against the schema of the API version in
# use (PURCHASESYNC_SHOPIFY_SCHEMA_DIR; processors/control/shopifyfake/schemacheck).
schema_line=$(bash deploy/local/shopify-schema.sh)
set -a; eval "$schema_line"; set +a

export PURCHASESYNC_FUNCTIONAL_TESTS=1
if [ $# -gt 0 ]; then
  go test -count=1 -timeout 40m "$@"
else
  # Phase 1: every package, in parallel. Phase 2: the chaos tests, which kill and
  # restart the cluster's brokers (and a replica of the ClickHouse cluster), one at a
  # time (-p 1) and after phase 1, so that no other test shares a cluster while one of
  # its servers is down.
  go test -count=1 -timeout 40m -skip '^TestChaos' ./...
  echo "test.sh: phase 1 done in $(( $(date +%s) - t0 ))s; chaos tests next" >&2
  # -v: the measured figures (acknowledged during the fault, longest 503 stretch, time
  # to ready) are logged by the tests and belong in CI's output.
  PURCHASESYNC_CHAOS_TESTS=1 go test -count=1 -p 1 -timeout 30m -run '^TestChaos' -v ./cmd/purchasesync ./sinks/clickhouse
  echo "test.sh: chaos tests done in $(( $(date +%s) - t0 ))s; the short chaos run next" >&2
  # Phase 3: the whole pipeline, split into its processes, under every fault kind while the
  # ledger check sends 3,000 orders (300 s of faults); exits non-zero on any ledger error.
  bash deploy/local/chaos.sh --orders 3000 --rate 10
fi
echo "test.sh: done in $(( $(date +%s) - t0 ))s" >&2
