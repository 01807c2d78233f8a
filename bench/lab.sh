#!/usr/bin/env bash
# Client-visible outage of the seed's cluster on a node failure and on a proxy failure, hapx
# stack vs reference stack (resource-agents' IPaddr2 + HAProxy 2.6 under ocf:heartbeat:anything),
# same Corosync timings (token 3000 ms), RUNS runs each, in one run of this script.
#
# For each failure, from the probe (a request through the VIP every 50 ms, each with a 1 s
# timeout), the client's neighbour table (`ip -ts monitor neigh`) and the surviving node's logs
# (Corosync's and Pacemaker's timestamps, which tick every 4 ms here):
#   outage     first failed request -> the client served again
#   detect     outage start -> Corosync's new membership without the node   (node failure)
#              outage start -> the monitor's failed result                  (proxy failure)
#   decide     -> the controller initiates the first recovery action (Pacemaker: scheduler, and
#              for a node failure a DC election when the DC died)
#   after      the controller's decision -> the client served again; for a node failure split:
#     vip      -> the VIP's start finished (Pacemaker fetches the agent's meta-data first)
#     arp      -> the client's neighbour entry for the VIP moved to the survivor's MAC
#     gap      VIP started -> the proxy's start initiated (Pacemaker; the VIP's monitor runs
#              first when Pacemaker throttles to one job per node, see below)
#     proxy    the proxy's start initiated -> the client served again (meta-data, agent, proxy,
#              and up to one probe interval: the first request after the proxy listens)
#     agent    the proxy's start initiated -> its result (the agent returns once it listens)
#   fails      the failed requests: timed out (sent to the failed node's MAC address, or
#              unanswered) / refused (the VIP is up, nothing listens yet) / other
# Usage: bench/lab.sh [RUNS]   (root; default 3 runs per stack and failure)
# The probes' reports (every failed request and why) are kept in target/bench-lab/.
# Everything runs in the lab's own namespaces; each lab is removed by `hapx lab down` on exit.
# Pacemaker halves its parallel jobs per node at a load average of 1.6 x load-threshold per core
# (one job at 2.6 on 2 cores): the script prints the load average before each run.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
cargo build --release -q -p hapx-shell -p hapx-agents -p hapx-proxy
HAPX=$PWD/target/release/hapx
LABS=()
cleanup() { for l in "${LABS[@]}"; do "$HAPX" lab --name "$l" down >/dev/null || true; done; }
trap cleanup EXIT

lab() { "$HAPX" lab --name "$NAME" "$@"; }
state() { awk -v k="$1" '$1==k {print $2}' "/run/hapx-lab/$NAME.state"; }
netns_of() { awk -v h="$1" '$1=="host" && $3==h {print $4}' "/run/hapx-lab/$NAME.state"; }
active() { lab status | awk '/^VIP / {print $NF}'; }
other() { if [ "$1" = hapx-node01 ]; then echo hapx-node02; else echo hapx-node01; fi; }
now() { date +%s.%N; }
# Seconds since midnight UTC of a log line's "Mon DD HH:MM:SS.mmm" (the daemons log in UTC here).
log_sod() { awk '{split($3,t,":"); printf "%.3f\n", t[1]*3600+t[2]*60+t[3]}'; }
sod() { awk -v u="$1" 'BEGIN {printf "%.3f\n", u - int(u/86400)*86400}'; }
# The first line matching RE at or after second-of-day AFTER in both nodes' LOG (the DC, which
# initiates actions, may be either), as a second of day.
first_after() {
  local log=$1 re=$2 after=$3
  grep -hE "$re" "$dir"/hapx-node0[12]/log/"$log" | log_sod | sort -n |
    awk -v a="$after" '$1 >= a {print; exit}'
}
sub() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a - b}'; }

# Runs a probe of SECS seconds in the background (and the client's neighbour monitor, into
# $NEIGH), fails with CMD after 2 s, keeps the probe's report in file REPORT, and prints
# "OUTAGE_START_SOD OUTAGE_END_SOD OUTAGE_SECONDS TIMED_OUT/REFUSED/OTHER" from the probe's
# first outage window.
probe_fail() {
  local secs=$1 out=$2; shift 2
  ip netns exec "$(netns_of client)" ip -ts monitor neigh >"$NEIGH" 2>&1 &
  local monitor=$!
  lab probe --duration "$secs" --verbose >"$out" &
  local probe=$!
  sleep 2
  local t_fail; t_fail=$(now)
  "$@" >/dev/null
  wait "$probe"
  kill "$monitor"; wait "$monitor" 2>/dev/null || true
  local start; start=$(awk '/started at unix time/ {gsub(/\)/,"",$NF); print $NF}' "$out")
  local window; window=$(grep -m1 '^outage from .* to ' "$out" || true)
  if [ -z "$window" ]; then echo "$(sod "$t_fail") - - -"; return; fi
  local from to len fails
  from=$(echo "$window" | awk '{print $3}'); to=$(echo "$window" | awk '{print $6}')
  len=$(echo "$window" | awk '{print $8}')
  fails=$(echo "$window" | sed -E 's/.*: ([0-9]+) timed out, ([0-9]+) refused, ([0-9]+) other.*/\1\/\2\/\3/')
  echo "$(sod "$(awk -v s="$start" -v t="$from" 'BEGIN {printf "%.3f", s + t}')")" \
    "$(sod "$(awk -v s="$start" -v t="$to" 'BEGIN {printf "%.3f", s + t}')") $len $fails"
}

# When the client's neighbour entry for the VIP first named MAC, at or after AFTER (second of
# day), from `ip -ts monitor neigh` lines "[YYYY-MM-DDTHH:MM:SS.us] IP dev eth0 lladdr MAC ...".
neigh_moved() {
  local mac=$1 after=$2 vip; vip=$(state vip)
  awk -v ip="$vip" -v mac="$mac" -v a="$after" '$2 == ip && index($0, "lladdr " mac) {
      split(substr($1, 13, 15), t, ":"); s = t[1]*3600 + t[2]*60 + t[3]
      if (s >= a) { printf "%.3f\n", s; exit } }' "$NEIGH"
}

mac_of() { ip netns exec "$(netns_of "$1")" cat /sys/class/net/eth0/address; }

kill_proxy() {
  local ns; ns=$(netns_of "$1")
  for pid in $(ip netns pids "$ns"); do
    case "$(cat /proc/"$pid"/comm 2>/dev/null)" in hapx-proxy|haproxy) kill -9 "$pid";; esac
  done
}

load() { awk '{print $1}' /proc/loadavg; }

NEIGH=$(mktemp)
KEEP=target/bench-lab
mkdir -p "$KEEP"
declare -A NODE_ROWS PROXY_ROWS
for stack in hapx reference; do
  NAME=bench-$stack-$$
  LABS+=("$NAME")
  lab up --stack "$stack" >/dev/null
  dir=$(state dir)
  for run in $(seq "$RUNS"); do
    victim=$(active); survivor=$(other "$victim"); mac=$(mac_of "$survivor"); l=$(load)
    read -r t_out t_served outage fails < <(probe_fail 16 "$KEEP/$stack-node-$run.txt" lab fail "$victim")
    t_member=$(first_after corosync.log 'Members left' "$t_out")
    t_vip=$(first_after pacemaker.log 'Initiating start operation virtual-ip-resource_start_0' "$t_out")
    t_vip_done=$(first_after pacemaker.log 'Result of start operation for virtual-ip-resource' "$t_out")
    t_arp=$(neigh_moved "$mac" "$t_out")
    t_px=$(first_after pacemaker.log 'Initiating start operation haproxy-resource_start_0' "$t_out")
    t_px_done=$(first_after pacemaker.log 'Result of start operation for haproxy-resource' "$t_out")
    NODE_ROWS[$stack]+="$(printf '%-9s node  run %d (%s, load %s): outage %6s s  detect %6s s  decide %6s s  after %6s s = vip %s arp %s gap %s proxy %s (agent %s)  fails %s' \
      "$stack" "$run" "$victim" "$l" "$outage" "$(sub "$t_member" "$t_out")" "$(sub "$t_vip" "$t_member")" \
      "$(sub "$t_served" "$t_vip")" "$(sub "$t_vip_done" "$t_vip")" "$(sub "$t_arp" "$t_vip")" \
      "$(sub "$t_px" "$t_vip_done")" "$(sub "$t_served" "$t_px")" "$(sub "$t_px_done" "$t_px")" "$fails")"$'\n'
    lab recover "$victim" >/dev/null
    sleep 5
  done
  for run in $(seq "$RUNS"); do
    victim=$(active); l=$(load)
    read -r t_out t_served outage fails < <(probe_fail 26 "$KEEP/$stack-proxy-$run.txt" kill_proxy "$victim")
    t_detect=$(first_after pacemaker.log 'Result of monitor operation for haproxy-resource' "$t_out")
    t_decide=$(first_after pacemaker.log 'Initiating (stop|start) operation haproxy-resource' "$t_out")
    PROXY_ROWS[$stack]+="$(printf '%-9s proxy run %d (%s, load %s): outage %6s s  detect %6s s  decide %6s s  after %6s s  fails %s' \
      "$stack" "$run" "$victim" "$l" "$outage" "$(sub "$t_detect" "$t_out")" "$(sub "$t_decide" "$t_detect")" "$(sub "$t_served" "$t_decide")" "$fails")"$'\n'
    sleep 2
  done
  lab down >/dev/null
done
rm -f "$NEIGH"
echo "Corosync token 3000 ms (the seed's); probe every 50 ms; monitor interval 20 s (the seed's)"
printf '%s%s%s%s' "${NODE_ROWS[hapx]}" "${NODE_ROWS[reference]}" "${PROXY_ROWS[hapx]}" "${PROXY_ROWS[reference]}"
