#!/usr/bin/env bash
# TLS towards servers: hapx-proxy against HAProxy 2.6 side by side on loopback, same
# configuration (`mode tcp`, `server ... ssl verify required ca-file ...`), and the ratios:
#   throughput of plain client connections forwarded to a TLS server (the proxy encrypts), and
#   the rate of short connections (a new TLS connection to the server for each: handshake,
#   4 bytes each way, close; both proxies resume TLS sessions, as they do by default),
#   with the CPU time each proxy spent per GB and per 1,000 connections (the load generator
#   and the TLS backend share the machine's CPUs with the proxy, so the proxy's own CPU per
#   unit of work is the fair comparison).
# And TLS termination (`bind ... ssl crt`, `mode tcp`, to a plain backend): the rate of new
#   TLS connections from clients (a full handshake each, no session resumption: 4 bytes each
#   way, close) and the throughput of TLS clients, with the proxy's CPU per unit likewise.
# Usage: [ROUNDS=2] bench/proxy-tls.sh [SECONDS]   (default 5 s per measurement; measurements
# alternate between the proxies, best of ROUNDS kept)
# Traffic stays on 127.0.0.1 (ports 19500-19520, apart from bench/proxy.sh's); every process
# started here is stopped by its pid on exit.
SECS=${1:-5}
ROUNDS=${ROUNDS:-2}
source "$(dirname "$0")/proxy-common.sh" bench-tls openssl python3
cargo build --release -q -p hapx-proxy --bin hapx-proxy --example tls-load
HAPX=target/release/hapx-proxy
LOAD=target/release/examples/tls-load

# A CA and a server certificate for 127.0.0.1 it signed (EC P-256, as a modern API server's).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=bench-ca -keyout "$WORK/ca.key" -out "$WORK/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -subj /CN=127.0.0.1 -keyout "$WORK/srv.key" -out "$WORK/srv.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$WORK/ext"
openssl x509 -req -in "$WORK/srv.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" -CAcreateserial \
  -days 2 -extfile "$WORK/ext" -out "$WORK/srv.crt" 2>/dev/null
cat "$WORK/srv.crt" "$WORK/srv.key" >"$WORK/srv.pem"

BACKEND=19500 PLAIN=19501
$LOAD server $BACKEND "$WORK/srv.pem" >"$WORK/handshakes" & PIDS+=($!)
$LOAD server $PLAIN >/dev/null & PIDS+=($!)
sleep 0.5

# config NAME FRONTPORT
config() {
  cat <<CFG
global
  maxconn 7000
  stats socket $WORK/$1.sock mode 600 level admin
defaults
  mode tcp
  timeout client 30s
  timeout server 30s
  timeout connect 2s
frontend fe
  bind 127.0.0.1:$2
  default_backend tls
frontend term
  bind 127.0.0.1:$(($2 + 1)) ssl crt $WORK/srv.pem
  default_backend plain
backend tls
  server s1 127.0.0.1:$BACKEND ssl verify required ca-file $WORK/ca.pem
backend plain
  server p1 127.0.0.1:$PLAIN
CFG
}

PORT=([haproxy]=19510 [hapx]=19520)
start() { # NAME
  config "$1" "${PORT[$1]}" >"$WORK/$1.cfg"
  start_proxy "$1" "$(proxy_binary "$1")" "$WORK/$1.cfg"
}
start haproxy
start hapx
sleep 1

per_gb() { # CPU_MS GBIT: CPU seconds per GB moved in SECS at GBIT Gbit/s
  awk -v c="$1" -v g="$2" -v s="$SECS" 'BEGIN {printf "%.3f", c / 1000 / (g * s / 8)}'
}

bulk() { # NAME ADDR PREFIX [tls]: throughput through ADDR, kept as PREFIXgbit, CPU as PREFIXcpu_gb
  local c0 gbit
  c0=$(cpu_ms "${PID[$1]}")
  gbit=$($LOAD bulk "$2" "$SECS" 4 ${4:-} | awk '{print $2}')
  best "$1,${3}gbit" "$gbit" max
  best "$1,${3}cpu_gb" "$(per_gb $(($(cpu_ms "${PID[$1]}") - c0)) "$gbit")" min
  LAST=$gbit
}
conns() { # NAME ADDR PREFIX [tls]: new connections/s through ADDR, kept as PREFIXrate, CPU per
  # 1,000 as PREFIXcpu_kconn; failures reported
  local c0 out rate failed
  c0=$(cpu_ms "${PID[$1]}")
  out=$($LOAD connrate "$2" 64 "$SECS" ${4:-})
  rate=$(echo "$out" | awk '{print $2}')
  failed=$(echo "$out" | awk '{print $4}')
  best "$1,${3}rate" "$rate" max
  best "$1,${3}cpu_kconn" "$(per_kconn $(($(cpu_ms "${PID[$1]}") - c0)) "$rate")" min
  [ "$failed" = 0 ] || echo "  $1: $failed connections failed (round $round)"
  LAST=$rate
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
  for name in haproxy hapx; do
    # TLS to servers: plain clients, TLS backend.
    bulk $name "127.0.0.1:${PORT[$name]}" ""; gbit=$LAST
    sleep 1.1; before=$(tail -1 "$WORK/handshakes")
    conns $name "127.0.0.1:${PORT[$name]}" ""; rate=$LAST
    sleep 1.1; after=$(tail -1 "$WORK/handshakes")
    # The backend's handshake totals before and after: how many were resumed sessions.
    R[$name,resumed]=$(awk -v b="$before" -v a="$after" 'BEGIN {
      split(b, x, " "); split(a, y, " "); full = y[3] - x[3]; res = y[5] - x[5];
      printf "%.0f%%", 100 * res / (full + res) }')
    echo "  round $round $name: ${gbit} Gbit/s, ${rate} conn/s"
    # TLS termination: TLS clients, plain backend.
    term=127.0.0.1:$((${PORT[$name]} + 1))
    bulk $name "$term" t tls; gbit=$LAST
    sleep 1.1
    conns $name "$term" t tls; rate=$LAST
    echo "  round $round $name: terminating ${gbit} Gbit/s, ${rate} handshakes/s"
    sleep 1.1
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

# Memory with many connections open at once: CONNS clients each send 64 kB towards the TLS
# server (which sinks it) and stay open; the proxy's RSS growth over its idle RSS, per
# connection (its buffers, TLS state and socket bookkeeping).
CONNS=${CONNS:-2000}
hold() { # PORT PID [tls]: prints the RSS growth in kB per connection while CONNS are open
  python3 - "$1" "$2" "$CONNS" "${3:-}" <<'PY'
import socket, ssl, sys, time
port, pid, n, tls = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4] == "tls"
ctx = ssl.create_default_context()
ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
def rss():
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))
before = rss()
conns = []
for _ in range(n):
    c = socket.create_connection(("127.0.0.1", port))
    if tls:
        c = ctx.wrap_socket(c)
    c.sendall(b"SINK" + b"x" * 65536)
    conns.append(c)
time.sleep(2)
print(f"{(rss() - before) / n:.1f}")
for c in conns:
    c.close()
PY
}
# Each measurement in fresh processes: what earlier traffic left allocated (HAProxy keeps its
# pools) would otherwise hide the growth.
restart() {
  for name in haproxy hapx; do kill "${PID[$name]}"; wait "${PID[$name]}" 2>/dev/null || true; done
  start haproxy
  start hapx
  sleep 1
}
restart
for name in haproxy hapx; do R[$name,rss]=$(hold "${PORT[$name]}" "${PID[$name]}"); done
restart
for name in haproxy hapx; do R[$name,trss]=$(hold $((${PORT[$name]} + 1)) "${PID[$name]}" tls); done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
row() { # LABEL KEY rate|cost: both proxies' figures and the ratio (above 1: hapx better)
  local h=${R[haproxy,$2]} x=${R[hapx,$2]}
  if [ "$3" = rate ]; then r=$(ratio "$x" "$h"); else r=$(ratio "$h" "$x"); fi
  printf '%-34s %12s %12s %8s\n' "$1" "$h" "$x" "$r"
}
printf '\n%-34s %12s %12s %8s\n' "TLS to servers (mode tcp)" HAProxy hapx ratio
row "throughput, Gbit/s (4 streams)" gbit rate
row "new TLS connections/s (-c64)" rate rate
row "proxy CPU s per GB (lower better)" cpu_gb cost
row "proxy CPU ms per 1k conns (lower)" cpu_kconn cost
row "RSS kB per open conn (${CONNS}, lower)" rss cost
printf '%-34s %12s %12s\n' "resumed TLS sessions (last round)" "${R[haproxy,resumed]}" "${R[hapx,resumed]}"
printf '\n%-34s %12s %12s %8s\n' "TLS termination (bind ssl, tcp)" HAProxy hapx ratio
row "throughput, Gbit/s (4 TLS clients)" tgbit rate
row "new TLS handshakes/s (-c64)" trate rate
row "proxy CPU s per GB (lower better)" tcpu_gb cost
row "proxy CPU ms per 1k handshakes" tcpu_kconn cost
row "RSS kB per open TLS client (${CONNS})" trss cost
echo "(ratio: hapx / HAProxy for rates, HAProxy / hapx for CPU costs: above 1 is hapx better)"
