#!/usr/bin/env bash
# Head-to-head: the same scenarios, with the same generator (scbench), against
# the Node reference (socketcluster-server 20.x, no middleware), Centrifugo
# (built from the Go module proxy), socketcluster-go (scserver, defaults) and
# the floor (scbench floor: a server that only routes, one write(2) per
# delivery). Servers are run alternately, round by round, because this
# machine's speed drifts. Writes bench/results/headtohead.jsonl (every run)
# and bench/results/headtohead.md (medians, with the machine it ran on).
#
#   bash bench/headtohead.sh                     # every scenario, 3 rounds
#   ROUNDS=1 CONNS=5000 bash bench/headtohead.sh fanout20 conns
#   SERVERS="go centrifugo" bash bench/headtohead.sh
#   SERVERS="go go-netconn centrifugo node floor" bash bench/headtohead.sh
#                                 # go-netconn: scserver -own-descriptors=false
#   bash bench/headtohead.sh tlsconns   # idle wss:// connections (go, go-netconn
#                                 # and centrifugo, each on a TLS port of its own)
#
# Needs: Go, Node 20 and `npm ci` in interop/ (for the Node reference),
# openssl (for tlsconns' self-signed certificate).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-19900}
DURATION=${DURATION:-5s}
SERVERS=${SERVERS:-"go centrifugo node floor"}
CENTRIFUGO_VERSION=${CENTRIFUGO_VERSION:-v6.9.1}
out=bench/results
mkdir -p "$out" bin
# The commit measured, read before the results files are rewritten (they
# are tracked: emptying them first would always say -dirty).
revision=$(git describe --always --dirty 2>/dev/null || echo unknown)
jsonl=$out/headtohead.jsonl
: >"$jsonl"

go build -o bin/scbench ./cmd/scbench
go build -o bin/scserver ./cmd/scserver
# A binary built with go install reports version 0.0.0 (the release sets it
# at link time): bin/centrifugo.version records what was built.
if [[ " $SERVERS " == *" centrifugo "* ]] && [ "$(cat bin/centrifugo.version 2>/dev/null)" != "$CENTRIFUGO_VERSION" ]; then
  echo "== building Centrifugo $CENTRIFUGO_VERSION from the Go module proxy" >&2
  GOBIN=$PWD/bin go install "github.com/centrifugal/centrifugo/v6@$CENTRIFUGO_VERSION"
  echo "$CENTRIFUGO_VERSION" >bin/centrifugo.version
fi

# Centrifugo: anonymous clients may subscribe and publish in the namespace
# "bench" (every scenario uses channels bench:…); no history, presence or
# recovery; log level error. use_write_buffer_pool is on: it is Centrifugo's
# documented setting for lower memory per connection, and it lowered its
# figure here.
cfdir=$(mktemp -d)
cat >"$cfdir/config.json" <<JSON
{
  "http_server": {"address": "127.0.0.1", "port": 18202},
  "log": {"level": "error"},
  "client": {"allow_anonymous_connect_without_token": true, "allowed_origins": ["*"]},
  "channel": {"namespaces": [{"name": "bench",
    "allow_subscribe_for_anonymous": true, "allow_publish_for_anonymous": true,
    "allow_subscribe_for_client": true, "allow_publish_for_client": true}]},
  "websocket": {"use_write_buffer_pool": true}
}
JSON

scenarios=${*:-"saturated fanout20 fanout100 rpc conns tlsconns"}

declare -A PID ADDR PROTO CMD
pids=()
# Servers are stopped and waited for, so that a run right after this one
# does not find their ports still taken while they drain.
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$cfdir"
}
trap cleanup EXIT

wait_port() {
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on port $1" >&2
  exit 1
}

start() { # name port proto command…
  local name=$1 port=$2 proto=$3
  shift 3
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port ($name) is taken: stop what listens there first" >&2
    exit 1
  fi
  CMD[$name]="$port $proto $(printf '%q ' "$@")"
  "$@" >/dev/null 2>>"bin/headtohead-$name.log" &
  PID[$name]=$!
  pids+=("$!")
  ADDR[$name]=127.0.0.1:$port
  PROTO[$name]=$proto
  wait_port "$port"
  if ! kill -0 "${PID[$name]}" 2>/dev/null; then
    echo "$name exited at start: see bin/headtohead-$name.log" >&2
    exit 1
  fi
}

# restart name: a fresh process of the same server (memory per connection
# is measured as the growth of a process that has not served connections
# before: an earlier round's freed memory would be reused).
restart() {
  local name=$1
  kill "${PID[$name]}" 2>/dev/null || true
  wait "${PID[$name]}" 2>/dev/null || true
  eval "start $name ${CMD[$name]}"
}

for s in $SERVERS; do
  case $s in
    go) start go 18201 sc bin/scserver -addr 127.0.0.1:18201 -log-level error ;;
    go-netconn) start go-netconn 18205 sc bin/scserver -addr 127.0.0.1:18205 -log-level error -own-descriptors=false ;;
    centrifugo) start centrifugo 18202 centrifugo bin/centrifugo --config "$cfdir/config.json" ;;
    node) start node 18203 sc node bench/reference-server.js 127.0.0.1:18203 ;;
    floor) start floor 18204 sc bin/scbench floor -listen 127.0.0.1:18204 ;;
    *) echo "unknown server $s (go go-netconn centrifugo node floor)" >&2; exit 2 ;;
  esac
done

# tlsconns: the servers that serve TLS get a second instance on a TLS port,
# with one self-signed ECDSA P-256 certificate (TLS 1.3 is negotiated).
if [[ " $scenarios " == *" tlsconns "* ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$cfdir/key.pem" -out "$cfdir/cert.pem" 2>/dev/null
  sed 's|"port": 18202}|"port": 18212, "tls": {"enabled": true, "cert_pem": "'"$cfdir"'/cert.pem", "key_pem": "'"$cfdir"'/key.pem"}}|' \
    "$cfdir/config.json" >"$cfdir/config-tls.json"
  tlsflags=(-tls-cert "$cfdir/cert.pem" -tls-key "$cfdir/key.pem")
  for s in $SERVERS; do
    case $s in
      go) start go-tls 18211 sc bin/scserver -addr 127.0.0.1:18211 -log-level error "${tlsflags[@]}" ;;
      go-netconn) start go-netconn-tls 18215 sc bin/scserver -addr 127.0.0.1:18215 -log-level error -own-descriptors=false "${tlsflags[@]}" ;;
      centrifugo) start centrifugo-tls 18212 centrifugo bin/centrifugo --config "$cfdir/config-tls.json" ;;
    esac
  done
fi

# run label scenario args…: every server, round after round (rpc is skipped
# for Centrifugo: no procedure calls without a backend). With TLS=1 it
# loads each server's TLS instance over wss:// instead (servers without one
# are skipped).
run() {
  local label=$1 scenario=$2
  shift 2
  for round in $(seq 1 "$ROUNDS"); do
    for s in $SERVERS; do
      [ "$scenario" = rpc ] && [ "${PROTO[$s]}" != sc ] && continue
      local inst=$s addr=${ADDR[$s]} extra=()
      if [ "${TLS:-}" = 1 ]; then
        inst=$s-tls
        [ -n "${ADDR[$inst]:-}" ] || continue
        addr=wss://${ADDR[$inst]} extra=(-ca "$cfdir/cert.pem")
      fi
      [ "$scenario" = conns ] && restart "$inst"
      echo "== $label: $s, round $round/$ROUNDS" >&2
      bin/scbench "$scenario" -addr "$addr" -proto "${PROTO[$inst]}" -server-pid "${PID[$inst]}" \
        -label "$label" -server "$s" -q "${extra[@]}" "$@" >>"$jsonl" || echo "== $label: $s failed" >&2
      sleep 2
    done
  done
}

for sc in $scenarios; do
  case $sc in
    saturated) run "fanout to 1000, saturated (window 32)" fanout -n 1000 -channel bench:fanout -window 32 -duration "$DURATION" ;;
    fanout20) run "fanout to 1000 at 20 publishes/s" fanout -n 1000 -channel bench:fanout -rate 20 -duration "$DURATION" ;;
    fanout100) run "fanout to 1000 at 100 publishes/s" fanout -n 1000 -channel bench:fanout -rate 100 -duration "$DURATION" ;;
    rpc) run "rpc, 100 clients x 10 in flight" rpc -n 100 -inflight 10 -duration "$DURATION" ;;
    conns) run "$CONNS idle connections" conns -n "$CONNS" -hold 5s ;;
    tlsconns) TLS=1 run "$CONNS idle TLS connections (wss://, TLS 1.3, ECDSA P-256)" conns -n "$CONNS" -hold 5s ;;
    *) echo "unknown scenario $sc (saturated fanout20 fanout100 rpc conns tlsconns)" >&2; exit 2 ;;
  esac
done

{
  echo "# Head-to-head results"
  echo
  echo "Produced by \`bash bench/headtohead.sh\` (ROUNDS=$ROUNDS CONNS=$CONNS DURATION=$DURATION) on $(date -u +%Y-%m-%d)."
  echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), $(uname -sr), $(go version | cut -d' ' -f3), Node $(node --version 2>/dev/null || echo -)."
  echo "Servers: go = scserver $revision (go-netconn: the same with -own-descriptors=false), centrifugo = Centrifugo $CENTRIFUGO_VERSION, node = socketcluster-server (bench/reference-server.js), floor = scbench floor."
  echo "Each cell is the median of the rounds (count in brackets); the last columns are go / other."
  bin/scbench report -base go <"$jsonl"
} >"$out/headtohead.md"
cat "$out/headtohead.md"
