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

# A 1,000-resource CIB for status: 2 online nodes, 1,000 Dummy primitives, each started on
# one node with its recurring monitor (every 10th one failed there once), as a settled cluster's
# status section records them.
{
  echo "property stonith-enabled=false"
  echo "node 1: node1"
  echo "node 2: node2"
  for i in $(seq 1 1000); do echo "primitive r$i ocf:heartbeat:Dummy op monitor interval=30s"; done
  echo "commit"
} > "$WORK/big.crm"
cp "$WORK/empty.xml" "$WORK/big.xml"
CIB_file="$WORK/big.xml" OCF_ROOT="$WORK/ocf" "$ROOT/target/release/hapx" configure < "$WORK/big.crm" 2>/dev/null
status_section() {
  local n op
  echo "<status>"
  for n in 1 2; do
    echo "<node_state id=\"$n\" uname=\"node$n\" in_ccm=\"true\" crmd=\"online\" join=\"member\" expected=\"member\">"
    echo "<transient_attributes id=\"$n\"><instance_attributes id=\"status-$n\">"
    for i in $(seq $n 20 1000); do
      echo "<nvpair id=\"status-$n-fc-r$i\" name=\"fail-count-r$i#monitor_30000\" value=\"1\"/>"
    done
    echo "</instance_attributes></transient_attributes><lrm id=\"$n\"><lrm_resources>"
    for i in $(seq 1 1000); do
      if [ $(( i % 2 + 1 )) = $n ]; then
        echo "<lrm_resource id=\"r$i\" class=\"ocf\" provider=\"heartbeat\" type=\"Dummy\">"
        echo "<lrm_rsc_op id=\"r${i}_last_0\" operation_key=\"r${i}_start_0\" operation=\"start\" transition-key=\"1:1:0:x\" transition-magic=\"0:0;1:1:0:x\" call-id=\"$(( i + 3000 ))\" rc-code=\"0\" op-status=\"0\" interval=\"0\" last-rc-change=\"1700000000\" exec-time=\"10\"/>"
        echo "<lrm_rsc_op id=\"r${i}_monitor_30000\" operation_key=\"r${i}_monitor_30000\" operation=\"monitor\" transition-key=\"2:1:0:x\" transition-magic=\"0:0;2:1:0:x\" call-id=\"$(( i + 4000 ))\" rc-code=\"0\" op-status=\"0\" interval=\"30000\" last-rc-change=\"1700000000\" exec-time=\"5\"/>"
        if [ $(( i % 10 )) = 1 ]; then
          echo "<lrm_rsc_op id=\"r${i}_last_failure_0\" operation_key=\"r${i}_monitor_30000\" operation=\"monitor\" transition-key=\"2:1:0:x\" transition-magic=\"0:7;2:1:0:x\" call-id=\"$(( i + 1000 ))\" rc-code=\"7\" op-status=\"0\" interval=\"30000\" last-rc-change=\"1700000000\" exec-time=\"5\"/>"
        fi
        echo "</lrm_resource>"
      fi
    done
    echo "</lrm_resources></lrm></node_state>"
  done
  echo "</status>"
}
status_section > "$WORK/status.xml"
python3 - "$WORK/big.xml" "$WORK/status.xml" <<'PY'
import re, sys
cib, status = open(sys.argv[1]).read(), open(sys.argv[2]).read()
cib = re.sub(r"<status\s*/>|<status>.*?</status>", lambda _: status, cib, flags=re.S)
cib = cib.replace("<cib ", '<cib have-quorum="1" dc-uuid="1" ', 1)
open(sys.argv[1], "w").write(cib)
PY
# Both render the same text (the clock line aside) before anything is timed.
diff <(CIB_file="$WORK/big.xml" crm_mon -1 -rf | grep -v "Last updated") \
     <(CIB_file="$WORK/big.xml" "$ROOT/target/release/hapx" status -rf | grep -v "Last updated") \
  && echo "status: hapx prints what crm_mon -1 -rf prints on the 1,000-resource CIB"

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
  hyperfine -N -w 2 -r $RUNS -n "crm_mon -1 -rf (1,000 resources)" "sh -c 'CIB_file=$WORK/big.xml crm_mon -1 -rf'" \\
    -n "hapx status -rf (1,000 resources)" "sh -c 'CIB_file=$WORK/big.xml \$HAPX status -rf'"
else
  t() { local s e; s=\$(date +%s%N); for _ in \$(seq $RUNS); do "\$@" >/dev/null 2>&1 || true; done; e=\$(date +%s%N); echo \$(( (e - s) / $RUNS / 1000 )); }
  crm_seed() { cp empty.xml a.xml; CIB_file=a.xml crm configure < seed.crm; }
  hapx_seed() { cp empty.xml b.xml; CIB_file=b.xml \$HAPX configure < seed.crm; }
  c=\$(t crm_seed); h=\$(t hapx_seed)
  echo "seed configure: crmsh \${c} us, hapx \${h} us, ratio \$(( c / (h > 0 ? h : 1) ))x"
  mon() { CIB_file=big.xml crm_mon -1 -rf; }
  st() { CIB_file=big.xml \$HAPX status -rf; }
  c=\$(t mon); h=\$(t st)
  echo "status (1,000 resources): crm_mon -1 -rf \${c} us, hapx status -rf \${h} us, ratio \$(( c / (h > 0 ? h : 1) ))x"
fi
cmp <(CIB_file=$WORK/a.xml crm configure show) <(CIB_file=$WORK/b.xml \$HAPX configure show) \\
  && echo "same configuration shown by both"
INNER
unshare --mount bash "$WORK/inner.sh"
