#!/usr/bin/env bash
# HTTP/2 clients through hapx-proxy and HAProxy side by side: h2load with prior knowledge
# (clear text), CONNS connections each keeping STREAMS requests in flight, to the same HTTP/1.1
# load server behind each proxy. Rounds alternate between the proxies; each figure keeps its
# best round.
#   bench/proxy-h2.sh
# ROUNDS (3), REQS (40000 per round), CONNS (16), STREAMS (10) tune a run. Prints requests/s and
# the proxy's CPU ms per 1000 requests.
source "$(dirname "$0")/proxy-common.sh" proxy-h2 h2load
ROUNDS=${ROUNDS:-3} REQS=${REQS:-40000} CONNS=${CONNS:-16} STREAMS=${STREAMS:-10}
start_web_server

config() { # PORT
  printf 'global\n  maxconn 7000\ndefaults\n  mode http\n  timeout client 30s\n'
  printf '  timeout server 30s\n  timeout connect 2s\nfrontend fe\n  bind 127.0.0.1:%s\n' "$1"
  printf '  default_backend be\nbackend be\n  server s1 127.0.0.1:%s\n' "$WEB"
}

for name in hapx haproxy; do
  PORT[$name]=$(free_port)
  config "${PORT[$name]}" > "$WORK/$name.cfg"
  start_proxy "$name" "$(proxy_binary "$name")" "$WORK/$name.cfg"
done
sleep 1

round() { # NAME: one h2load run through proxy NAME; keeps its best requests/s and CPU per 1000
  local name=$1 c0 out rps ok
  c0=$(cpu_ms "${PID[$name]}")
  out=$(h2load -n "$REQS" -c "$CONNS" -m "$STREAMS" "http://127.0.0.1:${PORT[$name]}/")
  ok=$(awk '/^requests:/ {print $8}' <<< "$out")
  [ "$ok" = "$REQS" ] || { echo "$name: only $ok of $REQS requests succeeded" >&2; echo "$out" >&2; exit 1; }
  rps=$(awk '/^finished in/ {gsub(",", "", $4); printf "%.0f", $4}' <<< "$out")
  best "$name,rps" "$rps" max
  best "$name,cpu" "$(awk -v c=$(($(cpu_ms "${PID[$name]}") - c0)) -v n="$REQS" \
    'BEGIN {printf "%.2f", c * 1000 / n}')" min
}

for _ in $(seq "$ROUNDS"); do
  round hapx
  round haproxy
done

printf '%-34s %12s %12s %8s\n' "HTTP/2 (h2load -c$CONNS -m$STREAMS)" HAProxy hapx-proxy ratio
for metric in rps cpu; do
  label=$([ $metric = rps ] && echo "requests/s" || echo "proxy CPU ms per 1000 requests")
  printf '%-34s %12s %12s %8s\n' "$label" "${R[haproxy,$metric]}" "${R[hapx,$metric]}" \
    "$(awk -v a="${R[hapx,$metric]}" -v b="${R[haproxy,$metric]}" 'BEGIN {printf "%.2f", a / b}')"
done
