#!/usr/bin/env bash
# HTTP keep-alive through hapx-proxy and HAProxy 2.6, side by side: a frontend without rules
# and one with typical rules (ACLs, use_backend, http-request/-response header rules).
# wrk -t2 -c64, SECS per run (default 3), ROUNDS alternating rounds (default 3), best kept;
# proxy CPU ms per 1000 requests. Traffic stays on 127.0.0.1; every process started here is
# stopped by its pid on exit. Usage: [SECS=3] [ROUNDS=3] bench/proxy-rules.sh
SECS=${SECS:-3}; ROUNDS=${ROUNDS:-3}
source "$(dirname "$0")/proxy-common.sh" rulesbench wrk python3
start_web_server
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
for name in haproxy hapx; do
  PORT[$name,0]=$(free_port); PORT[$name,1]=$(free_port)
  config "${PORT[$name,0]}" "${PORT[$name,1]}" > "$WORK/$name.cfg"
  start_proxy $name "$(proxy_binary $name)" "$WORK/$name.cfg"
done
sleep 1
for round in $(seq "$ROUNDS"); do
  for name in haproxy hapx; do
    for fe in 0 1; do
      keepalive $name,$fe ${PORT[$name,$fe]} ${PID[$name]}
    done
  done
done
printf "%-10s %-8s %10s %14s\n" proxy frontend "req/s" "cpu ms/1000"
for name in haproxy hapx; do for fe in 0 1; do
  printf "%-10s %-8s %10s %14s\n" $name $([ $fe = 0 ] && echo plain || echo rules) ${R[$name,$fe,rps]} ${R[$name,$fe,rpscpu]}
done; done
