#!/usr/bin/env bash
# hapx's test command: installs what the tests need (as root on Debian), then runs every check.
#
#   sudo tools/test.sh          # what CI runs (.ci/run)
#
# The tests use the real parts: Pacemaker and Corosync, crmsh and crm_simulate as references,
# HAProxy, iproute2 network namespaces. Run as root on Debian 12, this installs them with
# apt-get first. Elsewhere (no root, no apt-get) the tests that need them skip with a loud
# SKIPPED line; with CI set they fail instead.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  pacemaker pacemaker-cli-utils corosync crmsh resource-agents   # the cluster stack and references
  haproxy                                                        # the reference load balancer
  iproute2 iputils-ping arping                                   # namespaces, reachability, ARP
  libxml2-utils                                                  # xmllint: meta-data against the DTD
  iperf3 wrk nghttp2-client nghttp2-server valgrind              # load tools (h2load, callgrind), an HTTP/2 server (nghttpd)
  procps psmisc                                                  # ps, pgrep, fuser for harnesses
  groff-base man-db                                              # man pages render without warnings
  whois                                                          # mkpasswd: userlist password hashes
  curl                                                           # HTTP/2 clients in proxy_h2
  jq                                                             # tools/run-tests.sh reads cargo's JSON
  libpcre2-dev                                                   # hapx-proxy links HAProxy's PCRE2 (10.42)
)

install_packages() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "tools/test.sh: installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  install_packages
else
  echo "tools/test.sh: not root on Debian: not installing packages; tests needing them will SKIP" >&2
fi

# CI builds once, from a clean clone: incremental caches would only cost disk there.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi

set -x
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The integration tests run the built binaries (hapx, hapx-ocf, hapx-proxy).
cargo build --workspace --locked
# Every test binary, two at a time (what `cargo test --workspace --no-fail-fast` runs, one at a time).
tools/run-tests.sh
