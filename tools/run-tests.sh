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
# Its failed tests run once more, alone: one that passes then is a flaky test, listed at the
# end with its first failure, and does not fail the run; one that fails again does.
run_one() {
  local dir name exe log status=0 failed
  IFS=$'\t' read -r dir name exe <<< "$1"
  shift
  log="$work/$(basename "$exe").log"
  (cd "$dir" && "$exe" "$@") > "$log" 2>&1 || status=$?
  failed="$(sed -n 's/^---- \(.*\) stdout ----$/\1/p' "$log")"
  if [ "$status" != 0 ] && [ -n "$failed" ]; then
    printf '\n     Rerunning the failed tests of %s: %s\n' "$name" "$(echo $failed)" >> "$log"
    cp "$log" "$log.first"
    # shellcheck disable=SC2046 # one argument per test name (libtest's names have no spaces)
    if (cd "$dir" && "$exe" "$@" --exact $failed) >> "$log" 2>&1; then
      status=0
      printf '%s\t%s\t%s\n' "$name" "$exe" "$(echo $failed)" >> "$work/flaky"
    fi
  fi
  {
    flock 9
    printf '     Running %s (%s)\n' "$name" "${exe#"$PWD"/}"
    cat "$log"
    if [ "$status" != 0 ]; then printf '%s\t%s\n' "$name" "$exe" >> "$work/failed"; fi
  } 9>> "$work/print.lock"
}
export -f run_one

# What each panic of a log said, without backtraces: the lines from `panicked at` to the
# backtrace or the next test's section.
panics() {
  awk '/panicked at/ { p = 1 }
       p && (/^stack backtrace:/ || /^note: / || /^---- / || /^failures:/) { p = 0 }
       p { print }' "$1" | head -n 60
}
export work

xargs -d '\n' -P "$jobs" -I {} bash -c 'run_one "$@"' _ {} "$@" < "$work/targets"

# Documentation examples, which cargo builds and runs on its own.
cargo test --workspace --locked --doc || printf 'doc-tests\t(cargo test --doc)\n' >> "$work/failed"

if [ -s "$work/flaky" ]; then
  # Tests that failed and then passed alone: not a failed run, but never quiet.
  while IFS=$'\t' read -r name exe tests; do
    printf '\n---- FLAKY in %s: %s (failed, then passed when rerun) ----\n' "$name" "$tests"
    panics "$work/$(basename "$exe").log.first"
  done < "$work/flaky"
fi

if [ -s "$work/failed" ]; then
  # Each failed binary's own account again, last: a CI log's tail is often all one gets to see.
  while IFS=$'\t' read -r name exe; do
    log="$work/$(basename "$exe").log"
    [ -f "$log" ] || continue
    printf '\n---- why %s failed ----\n' "$name"
    panics "$log"
    grep -e '^test result:' "$log" || tail -n 12 "$log"
  done < "$work/failed"
  echo "error: $(wc -l < "$work/failed") target(s) failed:"
  sed 's/^/    /' "$work/failed"
  exit 101
fi
