#!/usr/bin/env bash
# User-space instructions per HTTP request, hapx-proxy builds beside HAProxy, counted by
# valgrind's callgrind: the same binary, configuration and requests give the same count whatever
# else the host is doing, where CPU time moves by ~5% on a shared two-core host.
#   [MODE=...] bench/proxy-instructions.sh [BINARY...]
#   [MODE=...] OLD=REV NEW=REV bench/proxy-instructions.sh
# BINARY: hapx-proxy builds to compare (default: this tree's release build). OLD/NEW: instead,
# release builds of two commits, each made once in a worktree under $BUILDS
# (/tmp/hapx-instr-builds) and reused by later runs of any mode (remove with `git worktree
# remove $BUILDS/wt-REV`); the backend then comes from NEW's build, and this tree is not built.
# HAProxy ($HAPROXY) always runs too, with the same configuration. CONNS (4) keep-alive
# connections each send REQS (500) sequential requests after a warm-up that is not counted.
# MODE:
#   http       GET, a 2-byte `content-length` answer (the default).
#   close      the same GET, each on a connection of its own (`Connection: close`): per
#              connection plus one GET.
#   tls        the bind terminates TLS (an EC P-256 certificate) and every GET comes on a new
#              TLS connection with a full handshake (no resumption): per handshake plus one GET.
#   tls-keepalive  the same bind, each connection's REQS GETs over one TLS connection.
#   h2-server  the server speaks h2c (`proto h2`), an HAProxy outside valgrind answering each
#              request itself (`http-request return`), so that no file serving is in any count.
#   chunked    a POST whose body (BODY bytes, 16384, in CHUNKS chunks, 4) is chunked, answered
#              by a chunked body of the same size (bench/chunked-server.py); REQUEST_BODY=0
#              sends a GET instead, so that only the answer carries a body.
#   sized      as chunked, the bodies with a `content-length`: the same bytes, not chunked.
# Kernel work (the syscalls) is not in these counts: see bench/proxy-ab.sh for CPU time.
# KEEP=DIR keeps each profile there (callgrind_annotate).
source "$(dirname "$0")/proxy-common.sh" proxy-instructions valgrind callgrind_control python3
CONNS=${CONNS:-4} REQS=${REQS:-500} MODE=${MODE:-http}
BODY=${BODY:-16384} CHUNKS=${CHUNKS:-4} REQUEST_BODY=${REQUEST_BODY:-1}
BUILDS=${BUILDS:-/tmp/hapx-instr-builds}
case "$MODE" in
  http | close | tls | tls-keepalive | h2-server | chunked | sized) ;;
  *) echo "proxy-instructions: unknown MODE=$MODE" >&2; exit 2 ;;
esac

wait_listening() { # PORT
  local i
  for i in $(seq 150); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $1)).close()" 2>/dev/null && return
    sleep 0.2
  done
  echo "nothing listens on $1" >&2; exit 1
}

build_commit() { # REV: prints the directory holding REV's release hapx-proxy and proxy-load
  local rev out
  rev=$(git rev-parse --short=7 "$1^{commit}")
  out="$BUILDS/bin-$rev"
  mkdir -p "$BUILDS"
  ( # one build at a time, whatever runs of this script start together
    flock 9
    [ -x "$out/hapx-proxy" ] && [ -x "$out/proxy-load" ] && exit
    [ -d "$BUILDS/wt-$rev" ] || git worktree add -q --detach "$BUILDS/wt-$rev" "$rev"
    # The registry crates' builds of this tree's target dir are valid for any worktree: seeding
    # the shared target dir with them leaves only the workspace crates to compile.
    if [ ! -d "$BUILDS/target/release" ] && [ -d target/release/deps ]; then
      mkdir -p "$BUILDS/target/release"
      cp -a target/release/deps target/release/build target/release/.fingerprint \
        "$BUILDS/target/release/"
    fi
    (cd "$BUILDS/wt-$rev" && CARGO_TARGET_DIR="$BUILDS/target" cargo build --release -q \
      -p hapx-proxy --bin hapx-proxy --example proxy-load)
    mkdir -p "$out"
    cp "$BUILDS/target/release/hapx-proxy" "$BUILDS/target/release/examples/proxy-load" "$out/"
  ) 9> "$BUILDS/.lock" >&2 || return
  echo "$out"
}

if [ -n "${OLD:-}${NEW:-}" ]; then
  [ -n "${OLD:-}" ] && [ -n "${NEW:-}" ] && [ $# -eq 0 ] \
    || { echo "proxy-instructions: OLD and NEW go together, without BINARY" >&2; exit 2; }
  OLD_DIR=$(build_commit "$OLD")
  NEW_DIR=$(build_commit "$NEW")
  set -- "$OLD_DIR/hapx-proxy" "$NEW_DIR/hapx-proxy"
  LABELS=("OLD $OLD" "NEW $NEW")
  LOAD="$NEW_DIR/proxy-load"
  WEB=$(free_port)
  $LOAD server "$WEB" &
  PIDS+=($!)
  sleep 0.5
else
  start_web_server
fi
if [ "$MODE" = chunked ] || [ "$MODE" = sized ]; then # bodies of BODY bytes in place of $WEB
  WEB=$(free_port)
  python3 bench/chunked-server.py "$WEB" "$BODY" "$CHUNKS" "$MODE" &
  PIDS+=($!)
  wait_listening "$WEB"
fi
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
[ -n "${LABELS+set}" ] || LABELS=("${BINARIES[@]}")
LABELS[${#BINARIES[@]} - 1]=$HAPROXY

BIND_TLS=
if [ "$MODE" = tls ] || [ "$MODE" = tls-keepalive ]; then
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

drive() { # PORT CONNS REQS: CONNS connections at once, each REQS sequential requests read whole
  python3 - "$@" "$MODE" "$BODY" "$CHUNKS" "$REQUEST_BODY" <<'EOF'
import socket, ssl, sys, threading
port, conns, reqs = map(int, sys.argv[1:4])
mode = sys.argv[4]
body, chunks, request_body = map(int, sys.argv[5:8])
tls = mode in ("tls", "tls-keepalive")
per_connection = mode in ("tls", "close")  # one request per connection
req = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % port
if per_connection:
    req = req.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
if mode in ("chunked", "sized") and request_body:
    data = b"y" * body
    if mode == "sized":
        framed, field = data, b"Content-Length: %d" % body
    else:
        step = -(-body // chunks)
        parts = [data[i : i + step] for i in range(0, body, step)]
        framed = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
        field = b"Transfer-Encoding: chunked"
    req = b"POST / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s\r\n\r\n%s" % (port, field, framed)
if tls:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.options |= ssl.OP_NO_TICKET
def connect():
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return ctx.wrap_socket(s) if tls else s
def chunked_end(buf, at):
    """Where the chunked body starting at `at` ends in buf, or None while incomplete."""
    while True:
        line = buf.find(b"\r\n", at)
        if line < 0:
            return None
        size = int(buf[at:line].split(b";")[0], 16)
        if size == 0:
            end = buf.find(b"\r\n\r\n", line)  # after the trailers, if any
            return None if end < 0 else end + 4
        at = line + 2 + size + 2
        if at > len(buf):
            return None
def response_end(buf):
    """Where the first whole response in buf ends, or None while incomplete."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buf[:end].lower()
    if b"transfer-encoding: chunked" in head:
        return chunked_end(buf, end + 4)
    length = int(head.split(b"content-length:")[1].split(b"\r\n")[0])
    return end + 4 + length if len(buf) >= end + 4 + length else None
def run():
    s, buf = None, b""
    for _ in range(reqs):
        if s is None or per_connection:
            if s is not None:
                s.close()
            s, buf = connect(), b""
        s.sendall(req)
        while (end := response_end(buf)) is None:
            data = s.recv(65536)
            if not data:
                raise SystemExit("the proxy closed the connection")
            buf += data
        buf = buf[end:]
    s.close()
threads = [threading.Thread(target=run) for _ in range(conns)]
for t in threads: t.start()
for t in threads: t.join()
EOF
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

case "$MODE" in
  tls) WHAT=" (a full TLS handshake each)" ;;
  chunked | sized) WHAT=" ($BODY-byte $MODE $([ "$REQUEST_BODY" = 0 ] && echo answers || echo bodies))" ;;
  *) WHAT= ;;
esac
printf '%-40s %s\n' binary "instructions/request$WHAT"
for i in "${!BINARIES[@]}"; do
  printf '%-40s %s\n' "${LABELS[$i]}" "$(instructions "$i" "${BINARIES[$i]}")"
done
