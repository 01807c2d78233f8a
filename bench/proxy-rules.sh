#!/usr/bin/env bash
# HTTP keep-alive through hapx-proxy and HAProxy 2.6, side by side: a frontend without rules
# and one with typical rules (ACLs, use_backend, http-request/-response header rules).
# wrk -t2 -c64, SECS per run (default 3), ROUNDS alternating rounds (default 3), best kept;
# proxy CPU ms per 1000 requests. Traffic stays on 127.0.0.1; every process started here is
# stopped by its pid on exit. Usage: [SECS=3] [ROUNDS=3] bench/proxy-rules.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p hapx-proxy --bin hapx-proxy --example proxy-load
SECS=${SECS:-3}; ROUNDS=${ROUNDS:-3}
LOAD=target/release/examples/proxy-load; HAPX=target/release/hapx-proxy; HAPROXY=/usr/sbin/haproxy
WORK=$(mktemp -d /tmp/hapx-rulesbench.XXXXXX); PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
# A port nothing listens on now (the kernel's pick for port 0).
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
WEB=$(free_port)
$LOAD server $WEB & PIDS+=($!)
sleep 0.5
config() { cat <<CFG
defaults
  mode http
  timeout client 30s
  timeout server 30s
  timeout connect 2s
frontend plain
  bind 127.0.0.1:$1
  default_backend web
frontend ruled
  bind 127.0.0.1:$2
  acl api path_beg /api/
  acl internal src 10.0.0.0/8 192.168.0.0/16
  http-request deny if { path /forbidden } || internal
  http-request set-header X-Route %[path]
  http-request del-header X-Debug
  http-response set-header X-Proxy rules
  use_backend web2 if api || { hdr(host) -i api.example }
  default_backend web
backend web
  server w1 127.0.0.1:$WEB
backend web2
  server w1 127.0.0.1:$WEB
CFG
}
TCK=$(getconf CLK_TCK)
cpu_ms() { awk -v t="$TCK" '{printf "%d", ($14 + $15) * 1000 / t}' "/proc/$1/stat"; }
declare -A PORT PID R
for name in haproxy hapx; do
  bin=$HAPX; [ $name = haproxy ] && bin=$HAPROXY
  PORT[$name,0]=$(free_port); PORT[$name,1]=$(free_port)
  config "${PORT[$name,0]}" "${PORT[$name,1]}" > "$WORK/$name.cfg"
  "$bin" -db -f "$WORK/$name.cfg" > "$WORK/$name.log" 2>&1 & PID[$name]=$!; PIDS+=(${PID[$name]})
done
sleep 1
for round in $(seq "$ROUNDS"); do
  for name in haproxy hapx; do
    for fe in 0 1; do
      port=${PORT[$name,$fe]}; c0=$(cpu_ms ${PID[$name]})
      rps=$(wrk -t2 -c64 -d"${SECS}s" "http://127.0.0.1:$port/" | awk '/Requests\/sec/ {printf "%.0f", $2}')
      cpu=$(python3 -c "print(round(($(cpu_ms ${PID[$name]}) - $c0) * 1000 / ($rps * $SECS), 2))")
      k=$name,$fe
      R[$k,rps]=$(python3 -c "print(max(${R[$k,rps]:-0}, $rps))")
      R[$k,cpu]=$(python3 -c "print(min(${R[$k,cpu]:-1e9}, $cpu))")
    done
  done
done
printf "%-10s %-8s %10s %14s\n" proxy frontend "req/s" "cpu ms/1000"
for name in haproxy hapx; do for fe in 0 1; do
  printf "%-10s %-8s %10s %14s\n" $name $([ $fe = 0 ] && echo plain || echo rules) ${R[$name,$fe,rps]} ${R[$name,$fe,cpu]}
done; done
