#!/usr/bin/env bash
# Map lookups through hapx-proxy and HAProxy 2.6, side by side: HTTP keep-alive requests/s and
# proxy CPU per 1000 requests on a frontend without rules, on one setting the same headers
# from the same fetches without maps (what the rules cost without lookups), and on one
# routing by 10,000-entry maps (an exact `map` on the Host, a longest-prefix `map_beg` on the path and a `map_ip` on
# the client address, each result set as a header, the Host's choosing the backend through
# an ACL), and on one looking the path up in list-type maps (10,000 `map_reg` and 10,000
# `map_sub` keys, none matching: what HAProxy's pattern cache saves; PATTERN_CACHE=N sets
# `tune.pattern.cache-size` in both, 0 turning it off). wrk -t2 -c64, SECS per run (default
# 3), ROUNDS alternating rounds (default 3), best kept. Traffic stays on 127.0.0.1; every
# process started here is stopped by its pid on exit.
# Usage: [SECS=3] [ROUNDS=3] [PATTERN_CACHE=N] bench/proxy-maps.sh
SECS=${SECS:-3}; ROUNDS=${ROUNDS:-3}
source "$(dirname "$0")/proxy-common.sh" mapsbench wrk
start_web_server
awk 'BEGIN { for (i = 0; i < 10000; i++) printf "host%d.example be%d\n", i, i % 2 }' > "$WORK/hosts.map"
awk 'BEGIN { for (i = 0; i < 10000; i++) printf "/app%d/v%d prefix%d\n", i, i % 7, i }' > "$WORK/paths.map"
awk 'BEGIN { for (i = 0; i < 10000; i++) printf "10.%d.%d.0/24 net%d\n", i / 256, i % 256, i }
     END { print "127.0.0.0/8 loopback" }' > "$WORK/nets.map"
awk 'BEGIN { for (i = 0; i < 10000; i++) printf "^/r%d/ reg%d\n", i, i }' > "$WORK/reg.map"
awk 'BEGIN { for (i = 0; i < 10000; i++) printf "zz%dzz sub%d\n", i, i }' > "$WORK/sub.map"
config() {
  if [ -n "${PATTERN_CACHE:-}" ]; then printf 'global\n  tune.pattern.cache-size %s\n' "$PATTERN_CACHE"; fi
  cat <<CFG
defaults
  mode http
  timeout client 30s
  timeout server 30s
  timeout connect 2s
frontend plain
  bind 127.0.0.1:$1
  default_backend be0
frontend headers
  bind 127.0.0.1:$2
  http-request set-header X-Host %[req.hdr(host),lower]
  http-request set-header X-Path %[path]
  http-request set-header X-Net %[src]
  use_backend be1 if { req.hdr(host),lower -m str be1 }
  default_backend be0
frontend mapped
  bind 127.0.0.1:$3
  http-request set-header X-Host %[req.hdr(host),lower,map($WORK/hosts.map,none)]
  http-request set-header X-Path %[path,map_beg($WORK/paths.map,none)]
  http-request set-header X-Net %[src,map_ip($WORK/nets.map,none)]
  use_backend be1 if { req.hdr(host),lower,map($WORK/hosts.map,be0) -m str be1 }
  default_backend be0
frontend lists
  bind 127.0.0.1:$4
  http-request set-header X-Reg %[path,map_reg($WORK/reg.map,none)]
  http-request set-header X-Sub %[path,map_sub($WORK/sub.map,none)]
  default_backend be0
backend be0
  server w1 127.0.0.1:$WEB
backend be1
  server w1 127.0.0.1:$WEB
CFG
}
for name in haproxy hapx; do
  for fe in 0 1 2 3; do PORT[$name,$fe]=$(free_port); done
  config "${PORT[$name,0]}" "${PORT[$name,1]}" "${PORT[$name,2]}" "${PORT[$name,3]}" > "$WORK/$name.cfg"
  start_proxy $name "$(proxy_binary $name)" "$WORK/$name.cfg"
done
sleep 1
# A Host in the middle of the map and a path whose prefix is in it.
wrk_rps() {
  wrk -t2 -c64 -d"${SECS}s" -H 'Host: host5001.example' "http://127.0.0.1:$1/app5001/v3/x" |
    awk '/Requests\/sec/ {printf "%.0f", $2}'
}
for round in $(seq "$ROUNDS"); do
  for name in haproxy hapx; do
    for fe in 0 1 2 3; do
      keepalive $name,$fe ${PORT[$name,$fe]} ${PID[$name]}
    done
  done
done
printf "%-10s %-8s %10s %14s\n" proxy frontend "req/s" "cpu ms/1000"
FRONTENDS=(plain headers maps lists)
for name in haproxy hapx; do for fe in 0 1 2 3; do
  printf "%-10s %-8s %10s %14s\n" $name ${FRONTENDS[$fe]} ${R[$name,$fe,rps]} ${R[$name,$fe,rpscpu]}
done; done
