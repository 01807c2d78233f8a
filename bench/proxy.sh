#!/usr/bin/env bash
# Benchmarks hapx-proxy against HAProxy 2.6 side by side on loopback, same configuration
# (with `option splice-auto`), one run each, and prints the ratios:
#   bulk throughput (iperf3), short-connection rate, p99 latency at a fixed rate,
#   RSS with 5,000 idle connections (TCP, and HTTP ones waiting for a first request), HTTP
#   requests/s (wrk); and direct loopback for scale.
#   The short-connection rate is measured twice: with the plain configuration, and with
#   `option tcp-smart-accept` and `option tcp-smart-connect` (the packet-saving options) in
#   both proxies.
#   With each rate, the CPU time the proxy spent per unit of work, and for short connections
#   what the load generator and backend spent and how idle the machine was: on a small machine
#   they share the CPUs with the proxy, so the rate measures the whole machine, and the proxy's
#   own CPU per connection is the fair comparison of the two proxies.
# Usage: [ROUNDS=2] [HAPX_PROXY=binary] bench/proxy.sh [SECONDS]   (default 5 s per measurement;
# the proxies run side by side and the measurements alternate, best of ROUNDS kept, to even out
# machine noise; HAPX_PROXY runs another hapx-proxy build, e.g. an older one for a before/after)
# Traffic stays on 127.0.0.1; every process started here is stopped by its pid on exit.
SECS=${1:-5}
ROUNDS=${ROUNDS:-2}
source "$(dirname "$0")/proxy-common.sh" bench iperf3 wrk python3
cargo build --release -q -p hapx-proxy --bin hapx-proxy --example proxy-load
HAPX=${HAPX_PROXY:-target/release/hapx-proxy} # HAPX_PROXY: another build, for before/after runs
LOAD=target/release/examples/proxy-load

WEB=19100 IPERF=19101
$LOAD server $WEB & PIDS+=($!); WEB_PID=$!
iperf3 -s -p $IPERF >/dev/null 2>&1 & PIDS+=($!)
sleep 0.5

# config NAME BASEPORT: frontends tcp (BASE), iperf (BASE+1), http (BASE+2), tcp with the
# smart options (BASE+3)
config() {
  cat <<CFG
global
  maxconn 7000
  stats socket $WORK/$1.sock mode 600 level admin
defaults
  mode tcp
  option splice-auto
  timeout client 30s
  timeout server 30s
  timeout connect 2s
frontend tcp_fe
  bind 127.0.0.1:$2
  default_backend web
frontend iperf_fe
  bind 127.0.0.1:$(($2 + 1))
  default_backend iperf
frontend http_fe
  mode http
  bind 127.0.0.1:$(($2 + 2))
  default_backend web_http
frontend tcp_smart_fe
  bind 127.0.0.1:$(($2 + 3))
  option tcp-smart-accept
  default_backend web_smart
backend web
  server w1 127.0.0.1:$WEB
backend web_smart
  option tcp-smart-connect
  server w1 127.0.0.1:$WEB
backend iperf
  server i1 127.0.0.1:$IPERF
backend web_http
  mode http
  server w1 127.0.0.1:$WEB
CFG
}


iperf_gbps() {
  iperf3 -c 127.0.0.1 -p "$1" -t "$SECS" -J 2>/dev/null |
    python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))'
}
# Short connections: "RATE LOADGEN_CPU_MS" (connrate prints its own CPU time).
connrate() { $LOAD connrate "127.0.0.1:$1" 64 "$SECS" | awk '{print $2, $6}'; }
idle_ticks() { awk '/^cpu / {print $5 + $6}' /proc/stat; } # idle + iowait, all CPUs
p99() { $LOAD latency "127.0.0.1:$1" 5000 "$SECS" | awk '{print $3}'; }

idle_rss() { # PORT PID: RSS (kB) with 5,000 idle connections through the proxy
  $LOAD idle "127.0.0.1:$1" 5000 $((SECS + 4)) > "$WORK/idle.out" & local lp=$!
  for _ in $(seq 100); do grep -q idle "$WORK/idle.out" 2>/dev/null && break; sleep 0.1; done
  sleep 1
  rss_kb "$2"
  wait "$lp" 2>/dev/null || true
}

PORT=([haproxy]=19200 [hapx]=19300)
start_proxies() { # (re)starts both proxies on their configurations
  for name in haproxy hapx; do
    [ -n "${PID[$name]:-}" ] && { kill "${PID[$name]}"; wait "${PID[$name]}" 2>/dev/null || true; }
    config $name "${PORT[$name]}" > "$WORK/$name.cfg"
    start_proxy $name "$(proxy_binary $name)" "$WORK/$name.cfg"
  done
  sleep 1
}
start_proxies
for name in haproxy hapx; do R[$name,rss0]=$(rss_kb ${PID[$name]}); done

echo "HAProxy $($HAPROXY -v | head -1 | awk '{print $3}') and hapx-proxy run side by side; $ROUNDS alternating rounds, best of each kept."
for round in $(seq "$ROUNDS"); do
  echo "round $round..."
  for name in direct haproxy hapx; do
    if [ $name = direct ]; then tcp=$WEB ip=$IPERF http=$WEB; else
      tcp=${PORT[$name]} ip=$((${PORT[$name]} + 1)) http=$((${PORT[$name]} + 2)); fi
    pid=${PID[$name]:-}
    best $name,gbps "$(iperf_gbps $ip)" max
    c0=$([ -n "$pid" ] && cpu_ms $pid || echo 0); w0=$(cpu_ms $WEB_PID); i0=$(idle_ticks)
    read -r conn gen < <(connrate $tcp); best $name,conn "$conn" max
    c1=$([ -n "$pid" ] && cpu_ms $pid || echo 0); w1=$(cpu_ms $WEB_PID); i1=$(idle_ticks)
    [ -n "$pid" ] && best $name,conncpu "$(per_kconn $((c1 - c0)) "$conn")" min
    # What the rest of the machine spent on the same connections, and what was left idle.
    best $name,othercpu "$(per_kconn $((w1 - w0 + gen)) "$conn")" min
    best $name,idle "$(python3 -c "print(round(($i1 - $i0) * 100 / ($TCK * $SECS * $(nproc)), 1))")" min
    if [ -n "$pid" ]; then
      c0=$(cpu_ms $pid)
      read -r conn _ < <(connrate $((${PORT[$name]} + 3))); best $name,smartconn "$conn" max
      best $name,smartcpu "$(per_kconn $(($(cpu_ms $pid) - c0)) "$conn")" min
    fi
    best $name,p99 "$(p99 $tcp)" min
    if [ -n "$pid" ]; then keepalive $name $http $pid; else best $name,rps "$(wrk_rps $http)" max; fi
  done
done
for name in haproxy hapx; do R[$name,rss]=$(idle_rss "${PORT[$name]}" ${PID[$name]}); done
# HTTP connections waiting for their first request, in freshly started proxies (the memory
# the TCP measurement left allocated would otherwise count).
start_proxies
for name in haproxy hapx; do R[$name,rsshttp]=$(idle_rss $((${PORT[$name]} + 2)) ${PID[$name]}); done

cps() { python3 -c "print(round(1e6 / float('$1')) if '$1' else '')"; } # CPU ms/1000 -> per CPU-second
ratio() { python3 -c "a,b=float('$1' or 0),float('$2' or 0); print('%.2f' % (a/b) if b else 'n/a')"; }
printf '\n%-34s %12s %12s %12s %10s %12s\n' metric HAProxy hapx-proxy direct hapx/HAP hapx/direct
row() { printf '%-34s %12s %12s %12s %10s %12s\n' "$1" "$2" "$3" "$4" "$(ratio "$3" "$2")" "$( [ "$4" = - ] && echo - || ratio "$3" "$4")"; }
row "bulk throughput (Gbit/s)"        "${R[haproxy,gbps]}" "${R[hapx,gbps]}" "${R[direct,gbps]}"
row "short connections (/s, 64 conc)" "${R[haproxy,conn]}" "${R[hapx,conn]}" "${R[direct,conn]}"
row "  with tcp-smart-accept/connect"  "${R[haproxy,smartconn]}" "${R[hapx,smartconn]}" -
row "p99 latency @5000 req/s (us)"    "${R[haproxy,p99]}"  "${R[hapx,p99]}"  "${R[direct,p99]}"
row "RSS idle (kB)"                   "${R[haproxy,rss0]}" "${R[hapx,rss0]}" -
row "RSS, 5000 idle conns (kB)"       "${R[haproxy,rss]}"  "${R[hapx,rss]}"  -
row "RSS, 5000 idle HTTP conns (kB)"  "${R[haproxy,rsshttp]}" "${R[hapx,rsshttp]}" -
row "HTTP req/s (wrk -c64)"           "${R[haproxy,rps]}"  "${R[hapx,rps]}"  "${R[direct,rps]}"
row "proxy CPU ms / 1000 short conns" "${R[haproxy,conncpu]}" "${R[hapx,conncpu]}" -
row "proxy CPU ms / 1000 HTTP reqs"   "${R[haproxy,rpscpu]}"  "${R[hapx,rpscpu]}"  -
row "  with tcp-smart-accept/connect"  "${R[haproxy,smartcpu]}" "${R[hapx,smartcpu]}" -
row "short conns per proxy CPU-second" "$(cps "${R[haproxy,conncpu]}")" "$(cps "${R[hapx,conncpu]}")" -
row "load gen+backend CPU ms/1000 conns" "${R[haproxy,othercpu]}" "${R[hapx,othercpu]}" "${R[direct,othercpu]}"
printf '%-34s %12s %12s %12s %10s %12s\n' "machine idle, short conns (%)" "${R[haproxy,idle]}" "${R[hapx,idle]}" "${R[direct,idle]}" - -
echo
echo "Goals: hapx/HAP >= 1.2 for throughput and connection rate; <= 1.0 for p99, RSS and CPU."
echo "(Load generator, servers and both proxies share the CPUs: when the machine is not idle, the"
echo " connection rate is about CPUs / (proxy + load generator + backend CPU per connection), so"
echo " it is bounded by the whole machine. 'short conns per proxy CPU-second' is the proxy's own"
echo " capacity; its ratio is the fair comparison of the two proxies.)"
python3 - "${R[haproxy,conncpu]}" "${R[haproxy,othercpu]}" "${R[hapx,othercpu]}" <<'PY'
import sys
hap, hap_other, hapx_other = (float(x or 0) for x in sys.argv[1:])
need = (hap + hap_other) / 1.2 - hapx_other
print("For 1.2x HAProxy's connection rate on this machine, hapx would have to spend %.1f CPU ms"
      " per 1000 connections (%.2fx HAProxy's %.1f)." % (need, need / hap if hap else 0, hap))
PY
echo "Best of $ROUNDS alternating rounds on a $(nproc)-core machine (load average: $(cut -d' ' -f1 /proc/loadavg) at the end)."
