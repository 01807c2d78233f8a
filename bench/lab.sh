#!/usr/bin/env bash
# Client-visible outage of the seed's cluster on a node failure and on a proxy failure, hapx
# stack vs reference stack (resource-agents' IPaddr2 + HAProxy 2.6 under ocf:heartbeat:anything),
# same Corosync timings (token 3000 ms), RUNS runs each, in one run of this script.
#
# For each failure, from the probe (a request through the VIP every 50 ms) and the surviving
# node's logs (Corosync's and Pacemaker's high-resolution timestamps):
#   outage     first failed request -> first answered request
#   detect     outage start -> Corosync's new membership without the node   (node failure)
#              outage start -> the monitor's failed result                  (proxy failure)
#   decide     -> the controller initiates the first recovery action
#   after      the controller's decision -> the first answered request (agents, proxy, ARP)
# Usage: bench/lab.sh [RUNS]   (root; default 3 runs per stack and failure)
# Everything runs in the lab's own namespaces; each lab is removed by `hapx lab down` on exit.
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

# Runs a probe of SECS seconds in the background, fails with CMD after 2 s, and prints
# "OUTAGE_START_SOD OUTAGE_END_SOD OUTAGE_SECONDS" from the probe's first outage window.
probe_fail() {
  local secs=$1; shift
  local out; out=$(mktemp)
  lab probe --duration "$secs" >"$out" &
  local probe=$!
  sleep 2
  local t_fail; t_fail=$(now)
  "$@" >/dev/null
  wait "$probe"
  local start; start=$(awk '/started at unix time/ {gsub(/\)/,"",$NF); print $NF}' "$out")
  local window; window=$(grep -m1 '^outage from .* to ' "$out" || true)
  rm -f "$out"
  if [ -z "$window" ]; then echo "$(sod "$t_fail") - -"; return; fi
  local from to len
  from=$(echo "$window" | awk '{print $3}'); to=$(echo "$window" | awk '{print $6}')
  len=$(echo "$window" | awk '{print $8}')
  echo "$(sod "$(awk -v s="$start" -v t="$from" 'BEGIN {printf "%.3f", s + t}')")" \
    "$(sod "$(awk -v s="$start" -v t="$to" 'BEGIN {printf "%.3f", s + t}')") $len"
}

kill_proxy() {
  local ns; ns=$(netns_of "$1")
  for pid in $(ip netns pids "$ns"); do
    case "$(cat /proc/"$pid"/comm 2>/dev/null)" in hapx-proxy|haproxy) kill -9 "$pid";; esac
  done
}

declare -A NODE_ROWS PROXY_ROWS
for stack in hapx reference; do
  NAME=bench-$stack-$$
  LABS+=("$NAME")
  lab up --stack "$stack" >/dev/null
  dir=$(state dir)
  for run in $(seq "$RUNS"); do
    victim=$(active); survivor=$(other "$victim")
    read -r t_out t_served outage < <(probe_fail 16 lab fail "$victim")
    t_member=$(first_after corosync.log 'Members left' "$t_out")
    t_decide=$(first_after pacemaker.log 'Initiating start operation virtual-ip-resource_start_0' "$t_out")
    NODE_ROWS[$stack]+="$(printf '%-9s node  run %d (%s): outage %6s s  detect %6s s  decide %6s s  after %6s s' \
      "$stack" "$run" "$victim" "$outage" "$(sub "$t_member" "$t_out")" "$(sub "$t_decide" "$t_member")" "$(sub "$t_served" "$t_decide")")"$'\n'
    lab recover "$victim" >/dev/null
    sleep 5
  done
  for run in $(seq "$RUNS"); do
    victim=$(active)
    read -r t_out t_served outage < <(probe_fail 26 kill_proxy "$victim")
    t_detect=$(first_after pacemaker.log 'Result of monitor operation for haproxy-resource' "$t_out")
    t_decide=$(first_after pacemaker.log 'Initiating (stop|start) operation haproxy-resource' "$t_out")
    PROXY_ROWS[$stack]+="$(printf '%-9s proxy run %d (%s): outage %6s s  detect %6s s  decide %6s s  after %6s s' \
      "$stack" "$run" "$victim" "$outage" "$(sub "$t_detect" "$t_out")" "$(sub "$t_decide" "$t_detect")" "$(sub "$t_served" "$t_decide")")"$'\n'
    sleep 2
  done
  lab down >/dev/null
done
echo "Corosync token 3000 ms (the seed's); probe every 50 ms; monitor interval 20 s (the seed's)"
printf '%s%s%s%s' "${NODE_ROWS[hapx]}" "${NODE_ROWS[reference]}" "${PROXY_ROWS[hapx]}" "${PROXY_ROWS[reference]}"
