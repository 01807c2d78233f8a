#!/usr/bin/env bash
# HTTP keep-alive with Basic authentication against a `userlist`, through hapx-proxy and
# HAProxy 2.6 side by side: one frontend per password hash (insecure-password, MD5 crypt,
# SHA-512 crypt, yescrypt as `mkpasswd` makes them), each with `http-request auth unless
# { http_auth(L) }`, every request carrying the right credentials. Both proxies check with
# the same libcrypt; HAProxy hashes at every evaluation, hapx remembers each thread's last
# successful checks. The last row sends a wrong password (401s): every request is hashed in
# both. wrk -t2 -c64, SECS per run (default 3), ROUNDS alternating rounds
# (default 2), best kept; proxy CPU ms per 1000 requests.
# A second table (wrong_password_flood, below) measures what a wrong-password flood does to
# unrelated traffic in the same process: 4 keep-alive wrk clients send a wrong yescrypt
# password to one frontend as fast as they are answered while a probe times PROBES (default
# 100) sequential `connection: close` requests to another frontend that checks nothing
# (median, p99, max in ms, idle and under the flood), plus the wrong-password checks/s
# achieved. HAProxy hashes inline on its worker threads; hapx hashes off them
# (`crypt::precheck`), so its other traffic should not wait behind the hashes.
# Traffic stays on 127.0.0.1; every process started here is stopped by its pid on exit.
# Usage: [SECS=3] [ROUNDS=2] [PROBES=100] bench/proxy-auth.sh
SECS=${SECS:-3}; ROUNDS=${ROUNDS:-2}
source "$(dirname "$0")/proxy-common.sh" authbench wrk python3 mkpasswd
start_web_server
KINDS=(insecure md5crypt sha512crypt yescrypt)
config() { # PORT... (one per kind)
  cat <<CFG
userlist L
  user insecure insecure-password pw
  user md5crypt password '$(mkpasswd -m md5crypt pw)'
  user sha512crypt password '$(mkpasswd -m sha512crypt pw)'
  user yescrypt password '$(mkpasswd -m yescrypt pw)'
defaults
  mode http
  timeout client 30s
  timeout server 30s
  timeout connect 2s
CFG
  for kind in "${KINDS[@]}"; do
    printf 'frontend %s\n  bind 127.0.0.1:%s\n  http-request auth unless { http_auth(L) }\n  default_backend web\n' \
      "$kind" "$1"
    shift
  done
  echo "backend web"
  echo "  server w1 127.0.0.1:$WEB"
}
for name in haproxy hapx; do
  ports=()
  for k in "${!KINDS[@]}"; do PORT[$name,$k]=$(free_port); ports+=("${PORT[$name,$k]}"); done
  config "${ports[@]}" > "$WORK/$name.cfg"
  start_proxy $name "$(proxy_binary $name)" "$WORK/$name.cfg"
done
sleep 1
# Rows: USER:PASSWORD, sent to USER's frontend.
ROWS=(insecure:pw md5crypt:pw sha512crypt:pw yescrypt:pw yescrypt:wrong)
auth_rps() { # PORT USER:PASSWORD: wrk_rps with these Basic credentials
  wrk -t2 -c64 -d"${SECS}s" -H "Authorization: Basic $(printf '%s' "$2" | base64)" \
    "http://127.0.0.1:$1/" | awk '/Requests\/sec/ {printf "%.0f", $2}'
}
for round in $(seq "$ROUNDS"); do
  for name in haproxy hapx; do
    for k in "${!ROWS[@]}"; do
      user=${ROWS[$k]%%:*}
      for f in "${!KINDS[@]}"; do [ "${KINDS[$f]}" = "$user" ] && fe=$f; done
      c0=$(cpu_ms "${PID[$name]}")
      rps=$(auth_rps "${PORT[$name,$fe]}" "${ROWS[$k]}")
      best "$name,$k,rps" "$rps" max
      best "$name,$k,cpu" "$(per_kconn $(($(cpu_ms "${PID[$name]}") - c0)) "$rps" 2)" min
    done
  done
done
printf "%-20s %10s %10s %8s %14s %14s\n" user:password "haproxy/s" "hapx/s" ratio "haproxy cpu" "hapx cpu"
for k in "${!ROWS[@]}"; do
  h=${R[haproxy,$k,rps]}; x=${R[hapx,$k,rps]}
  printf "%-20s %10s %10s %8s %14s %14s\n" "${ROWS[$k]}" "$h" "$x" \
    "$(awk -v a="$x" -v b="$h" 'BEGIN {printf "%.2fx", a / b}')" "${R[haproxy,$k,cpu]}" "${R[hapx,$k,cpu]}"
done

# What a wrong-password flood does to unrelated traffic in the same process. Fresh proxies,
# each with two frontends: `auth` checks a yescrypt user (`http-request auth unless
# { http_auth(F) }`, then `http-request return status 200`), `other` answers `http-request
# return status 200` and checks nothing. wrk -t1 -c4 keeps 4 keep-alive clients sending a wrong
# password to `auth` as fast as they get answers (every request is a full hash, a 401), while
# a probe times PROBES (default 100) sequential `connection: close` requests to `other`,
# 10 ms apart: median, p99 and max in ms, idle and under the flood, and the wrong-password
# checks/s the flood achieved. HAProxy hashes inline on its worker threads, so `other`'s
# accepts wait behind ~15 ms yescrypt hashes; hapx hashes on a bounded blocking pool
# (`crypt::precheck`) and its workers keep serving. ROUNDS alternating, best of each kept.
PROBES=${PROBES:-100}
probe() { # MODE PORT: MODE latency prints "median p99 max" (ms) of PROBES requests to PORT;
  # MODE status prints the HTTP status of one request (Basic credentials in $CREDS, if set)
  python3 - "$1" "$2" "$PROBES" "${CREDS:-}" <<'PY'
import base64, math, socket, statistics, sys, time
mode, port, n, creds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
auth = f"authorization: Basic {base64.b64encode(creds.encode()).decode()}\r\n" if creds else ""
request = f"GET / HTTP/1.1\r\nhost: probe\r\n{auth}connection: close\r\n\r\n".encode()
def once():  # the whole exchange, connect to close; returns the status line's code
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    return reply.split(b" ", 2)[1].decode() if reply.startswith(b"HTTP/1.") else "none"
if mode == "status":
    print(once())
    sys.exit()
times = []
for _ in range(n):
    start = time.perf_counter()
    if (status := once()) != "200":
        sys.exit(f"probe: status {status} from 127.0.0.1:{port}")
    times.append((time.perf_counter() - start) * 1000)
    time.sleep(0.01)
times.sort()
p99 = times[math.ceil(0.99 * n) - 1]  # nearest rank
print(f"{statistics.median(times):.2f} {p99:.2f} {times[-1]:.2f}")
PY
}
flood_config() { # AUTH_PORT OTHER_PORT
  cat <<CFG
userlist F
  user u password '$(mkpasswd -m yescrypt pw)'
defaults
  mode http
  timeout client 30s
  timeout server 30s
  timeout connect 2s
frontend auth
  bind 127.0.0.1:$1
  http-request auth unless { http_auth(F) }
  http-request return status 200
frontend other
  bind 127.0.0.1:$2
  http-request return status 200
CFG
}
flood_probe() { # NAME: the probe's figures on `other`, idle then under a wrong-password flood on `auth`
  local figures idle under wrk_pid wrk_out=$WORK/flood-$1.wrk lat
  figures=$(probe latency "${PORT[$1,other]}") # (a failed probe stops the script here)
  read -r -a idle <<<"$figures"
  wrk -t1 -c4 -d120s -H "Authorization: Basic $(printf 'u:wrong' | base64)" \
    "http://127.0.0.1:${PORT[$1,auth]}/" > "$wrk_out" &
  wrk_pid=$!
  PIDS+=("$wrk_pid")
  sleep 0.5 # the flood at full rate before the probe starts
  figures=$(probe latency "${PORT[$1,other]}")
  read -r -a under <<<"$figures"
  kill -INT "$wrk_pid" # wrk stops and prints its summary
  wait "$wrk_pid"
  # Every flood request must have been refused (a 401), else it measured something else.
  awk '/requests in/ {n = $1} /Non-2xx/ {bad = $NF} END {exit !(n > 0 && bad == n)}' "$wrk_out" ||
    { echo "flood on $1 was not all 401s:" >&2; cat "$wrk_out" >&2; exit 1; }
  for lat in 0 1 2; do
    best "$1,idle$lat" "${idle[$lat]}" min
    best "$1,under$lat" "${under[$lat]}" min
  done
  best "$1,checks" "$(awk '/Requests\/sec/ {printf "%.0f", $2}' "$wrk_out")" max
}
wrong_password_flood() {
  local name k status
  for name in haproxy hapx; do
    k=flood,$name; PORT[$k,auth]=$(free_port); PORT[$k,other]=$(free_port)
    flood_config "${PORT[$k,auth]}" "${PORT[$k,other]}" > "$WORK/flood-$name.cfg"
    start_proxy $k "$(proxy_binary $name)" "$WORK/flood-$name.cfg"
  done
  sleep 1
  for name in haproxy hapx; do # the setup answers as meant before anything is timed
    k=flood,$name
    status="$(CREDS=u:pw probe status "${PORT[$k,auth]}") $(CREDS=u:wrong probe status "${PORT[$k,auth]}")"
    status+=" $(probe status "${PORT[$k,other]}")"
    [ "$status" = "200 401 200" ] ||
      { echo "$name: auth right, auth wrong, other answered $status, not 200 401 200" >&2; exit 1; }
  done
  for round in $(seq "$ROUNDS"); do
    for name in haproxy hapx; do flood_probe "flood,$name"; done
  done
  printf '\n%-44s %10s %10s %8s\n' "wrong-password flood, other frontend" HAProxy hapx ratio
  local key label h x
  for key in idle0:"idle: probe median, ms" idle1:"idle: probe p99, ms" idle2:"idle: probe max, ms" \
    under0:"4 wrong-password clients: probe median, ms" under1:"4 wrong-password clients: probe p99, ms" \
    under2:"4 wrong-password clients: probe max, ms" checks:"wrong-password checks/s"; do
    label=${key#*:}; key=${key%%:*}
    h=${R[flood,haproxy,$key]}; x=${R[flood,hapx,$key]}
    printf '%-44s %10s %10s %8s\n' "$label" "$h" "$x" "$(awk -v h="$h" -v x="$x" -v k="$key" \
      'BEGIN {printf "%.2f", k == "checks" ? x / h : h / x}')"
  done
  echo "(probe: $PROBES sequential connection: close requests; ratio: HAProxy / hapx for latencies,"
  echo " hapx / HAProxy for checks/s: above 1 is hapx better; best of $ROUNDS rounds each;"
  echo " load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores)"
}
wrong_password_flood
