#!/usr/bin/env bash
# User-space instructions per HTTP keep-alive request, hapx-proxy builds beside HAProxy, counted
# by valgrind's callgrind: the same binary, configuration and requests give the same count
# whatever else the host is doing, where CPU time moves by ~5% on a shared two-core host.
#   bench/proxy-instructions.sh [BINARY...]
# BINARY: hapx-proxy builds to compare (default: this tree's release build); HAProxy ($HAPROXY)
# always runs too. CONNS (4) keep-alive connections each send REQS (500) sequential GETs after a
# warm-up that is not counted. Kernel work (the syscalls) is not in these counts: see
# bench/proxy-ab.sh for CPU time. KEEP=DIR keeps each profile there (callgrind_annotate).
source "$(dirname "$0")/proxy-common.sh" proxy-instructions valgrind callgrind_control python3
CONNS=${CONNS:-4} REQS=${REQS:-500}
start_web_server
BINARIES=("${@:-$HAPX}" "$HAPROXY")

config() { # PORT
  printf 'global\n  maxconn 7000\ndefaults\n  mode http\n  timeout client 30s\n'
  printf '  timeout server 30s\n  timeout connect 2s\nfrontend fe\n  bind 127.0.0.1:%s\n' "$1"
  printf '  default_backend be\nbackend be\n  balance roundrobin\n  server s1 127.0.0.1:%s\n' "$WEB"
}

drive() { # PORT CONNS REQS: CONNS connections at once, each REQS sequential GETs read whole
  python3 - "$@" <<'EOF'
import socket, sys, threading
port, conns, reqs = map(int, sys.argv[1:4])
req = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % port
def run():
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    for _ in range(reqs):
        s.sendall(req)
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                head = buf[:end].lower()
                length = int(head.split(b"content-length:")[1].split(b"\r\n")[0])
                if len(buf) >= end + 4 + length:
                    buf = buf[end + 4 + length:]
                    break
            data = s.recv(65536)
            if not data:
                raise SystemExit("the proxy closed the connection")
            buf += data
    s.close()
threads = [threading.Thread(target=run) for _ in range(conns)]
for t in threads: t.start()
for t in threads: t.join()
EOF
}

wait_listening() { # PORT
  local i
  for i in $(seq 150); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $1)).close()" 2>/dev/null && return
    sleep 0.2
  done
  echo "nothing listens on $1" >&2; exit 1
}

instructions() { # I BINARY: instructions per request of BINARY, counted from after the warm-up
  local port out pid total
  port=$(free_port)
  config "$port" > "$WORK/p$1.cfg"
  out="$WORK/cg.$1"
  valgrind --tool=callgrind --callgrind-out-file="$out.%p" "$2" -db -f "$WORK/p$1.cfg" \
    > "$WORK/p$1.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  wait_listening "$port"
  drive "$port" 2 50
  callgrind_control -z "$pid" &> /dev/null
  drive "$port" "$CONNS" "$REQS"
  callgrind_control -d "$pid" &> /dev/null
  kill "$pid"; wait "$pid" 2>/dev/null || true
  # The dump asked for after the zeroing (`.1`); the one written at exit holds the shutdown.
  total=$(awk '/^summary:/ {print $2}' "$out.$pid.1")
  # KEEP=DIR keeps each binary's profile there, for callgrind_annotate.
  [ -n "${KEEP:-}" ] && cp "$out.$pid.1" "$KEEP/$1.$(basename "$2").callgrind"
  awk -v t="$total" -v n=$((CONNS * REQS)) 'BEGIN {printf "%.0f", t / n}'
}

printf '%-40s %s\n' binary 'instructions/request'
for i in "${!BINARIES[@]}"; do
  printf '%-40s %s\n' "${BINARIES[$i]}" "$(instructions "$i" "${BINARIES[$i]}")"
done
