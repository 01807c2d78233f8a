#!/usr/bin/env bash
# Short TCP connections through hapx-proxy and HAProxy 2.6, side by side: a backend whose
# server is plain, and one whose server has `on-marked-down shutdown-sessions` (each session
# registers on the server's kill switch for its life, to be closed if the server goes DOWN).
# proxy-load connrate, 64 at a time, SECS per run (default 3), ROUNDS alternating rounds
# (default 3), best kept; proxy CPU ms per 1000 connections. Traffic stays on 127.0.0.1;
# every process started here is stopped by its pid on exit.
# Usage: [SECS=3] [ROUNDS=3] bench/proxy-lifecycle.sh
SECS=${SECS:-3}; ROUNDS=${ROUNDS:-3}
source "$(dirname "$0")/proxy-common.sh" lifecyclebench python3
start_web_server
# $1: the port; $2: "kill" for `on-marked-down shutdown-sessions` on the server.
config() {
  local opt=""; [ "$2" = kill ] && opt="on-marked-down shutdown-sessions"
  cat <<CFG
global
  maxconn 7000
defaults
  mode tcp
  timeout client 30s
  timeout server 30s
  timeout connect 2s
frontend fe
  bind 127.0.0.1:$1
  default_backend web
backend web
  server w1 127.0.0.1:$WEB $opt
CFG
}
for name in haproxy hapx; do
  for kind in plain kill; do
    k=$name,$kind; PORT[$k]=$(free_port)
    config "${PORT[$k]}" $kind > "$WORK/$name-$kind.cfg"
    start_proxy $k "$(proxy_binary $name)" "$WORK/$name-$kind.cfg"
  done
done
sleep 1
for round in $(seq "$ROUNDS"); do
  for name in haproxy hapx; do
    for kind in plain kill; do
      k=$name,$kind; c0=$(cpu_ms ${PID[$k]})
      conn=$($LOAD connrate "127.0.0.1:${PORT[$k]}" 64 "$SECS" | awk '{print $2}')
      best $k,conn "$conn" max
      best $k,cpu "$(per_kconn $(($(cpu_ms ${PID[$k]}) - c0)) "$conn" 2)" min
    done
  done
done
printf "%-10s %-6s %10s %16s\n" proxy server "conn/s" "cpu ms/1000 conn"
for name in haproxy hapx; do for kind in plain kill; do
  printf "%-10s %-6s %10s %16s\n" $name $kind ${R[$name,$kind,conn]} ${R[$name,$kind,cpu]}
done; done
