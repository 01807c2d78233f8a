#!/usr/bin/env bash
# User-space instructions per HTTP keep-alive request, hapx-proxy builds beside HAProxy, counted
# by valgrind's callgrind: the same binary, configuration and requests give the same count
# whatever else the host is doing, where CPU time moves by ~5% on a shared two-core host.
#   [MODE=http|tls|h2-server] bench/proxy-instructions.sh [BINARY...]
# BINARY: hapx-proxy builds to compare (default: this tree's release build); HAProxy ($HAPROXY)
# always runs too. CONNS (4) keep-alive connections each send REQS (500) sequential GETs after a
# warm-up that is not counted. MODE=tls: the bind terminates TLS (an EC P-256 certificate) and
# every GET comes on a new TLS connection with a full handshake (no resumption), so the count
# is per handshake plus one request. MODE=h2-server: the server speaks h2c (`proto h2`), an
# HAProxy outside valgrind answering each request itself (`http-request return`), so that no
# file serving is in any count. Kernel work (the syscalls) is not in these counts: see
# bench/proxy-ab.sh for CPU time. KEEP=DIR keeps each profile there (callgrind_annotate).
source "$(dirname "$0")/proxy-common.sh" proxy-instructions valgrind callgrind_control python3
CONNS=${CONNS:-4} REQS=${REQS:-500} MODE=${MODE:-http}
start_web_server
SERVER_PROTO=
if [ "$MODE" = h2-server ]; then # an h2c server in place of $WEB: HAProxy answering 200 itself
  WEB=$(free_port)
  printf 'defaults\n  mode http\n  timeout client 30s\nfrontend h2srv\n  bind 127.0.0.1:%s proto h2\n  http-request return status 200 content-type text/plain string hello\n' \
    "$WEB" > "$WORK/h2srv.cfg"
  "$HAPROXY" -db -f "$WORK/h2srv.cfg" > "$WORK/h2srv.log" 2>&1 &
  PIDS+=($!)
  SERVER_PROTO=' proto h2'
fi
BINARIES=("${@:-$HAPX}" "$HAPROXY")

BIND_TLS=
if [ "$MODE" = tls ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=127.0.0.1 -keyout "$WORK/srv.key" -out "$WORK/srv.crt" 2>/dev/null
  cat "$WORK/srv.crt" "$WORK/srv.key" >"$WORK/srv.pem"
  BIND_TLS=" ssl crt $WORK/srv.pem"
fi

config() { # PORT
  printf 'global\n  maxconn 7000\ndefaults\n  mode http\n  timeout client 30s\n'
  printf '  timeout server 30s\n  timeout connect 2s\nfrontend fe\n  bind 127.0.0.1:%s%s\n' "$1" "$BIND_TLS"
  printf '  default_backend be\nbackend be\n  balance roundrobin\n  server s1 127.0.0.1:%s%s\n' "$WEB" "$SERVER_PROTO"
}

drive() { # PORT CONNS REQS: CONNS connections at once, each REQS sequential GETs read whole
  python3 - "$@" "$MODE" <<'EOF'
import socket, ssl, sys, threading
port, conns, reqs = map(int, sys.argv[1:4])
tls = sys.argv[4] == "tls"
req = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % port
if tls:
    req = req.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.options |= ssl.OP_NO_TICKET
def connect():
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return ctx.wrap_socket(s) if tls else s
def run():
    s, buf = None, b""
    for _ in range(reqs):
        if s is None or tls:
            if s is not None:
                s.close()
            s, buf = connect(), b""
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

printf '%-40s %s\n' binary "instructions/request${BIND_TLS:+ (a full TLS handshake each)}"
for i in "${!BINARIES[@]}"; do
  printf '%-40s %s\n' "${BINARIES[$i]}" "$(instructions "$i" "${BINARIES[$i]}")"
done
