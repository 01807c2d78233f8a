#!/usr/bin/env bash
# A/B of hapx-proxy builds, HAProxy beside them: the proxies' CPU per unit of work, rounds
# alternating between them so that a busy or slowing host weighs on all alike.
#   bench/proxy-ab.sh http|tcp-http|conn|leastconn [BINARY...]
# BINARY: hapx-proxy builds to compare (default: this tree's release build); HAProxy
# ($HAPROXY) always runs too. ROUNDS (3), SECS (5), NSRV (servers in the backend, 1; all point
# at the same load server) and ORDER=reverse (the proxies' order within a round) tune a run.
#   http       HTTP keep-alive (wrk -t2 -c64): requests/s, user and system µs CPU per request
#   http-close the same, each request on a connection of its own (`Connection: close`): the
#              cost of an HTTP connection's accept, first read and close with its request
#   tcp-http   the same through a `mode tcp` frontend whose backend is `mode http` (the
#              stream is upgraded to HTTP at the backend switch)
#   h2-server  HTTP keep-alive clients as `http`, the server nghttpd in h2c (`proto h2`)
#   conn       short TCP connections (64 at a time, connect/request/close): per second,
#              proxy CPU ms per 1000 connections, `balance roundrobin`
#   leastconn  the same with `balance leastconn`
# Keep the figures of a quiet host: they are CPU time per unit, so load elsewhere shows as noise
# rather than as a slower proxy, but two cores shared with builds still move them by ~5%.
source "$(dirname "$0")/proxy-common.sh" proxy-ab wrk
MODE=${1:?usage: bench/proxy-ab.sh http|http-close|tcp-http|h2-server|conn|leastconn [BINARY...]}
shift
ROUNDS=${ROUNDS:-3} SECS=${SECS:-5} NSRV=${NSRV:-1}
start_web_server
if [ "$MODE" = h2-server ]; then # nghttpd serves a small page over h2c in place of $WEB
  mkdir -p "$WORK/h2docs" && echo hello > "$WORK/h2docs/index.html"
  WEB=$(free_port)
  nghttpd --no-tls -d "$WORK/h2docs" "$WEB" > /dev/null &
  PIDS+=($!)
fi
BINARIES=("${@:-$HAPX}" "$HAPROXY")

config() { # PORT: the configuration every proxy runs in this mode
  local mode=tcp balance=roundrobin proto='' i
  case "$MODE" in http | http-close | h2-server) mode=http ;; esac
  [ "$MODE" = h2-server ] && proto=' proto h2'
  [ "$MODE" = leastconn ] && balance=leastconn
  printf 'global\n  maxconn 7000\ndefaults\n  mode %s\n  timeout client 30s\n' "$mode"
  printf '  timeout server 30s\n  timeout connect 2s\nfrontend fe\n  bind 127.0.0.1:%s\n' "$1"
  printf '  default_backend be\nbackend be\n  balance %s\n' "$balance"
  [ "$MODE" = tcp-http ] && printf '  mode http\n'
  for i in $(seq "$NSRV"); do printf '  server s%s 127.0.0.1:%s%s\n' "$i" "$WEB" "$proto"; done
}

for i in "${!BINARIES[@]}"; do
  PORT[$i]=$(free_port)
  config "${PORT[$i]}" > "$WORK/p$i.cfg"
  start_proxy "$i" "${BINARIES[$i]}" "$WORK/p$i.cfg"
done
sleep 1

cpu_ticks() { awk '{print $14, $15}' "/proc/$1/stat"; } # user, system clock ticks
measure() { # I: one round through proxy I, one line of figures
  local pid=${PID[$1]} port=${PORT[$1]} u0 s0 u1 s1 out
  read -r u0 s0 < <(cpu_ticks "$pid")
  if [ "$MODE" != conn ] && [ "$MODE" != leastconn ]; then
    local close=()
    [ "$MODE" = http-close ] && close=(-H 'Connection: close')
    out=$(wrk -t2 -c64 -d"${SECS}s" "${close[@]}" "http://127.0.0.1:$port/" |
      awk '/requests in/ {n = $1} /Requests\/sec/ {r = $2} END {print n, r}')
  else
    out=$("$LOAD" connrate "127.0.0.1:$port" 64 "$SECS" | awk '{print $2 * '"$SECS"', $2}')
  fi
  read -r u1 s1 < <(cpu_ticks "$pid")
  awk -v name="${BINARIES[$1]}" -v m="$MODE" -v t="$TCK" -v u=$((u1 - u0)) -v s=$((s1 - s0)) \
    -v n="${out% *}" -v r="${out#* }" 'BEGIN {
      if (m != "conn" && m != "leastconn")
        printf "%-40s req/s %9.0f  user µs/req %6.2f  sys µs/req %6.2f  CPU µs/req %6.2f\n",
          name, r, u * 1e6 / t / n, s * 1e6 / t / n, (u + s) * 1e6 / t / n
      else
        printf "%-40s conn/s %8.0f  CPU ms per 1000 connections %6.1f\n",
          name, r, (u + s) * 1e6 / t / n
    }'
}

order=("${!BINARIES[@]}")
[ "${ORDER:-}" = reverse ] && order=($(printf '%s\n' "${order[@]}" | tac))
for round in $(seq "$ROUNDS"); do
  echo "round $round ($MODE, $NSRV server(s))"
  for i in "${order[@]}"; do measure "$i"; done
done
