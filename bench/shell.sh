#!/usr/bin/env bash
# Benchmarks hapx's crm shell against crmsh 4.4.1 side by side, whole-process time:
#   1. the seed's configure.crm piped into `configure` on a fresh file CIB (CIB_file);
#   2. `configure show` of the result;
#   3. `status` against `crm_mon -1` on a 1,000-resource file CIB.
# Both shells see the same agents: the heartbeat agents plus hapx's IPaddr2 and haproxy
# (`hapx agents install --provider heartbeat`), mounted over /usr/lib/ocf/resource.d/heartbeat
# in a private mount namespace (needs root), since crmsh only reads /usr/lib/ocf.
# Usage: bench/shell.sh [RUNS]   (default 20 runs each; hyperfine when installed)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-20}
ROOT=$PWD
for tool in crm crm_mon cibadmin unshare; do
  command -v "$tool" >/dev/null || { echo "bench/shell.sh: needs $tool" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "bench/shell.sh: needs root (private mount namespace)" >&2; exit 1; }
cargo build --release -q -p hapx-shell -p hapx-agents --bin hapx --bin hapx-ocf
WORK=$(mktemp -d /tmp/hapx-shell-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# The agents both shells check parameters against.
mkdir -p "$WORK/ocf/resource.d/heartbeat"
cp -a /usr/lib/ocf/resource.d/heartbeat/. "$WORK/ocf/resource.d/heartbeat/"
ln -s /usr/lib/ocf/lib "$WORK/ocf/lib"
"$ROOT/target/release/hapx" agents install --provider heartbeat --ocf-root "$WORK/ocf" \
  --binary "$ROOT/target/release/hapx-ocf" >/dev/null

cibadmin --empty > "$WORK/empty.xml"
cp /work/shared/seed/configure.crm "$WORK/seed.crm" 2>/dev/null || cp ../shared/seed/configure.crm "$WORK/seed.crm"

# A 1,000-resource CIB for status: 2 nodes, 1,000 Dummy primitives, none running.
{
  echo "property stonith-enabled=false"
  echo "node node1"
  echo "node node2"
  for i in $(seq 1 1000); do echo "primitive r$i ocf:heartbeat:Dummy op monitor interval=30s"; done
  echo "commit"
} > "$WORK/big.crm"
cp "$WORK/empty.xml" "$WORK/big.xml"
CIB_file="$WORK/big.xml" OCF_ROOT="$WORK/ocf" "$ROOT/target/release/hapx" configure < "$WORK/big.crm" 2>/dev/null

cat > "$WORK/inner.sh" <<INNER
set -euo pipefail
mount --make-rprivate /
mount --bind "$WORK/ocf/resource.d/heartbeat" /usr/lib/ocf/resource.d/heartbeat
cd "$WORK"
HAPX="$ROOT/target/release/hapx"
if command -v hyperfine >/dev/null; then
  hyperfine -N -w 2 -r $RUNS --export-markdown "$WORK/seed.md" \\
    -p "cp $WORK/empty.xml $WORK/a.xml" -n crmsh "sh -c 'CIB_file=$WORK/a.xml crm configure < $WORK/seed.crm'" \\
    -p "cp $WORK/empty.xml $WORK/b.xml" -n hapx "sh -c 'CIB_file=$WORK/b.xml \$HAPX configure < $WORK/seed.crm'"
  hyperfine -N -w 2 -r $RUNS -n "crmsh show" "sh -c 'CIB_file=$WORK/a.xml crm configure show'" \\
    -n "hapx show" "sh -c 'CIB_file=$WORK/b.xml \$HAPX configure show'"
  hyperfine -N -w 2 -r $RUNS -n "crm_mon -1 (1,000 resources)" "sh -c 'CIB_file=$WORK/big.xml crm_mon -1'" \\
    -n "hapx status (1,000 resources)" "sh -c 'CIB_file=$WORK/big.xml \$HAPX status'"
else
  t() { local s e; s=\$(date +%s%N); for _ in \$(seq $RUNS); do "\$@" >/dev/null 2>&1 || true; done; e=\$(date +%s%N); echo \$(( (e - s) / $RUNS / 1000 )); }
  crm_seed() { cp empty.xml a.xml; CIB_file=a.xml crm configure < seed.crm; }
  hapx_seed() { cp empty.xml b.xml; CIB_file=b.xml \$HAPX configure < seed.crm; }
  c=\$(t crm_seed); h=\$(t hapx_seed)
  echo "seed configure: crmsh \${c} us, hapx \${h} us, ratio \$(( c / (h > 0 ? h : 1) ))x"
fi
cmp <(CIB_file=$WORK/a.xml crm configure show) <(CIB_file=$WORK/b.xml \$HAPX configure show) \\
  && echo "same configuration shown by both"
INNER
unshare --mount bash "$WORK/inner.sh"
