#!/usr/bin/env bash
# Runs every test binary of the workspace, JOBS at a time (default 2), as `cargo test` would run
# them one after the other: same working directory (the package's), same arguments.
#
#   tools/run-tests.sh [ARGS FOR EACH TEST BINARY...]
#
# Why not plain `cargo test`: it runs the ~160 binaries in sequence, and most of their time is
# spent waiting (health-check intervals, timeouts, Pacemaker elections), not computing. Every test
# already isolates itself (its own ports, namespaces, Pacemaker nodes in private mounts), so
# binaries can run side by side, as the tests inside one binary already do.
#
# Each binary's output is printed whole when it ends, under cargo's own "Running" header, so
# the log reads as cargo's does. The exit status is 101 if any binary failed, as cargo's.
set -euo pipefail
cd "$(dirname "$0")/.."

jobs="${HAPX_TEST_JOBS:-2}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Build every test target once; list each as "package dir <TAB> target name <TAB> executable".
cargo test --workspace --locked --no-run --message-format=json-render-diagnostics |
  jq -r 'select(.reason == "compiler-artifact" and .executable != null and .profile.test)
         | [(.manifest_path | sub("/Cargo.toml$"; "")), .target.name, .executable] | @tsv' \
    > "$work/targets"
echo "tools/run-tests.sh: $(wc -l < "$work/targets") test binaries, $jobs at a time"

# One binary: run it in its package's directory, keep its output, print it whole at its end.
run_one() {
  local dir name exe log status=0
  IFS=$'\t' read -r dir name exe <<< "$1"
  shift
  log="$work/$(basename "$exe").log"
  (cd "$dir" && "$exe" "$@") > "$log" 2>&1 || status=$?
  {
    flock 9
    printf '     Running %s (%s)\n' "$name" "${exe#"$PWD"/}"
    cat "$log"
    if [ "$status" != 0 ]; then printf '%s\t%s\n' "$name" "$exe" >> "$work/failed"; fi
  } 9>> "$work/print.lock"
}
export -f run_one
export work

xargs -d '\n' -P "$jobs" -I {} bash -c 'run_one "$@"' _ {} "$@" < "$work/targets"

# Documentation examples, which cargo builds and runs on its own.
cargo test --workspace --locked --doc || printf 'doc-tests\t(cargo test --doc)\n' >> "$work/failed"

if [ -s "$work/failed" ]; then
  # Each failed binary's own account again, last: a CI log's tail is often all one gets to see.
  while IFS=$'\t' read -r name exe; do
    log="$work/$(basename "$exe").log"
    [ -f "$log" ] || continue
    printf '\n---- why %s failed ----\n' "$name"
    # Each panic with what it said (assertion texts run over lines), then libtest's list.
    grep -A 12 -e 'panicked at' "$log" | head -n 200 || true
    tail -n 12 "$log"
  done < "$work/failed"
  echo "error: $(wc -l < "$work/failed") target(s) failed:"
  sed 's/^/    /' "$work/failed"
  exit 101
fi
