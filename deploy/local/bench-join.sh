#!/usr/bin/env bash
# The join benchmark of issue 16: purchasesync join against a Kafka Streams peer on one backlog.
#
#   deploy/local/bench-join.sh [--orders N] [--partitions 6] [--sites 20] [--grace 5s]
#                              [--peer kstreams|none] [--restore] [--json] [other joinbench flags]
#
# Builds bin/purchasesync, bin/joinbench and (with --peer kstreams, the default) the Kafka Streams
# peer (deploy/joinbench/kstreams, `mvn package`: Kafka Streams 4.4.0 from Maven Central, output in
# its ignored target/). Then bin/joinbench (package deploy/joinbench) creates scratch topics under a
# random prefix, fills a backlog shaped like the issue's (N orders, 90 % with both a Shopify
# orders/create webhook and a storefront event, 10 % webhook-only, ~1.4 KB per record, received-at
# stamps 5,000 orders/s apart: --rate), runs `purchasesync join` on it as its own process and
# times it from process start until its group has committed both inputs to their end offsets (peak RSS from
# /proc VmHWM, held keys and heap from its /metrics); with --restore kills it with SIGKILL and
# times its restart (/readyz, its restore metrics and "partition restored" lines); then runs the
# peer on the same backlog, timed the same way, and prints one table with the ratios (--json:
# one JSON object per line instead). The scratch topics and groups are deleted at the end.
#
# Needs a running plaintext Kafka: $PURCHASESYNC_KAFKA_BROKERS, else 127.0.0.1:19092, the local
# stack's (`set -a; eval "$(deploy/local/stack.sh up)"; set +a`). This script starts nothing else.
# `bin/joinbench -h` lists every flag (--rate, --seed, --window, --peer.heap, --keep-topics, ...).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin

peer=kstreams
args=("$@")
while [ $# -gt 0 ]; do
  case $1 in
    --peer | -peer) peer=$2; shift 2 ;;
    --peer=* | -peer=*) peer=${1#*=}; shift ;;
    -h | --help) sed -n 2,21p "$0"; exit 0 ;;
    *) shift ;;
  esac
done

mkdir -p bin
go build -o bin/purchasesync ./cmd/purchasesync
go build -o bin/joinbench ./cmd/joinbench
if [ "$peer" = kstreams ]; then
  command -v mvn >/dev/null || { echo "bench-join.sh: mvn not found: install Maven (apt-get install maven), or run with --peer none" >&2; exit 1; }
  # clean: copy-dependencies never removes a jar a former pom brought.
  # (sed: Debian's mvn prints bare colour resets even in batch mode; pipefail keeps mvn's status.)
  mvn -q -B -Dstyle.color=never -f deploy/joinbench/kstreams/pom.xml clean package | sed 's/\x1b\[[0-9;]*m//g'
fi
export PURCHASESYNC_KAFKA_BROKERS=${PURCHASESYNC_KAFKA_BROKERS:-127.0.0.1:19092}
exec ./bin/joinbench -purchasesync bin/purchasesync -peer.dir deploy/joinbench/kstreams "${args[@]}"
