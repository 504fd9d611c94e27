#!/usr/bin/env bash
# Cross-instance fan-out through a cluster: subscribers on one instance,
# the publisher on another, so every publish crosses the cluster's broker.
# Clusters, run alternately round by round (this machine's speed drifts):
#
#   go-scc    our scc-state, our scc-broker, two scserver workers (-broker scc://)
#   go-redis  two scserver workers on Redis (-broker redis://, $REDIS_URL)
#   node-scc  the Node scc-broker 10.0.1 and two Node workers
#             (socketcluster-server 20 + scc-broker-client 9.2.0); the
#             coordinator is our scc-state, as npm serves no scc-state (it
#             is not on the message path)
#
# Two runs per cluster and round:
#   rate    RATE publishes/s (default 30: 15 000 deliveries/s with 500
#           subscribers, which every cluster sustains): end-to-end latency
#           and the subscribers' instance's CPU per delivery;
#   window  as fast as a window of WINDOW unacknowledged publishes allows:
#           throughput. Go clusters only: a Node worker acknowledges a
#           publish before the cluster has it, so the window never holds
#           its queues back and the run measures an unbounded backlog.
# (fanout -search, the highest rate with p99 under a bound, is too
# sensitive to a shared machine's pauses to compare clusters here.)
#
# Writes bench/results/scc.jsonl (every run) and bench/results/scc.md
# (medians per cluster, ratios to go-scc).
#
#   bash bench/scc.sh
#   ROUNDS=1 SUBS=200 CLUSTERS="go-scc node-scc" bash bench/scc.sh
#
# Needs: Go, Node 20, `npm ci` in scc-interop/, a Redis server.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
SUBS=${SUBS:-500}
WINDOW=${WINDOW:-32}
RATE=${RATE:-30}
DURATION=${DURATION:-3s}
CLUSTERS=${CLUSTERS:-"go-scc go-redis node-scc"}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
out=bench/results
mkdir -p "$out" bin
jsonl=$out/scc.jsonl
: >"$jsonl"
for c in scbench scserver scc-state scc-broker; do go build -o "bin/$c" "./cmd/$c"; done

pids=()
# Processes are killed outright: a draining scserver would hold its port.
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
trap cleanup EXIT

wait_http() { # port path
  for _ in $(seq 1 300); do
    curl -fs "http://127.0.0.1:$1$2" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "nothing on port $1$2" >&2
  return 1
}

# waits until a worker has joined and knows one broker
wait_joined() { # port kind
  for _ in $(seq 1 300); do
    if [ "$2" = go ]; then
      curl -fs "http://127.0.0.1:$1/metrics" 2>/dev/null | grep -q '^socketcluster_scc_brokers 1$' && return 0
    else
      curl -fs "http://127.0.0.1:$1/scc-status" 2>/dev/null | grep -q '"brokers":\["' && return 0
    fi
    sleep 0.1
  done
  echo "worker on $1 did not join" >&2
  return 1
}

STATE=17771 BROKER=18881 W1=18001 W2=18002
start_state() {
  bin/scc-state -host 127.0.0.1 -port $STATE -startup-delay 0 -scale-out-delay 100 -log-level 1 >/dev/null 2>&1 &
  pids+=($!)
  wait_http $STATE /health-check
}

start_cluster() { # name → sets SUBPID
  case $1 in
  go-scc)
    start_state
    bin/scc-broker -port $BROKER -state-host 127.0.0.1 -state-port $STATE -log-level 1 >/dev/null 2>&1 &
    pids+=($!)
    wait_http $BROKER /health-check
    for p in $W1 $W2; do
      bin/scserver -addr 127.0.0.1:$p -auth-key bench -demo=false -log-level error -broker "scc://127.0.0.1:$STATE" >/dev/null 2>&1 &
      pids+=($!)
      [ $p = $W2 ] && SUBPID=$!
    done
    for p in $W1 $W2; do wait_joined $p go; done ;;
  go-redis)
    for p in $W1 $W2; do
      bin/scserver -addr 127.0.0.1:$p -auth-key bench -demo=false -log-level error -broker "$REDIS_URL" >/dev/null 2>&1 &
      pids+=($!)
      [ $p = $W2 ] && SUBPID=$!
    done
    for p in $W1 $W2; do wait_http $p /readyz; done ;;
  node-scc)
    start_state
    SCC_STATE_SERVER_HOST=127.0.0.1 SCC_STATE_SERVER_PORT=$STATE SCC_BROKER_SERVER_PORT=$BROKER \
      node scc-interop/node_modules/scc-broker/server.js >/dev/null 2>&1 &
    pids+=($!)
    wait_http $BROKER /health-check
    for p in $W1 $W2; do
      SOCKETCLUSTER_PORT=$p SCC_STATE_SERVER_HOST=127.0.0.1 SCC_STATE_SERVER_PORT=$STATE node scc-interop/lib/node-worker.cjs >/dev/null 2>&1 &
      pids+=($!)
      [ $p = $W2 ] && SUBPID=$!
    done
    for p in $W1 $W2; do wait_joined $p node; done ;;
  esac
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq 1 "$ROUNDS"); do
  for c in $CLUSTERS; do
    echo "== round $round: $c" >&2
    start_cluster "$c"
    common=(-addr 127.0.0.1:$W2 -pub-addr 127.0.0.1:$W1 -server-pid "$SUBPID" -n "$SUBS"
      -duration "$DURATION" -warmup 2s -channel "scbench-scc-$$" -server "$c" -q)
    bin/scbench fanout "${common[@]}" -rate "$RATE" -label "cross-instance fan-out, $SUBS subscribers, $RATE publishes/s" | tee -a "$jsonl"
    if [ "$c" != node-scc ]; then
      bin/scbench fanout "${common[@]}" -window "$WINDOW" -label "cross-instance fan-out, $SUBS subscribers, window $WINDOW" | tee -a "$jsonl"
    fi
    cleanup
    sleep 1
  done
done

{
  echo "# Cross-instance fan-out through the cluster"
  echo
  echo "Generated by \`bash bench/scc.sh\` ($ROUNDS rounds, $SUBS subscribers on one"
  echo "instance, the publisher on another, $DURATION per run) on"
  echo "$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(date -u +%Y-%m-%d)."
  echo "Medians; server CPU is the subscribers' instance only. Load average"
  echo "at the start: $load_start; at the end: $(cut -d' ' -f1-3 /proc/loadavg) (on a shared"
  echo "machine single runs vary a lot: see the per-run lines in scc.jsonl)."
  echo
  bin/scbench report -base go-scc <"$jsonl"
} >"$out/scc.md"
cat "$out/scc.md"
