#!/usr/bin/env bash
# HTTP keep-alive through hapx-proxy and HAProxy 2.6, side by side: a frontend without stick
# table and one with the rate-limit idiom (stick-table, http-request track-sc0 src, deny if
# sc_http_req_rate(0) over a limit no run reaches, so every request is tracked and served).
# wrk -t2 -c64, SECS per run (default 3), ROUNDS alternating rounds (default 3), best kept;
# proxy CPU ms per 1000 requests. Traffic stays on 127.0.0.1; every process started here is
# stopped by its pid on exit. Usage: [SECS=3] [ROUNDS=3] bench/proxy-stick.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p hapx-proxy --bin hapx-proxy --example proxy-load
SECS=${SECS:-3}; ROUNDS=${ROUNDS:-3}
LOAD=target/release/examples/proxy-load; HAPX=target/release/hapx-proxy; HAPROXY=/usr/sbin/haproxy
WORK=$(mktemp -d /tmp/hapx-stickbench.XXXXXX); PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
# A port nothing listens on now (the kernel's pick for port 0).
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
WEB=$(free_port)
$LOAD server $WEB & PIDS+=($!)
sleep 0.5
# $1: the port; $2: "stick" for the rate-limit idiom (each in a process of its own, so that
# the plain one runs without any stick table in the process).
config() {
  cat <<CFG
defaults
  mode http
  timeout client 30s
  timeout server 30s
  timeout connect 2s
frontend fe
  bind 127.0.0.1:$1
  default_backend web
CFG
  if [ "$2" = stick ]; then cat <<CFG
  stick-table type ip size 100k expire 30s store http_req_rate(10s)
  http-request track-sc0 src
  http-request deny deny_status 429 if { sc_http_req_rate(0) gt 1000000000 }
CFG
  fi
  cat <<CFG
backend web
  server w1 127.0.0.1:$WEB
CFG
}
TCK=$(getconf CLK_TCK)
cpu_ms() { awk -v t="$TCK" '{printf "%d", ($14 + $15) * 1000 / t}' "/proc/$1/stat"; }
declare -A PORT PID R
for name in haproxy hapx; do
  bin=$HAPX; [ $name = haproxy ] && bin=$HAPROXY
  for fe in plain stick; do
    k=$name,$fe; PORT[$k]=$(free_port)
    config "${PORT[$k]}" $fe > "$WORK/$name-$fe.cfg"
    "$bin" -db -f "$WORK/$name-$fe.cfg" > "$WORK/$name-$fe.log" 2>&1 & PID[$k]=$!; PIDS+=(${PID[$k]})
  done
done
sleep 1
for round in $(seq "$ROUNDS"); do
  for name in haproxy hapx; do
    for fe in plain stick; do
      k=$name,$fe; port=${PORT[$k]}; c0=$(cpu_ms ${PID[$k]})
      rps=$(wrk -t2 -c64 -d"${SECS}s" "http://127.0.0.1:$port/" | awk '/Requests\/sec/ {printf "%.0f", $2}')
      cpu=$(python3 -c "print(round(($(cpu_ms ${PID[$k]}) - $c0) * 1000 / ($rps * $SECS), 2))")
      R[$k,rps]=$(python3 -c "print(max(${R[$k,rps]:-0}, $rps))")
      R[$k,cpu]=$(python3 -c "print(min(${R[$k,cpu]:-1e9}, $cpu))")
    done
  done
done
printf "%-10s %-8s %10s %14s\n" proxy frontend "req/s" "cpu ms/1000"
for name in haproxy hapx; do for fe in plain stick; do
  printf "%-10s %-8s %10s %14s\n" $name $fe ${R[$name,$fe,rps]} ${R[$name,$fe,cpu]}
done; done
