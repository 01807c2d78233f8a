#!/usr/bin/env bash
# HTTP keep-alive through hapx-proxy and HAProxy 2.6, side by side: a frontend without stick
# table and one with the rate-limit idiom (stick-table, http-request track-sc0 src, deny if
# sc_http_req_rate(0) over a limit no run reaches, so every request is tracked and served),
# and the same idiom with byte counters stored too (every request counts its bytes).
# wrk -t2 -c64, SECS per run (default 3), ROUNDS alternating rounds (default 3), best kept;
# proxy CPU ms per 1000 requests. Traffic stays on 127.0.0.1; every process started here is
# stopped by its pid on exit. Usage: [SECS=3] [ROUNDS=3] bench/proxy-stick.sh
SECS=${SECS:-3}; ROUNDS=${ROUNDS:-3}
source "$(dirname "$0")/proxy-common.sh" stickbench wrk python3
start_web_server
# $1: the port; $2: "stick" for the rate-limit idiom, "bytes" for it with byte counters (each
# in a process of its own, so that the plain one runs without any stick table in the process).
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
CFG
  elif [ "$2" = bytes ]; then cat <<CFG
  stick-table type ip size 100k expire 30s store http_req_rate(10s),bytes_in_cnt,bytes_out_rate(10s)
CFG
  fi
  if [ "$2" != plain ]; then cat <<CFG
  http-request track-sc0 src
  http-request deny deny_status 429 if { sc_http_req_rate(0) gt 1000000000 }
CFG
  fi
  cat <<CFG
backend web
  server w1 127.0.0.1:$WEB
CFG
}
for name in haproxy hapx; do
  for fe in plain stick bytes; do
    k=$name,$fe; PORT[$k]=$(free_port)
    config "${PORT[$k]}" $fe > "$WORK/$name-$fe.cfg"
    start_proxy $k "$(proxy_binary $name)" "$WORK/$name-$fe.cfg"
  done
done
sleep 1
for round in $(seq "$ROUNDS"); do
  for name in haproxy hapx; do
    for fe in plain stick bytes; do
      keepalive $name,$fe ${PORT[$name,$fe]} ${PID[$name,$fe]}
    done
  done
done
printf "%-10s %-8s %10s %14s\n" proxy frontend "req/s" "cpu ms/1000"
for name in haproxy hapx; do for fe in plain stick bytes; do
  printf "%-10s %-8s %10s %14s\n" $name $fe ${R[$name,$fe,rps]} ${R[$name,$fe,rpscpu]}
done; done
