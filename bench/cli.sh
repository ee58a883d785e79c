#!/usr/bin/env bash
# Benchmarks of the jobctl command line and its session daemon, against raw
# baselines measured in the same run:
#   1. 1,000 x `jobctl start -q -- true`, then `jobctl wait`,
#      vs GNU parallel -j2 and xargs -P2 running the same 1,000 `true`
#   2. the cost of a start at 10,000 jobs in the table vs at 1 (flat?)
#   3. `jobctl list` latency at 10,000 jobs
#   4. receive of a large job's output to /dev/null vs `cat` of the same bytes
#   5. the daemon's RSS at 10,000 finished jobs
#
# Usage: bench/cli.sh [--quick]       (needs hyperfine, GNU parallel, jq)
# Builds jobctl in release mode first. BIG_MIB sets the receive size (1024);
# SKIP_PEERS=1 leaves out the comparison with parallel and xargs.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
RUNS=5; [ $QUICK = 1 ] && RUNS=2
BIG_MIB=${BIG_MIB:-1024}
TARGET=${CARGO_TARGET_DIR:-target}
scripts/build-release --quiet
JOBCTL=$(realpath "$TARGET/release/jobctl")
for t in hyperfine parallel jq; do
  command -v $t >/dev/null || { echo "bench/cli.sh needs $t" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/jobctl-bench.XXXXXX)
export JOBCTL_HOME=$WORK/home
cleanup() { "$JOBCTL" daemon stop >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT
"$JOBCTL" daemon start >/dev/null

mean() { jq -r '.results[0].mean' "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
ms() { awk -v s="$1" -v n="${2:-1}" 'BEGIN { printf "%.3f", s * 1000 / n }'; }

if [ -z "${SKIP_PEERS:-}" ]; then
echo "== 1. 1,000 jobs of \`true\`: jobctl start + wait vs parallel -j2 vs xargs -P2"
cat > "$WORK/jobctl-1000.sh" <<SH
for i in \$(seq 1000); do "$JOBCTL" start -q -- true >/dev/null; done
"$JOBCTL" wait >/dev/null
SH
cat > "$WORK/jobctl-1000-p2.sh" <<SH
seq 1000 | xargs -P2 -I{} "$JOBCTL" start -q -- true >/dev/null
"$JOBCTL" wait >/dev/null
SH
hyperfine -N --runs $RUNS --warmup 1 \
  --prepare "$JOBCTL rm --all --force" \
  --export-json "$WORK/b1-jobctl.json" "sh $WORK/jobctl-1000.sh" >/dev/null
hyperfine -N --runs $RUNS --warmup 1 \
  --prepare "$JOBCTL rm --all --force" \
  --export-json "$WORK/b1-jobctl-p2.json" "sh $WORK/jobctl-1000-p2.sh" >/dev/null
hyperfine --runs $RUNS --warmup 1 --export-json "$WORK/b1-parallel.json" \
  "seq 1000 | parallel -j2 true" >/dev/null
hyperfine --runs $RUNS --warmup 1 --export-json "$WORK/b1-xargs.json" \
  "seq 1000 | xargs -P2 -I{} true" >/dev/null
J=$(mean "$WORK/b1-jobctl.json"); J2=$(mean "$WORK/b1-jobctl-p2.json")
P=$(mean "$WORK/b1-parallel.json"); X=$(mean "$WORK/b1-xargs.json")
echo "jobctl start (one client at a time) : $(ms "$J" 1000) ms/job"
echo "jobctl start (xargs -P2 clients)    : $(ms "$J2" 1000) ms/job"
echo "GNU parallel -j2                    : $(ms "$P" 1000) ms/job"
echo "xargs -P2                           : $(ms "$X" 1000) ms/job"
echo "ratios: jobctl/xargs $(ratio "$J" "$X"), jobctl/parallel $(ratio "$J" "$P"), jobctl(-P2 clients)/xargs $(ratio "$J2" "$X")"
fi

echo "== 2. one start at 1 job vs at 10,000 jobs in the table"
"$JOBCTL" rm --all --force
"$JOBCTL" start -q -- true >/dev/null
"$JOBCTL" wait >/dev/null
hyperfine -N --runs 200 --warmup 10 --export-json "$WORK/b2-first.json" \
  "$JOBCTL start -q -- true" >/dev/null
"$JOBCTL" wait >/dev/null
N=$("$JOBCTL" list --json | jq length)
seq $((10000 - N)) | xargs -P2 -n 100 sh -c 'for i; do "$0" start -q -- true; done' "$JOBCTL" >/dev/null
"$JOBCTL" wait >/dev/null
N=$("$JOBCTL" list --json | jq length)
hyperfine -N --runs 200 --warmup 10 --export-json "$WORK/b2-10k.json" \
  "$JOBCTL start -q -- true" >/dev/null
"$JOBCTL" wait >/dev/null
F=$(mean "$WORK/b2-first.json"); T=$(mean "$WORK/b2-10k.json")
echo "start at a small table: $(ms "$F") ms; at $N jobs: $(ms "$T") ms; ratio $(ratio "$T" "$F")"

echo "== 3. jobctl list at 10,000 jobs"
PID=$("$JOBCTL" daemon status | sed 's/running, pid //')
RSS=$(awk '/VmRSS/ { print $2 }' /proc/"$PID"/status)
hyperfine -N --runs 20 --warmup 2 --export-json "$WORK/b3-list.json" \
  "$JOBCTL list" >/dev/null
hyperfine -N --runs 20 --warmup 2 --export-json "$WORK/b3-json.json" \
  "$JOBCTL list --json" >/dev/null
hyperfine -N --runs 50 --warmup 5 --export-json "$WORK/b3-one.json" \
  "$JOBCTL list --newest 1" >/dev/null
L=$(mean "$WORK/b3-list.json"); LJ=$(mean "$WORK/b3-json.json"); L1=$(mean "$WORK/b3-one.json")
echo "list (table) $(ms "$L") ms, list --json $(ms "$LJ") ms, list of one job $(ms "$L1") ms; table/one $(ratio "$L" "$L1")"

echo "== 5. daemon RSS at $N finished jobs: $((RSS / 1024)) MiB"

echo "== 4. receive of ${BIG_MIB} MiB to /dev/null vs cat"
"$JOBCTL" rm --all --force
head -c $((BIG_MIB * 1024 * 1024)) /dev/urandom > "$WORK/big.bin"
ID=$("$JOBCTL" start -q -- cat "$WORK/big.bin")
"$JOBCTL" wait "$ID" >/dev/null
hyperfine -N --runs 3 --warmup 1 --export-json "$WORK/b4-receive.json" \
  "$JOBCTL receive $ID --keep" --output null >/dev/null
hyperfine -N --runs 3 --warmup 1 --export-json "$WORK/b4-cat.json" \
  "cat $WORK/big.bin" --output null >/dev/null
R=$(mean "$WORK/b4-receive.json"); C=$(mean "$WORK/b4-cat.json")
echo "receive $(awk -v s="$R" -v m="$BIG_MIB" 'BEGIN { printf "%.0f", m / s }') MiB/s, cat $(awk -v s="$C" -v m="$BIG_MIB" 'BEGIN { printf "%.0f", m / s }') MiB/s; receive/cat time ratio $(ratio "$R" "$C")"
