#!/usr/bin/env bash
# Side-by-side benchmark of socketcluster-go (the interop fixture, with its
# docs/interop-fixture.md middleware active) against the Node reference server (no
# middleware), alternating A B A B with scbench compare. Writes the JSON
# lines and a summary under bench/results/. Needs `npm ci` in interop/.
#   bash bench/run.sh            # every scenario
#   ROUNDS=3 bash bench/run.sh rpc fanout
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
out=bench/results
mkdir -p "$out"
go build -o bin/interop-fixture ./cmd/interop-fixture
go build -o bin/scbench ./cmd/scbench

start() { # command… → sets PID and PORT
  local fifo
  fifo=$(mktemp -u); mkfifo "$fifo"
  "$@" >"$fifo" 2>/dev/null &
  PID=$!
  read -r ready PORT <"$fifo"
  rm -f "$fifo"
  [ "$ready" = READY ] || { echo "server did not start: $*" >&2; exit 1; }
}
start node bench/reference-server.js 127.0.0.1:0; NODE_PID=$PID; NODE_PORT=$PORT
start bin/interop-fixture -addr 127.0.0.1:0; GO_PID=$PID; GO_PORT=$PORT
trap 'kill $NODE_PID $GO_PID 2>/dev/null || true' EXIT

cmp() { # name, scenario args…
  local name=$1; shift
  echo "== $name: $*" >&2
  bin/scbench compare -a "127.0.0.1:$NODE_PORT" -pid-a "$NODE_PID" -b "127.0.0.1:$GO_PORT" -pid-b "$GO_PID" \
    -rounds "$ROUNDS" "$@" -q >"$out/$name.json" 2>"$out/$name.txt"
  tail -n 30 "$out/$name.txt" >&2
}

scenarios=${*:-"fanout rpc search conns"}
for s in $scenarios; do
  case $s in
    fanout) cmp fanout fanout -n 1000 -window 32 -duration 5s ;;
    rpc) cmp rpc rpc -n 100 -inflight 10 -duration 5s ;;
    search) cmp search fanout -n 1000 -search -search-start 20 -duration 5s ;;
    conns) cmp conns conns -n 19900 -hold 5s ;;
  esac
done
