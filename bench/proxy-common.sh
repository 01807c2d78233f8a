# Sourced by the bench/proxy*.sh scripts, not run on its own: what each of them sets up the same
# way, so that their figures are taken alike.
#   source "$(dirname "$0")/proxy-common.sh" NAME [TOOL...]
# checks that each TOOL and HAProxy ($HAPROXY, default /usr/sbin/haproxy) are installed, makes
# the workspace root the working directory and `$WORK` a scratch directory (/tmp/hapx-NAME.*),
# raises the open-files limit to the hard limit, and on exit stops every process recorded in
# `PIDS` (only those, by pid) and removes `$WORK`. Traffic of every script stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
HAPROXY=${HAPROXY:-/usr/sbin/haproxy}
for tool in "${@:2}" "$HAPROXY"; do
  command -v "$tool" >/dev/null || { echo "$(basename "$0"): needs $tool" >&2; exit 1; }
done
WORK=$(mktemp -d "/tmp/hapx-$1.XXXXXX")
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"

TCK=$(getconf CLK_TCK)
# CPU milliseconds (user + system) process PID has used so far.
cpu_ms() { awk -v t="$TCK" '{printf "%d", ($14 + $15) * 1000 / t}' "/proc/$1/stat"; }
# Resident memory of process PID, in kB.
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
# A port nothing listens on now (the kernel's pick for port 0).
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

start_web_server() { # builds hapx-proxy and proxy-load (release); starts the latter's server on $WEB
  cargo build --release -q -p hapx-proxy --bin hapx-proxy --example proxy-load
  LOAD=target/release/examples/proxy-load
  HAPX=${HAPX_PROXY:-target/release/hapx-proxy} # HAPX_PROXY: another build, for before/after runs
  WEB=$(free_port)
  $LOAD server "$WEB" &
  PIDS+=($!)
  sleep 0.5
}

# The proxies under test, by key: their pids and ports.
declare -A PID PORT
start_proxy() { # KEY BINARY CONFIG: BINARY -db -f CONFIG in the background (log beside CONFIG)
  "$2" -db -f "$3" > "${3%.cfg}.log" 2>&1 &
  PID[$1]=$!
  PIDS+=($!)
}
proxy_binary() { # NAME: haproxy's or hapx's binary
  if [ "$1" = haproxy ]; then echo "$HAPROXY"; else echo "$HAPX"; fi
}

# Results, by key; rounds alternate between the proxies and each figure keeps its best round.
declare -A R
best() { # KEY VALUE max|min: keeps VALUE under KEY if it beats what KEY holds
  local old=${R[$1]:-}
  if [ -z "$old" ] || awk -v a="$2" -v b="$old" -v m="$3" 'BEGIN {exit !(m == "max" ? a > b : a < b)}'; then
    R[$1]=$2
  fi
}
# HTTP keep-alive requests/s through PORT: wrk, 2 threads, 64 connections, SECS seconds.
wrk_rps() { wrk -t2 -c64 -d"${SECS}s" "http://127.0.0.1:$1/" | awk '/Requests\/sec/ {printf "%.0f", $2}'; }
per_kconn() { # CPU_MS RATE [DECIMALS]: CPU ms per 1,000 units of work (connections, requests)
  # done at RATE per second for SECS seconds
  awk -v c="$1" -v r="$2" -v s="$SECS" -v d="${3:-1}" 'BEGIN {printf "%.*f", d, c * 1000 / (r * s)}'
}
keepalive() { # KEY PORT PID: wrk_rps through PORT; keeps KEY,rps and KEY,rpscpu, PID's CPU ms per 1000 requests
  local c0 rps
  c0=$(cpu_ms "$3")
  rps=$(wrk_rps "$2")
  best "$1,rps" "$rps" max
  best "$1,rpscpu" "$(per_kconn $(($(cpu_ms "$3") - c0)) "$rps" 2)" min
}
