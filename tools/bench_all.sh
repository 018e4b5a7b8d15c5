#!/usr/bin/env bash
# Run every tools/bench_*.py once, one after another, and collect their output for docs/benchmarks.md.
#
#   tools/bench_all.sh [OUT_DIR]        (default var/bench/<UTC timestamp>; run as root: the PC/SC
#                                        benches start a private pcscd)
#
# Each bench runs with the arguments below (bounded sizes; loopback only) under `timeout`
# (BENCH_TIMEOUT seconds, default 900). Its output goes to OUT_DIR/<name>.txt; OUT_DIR/summary.txt
# lists every bench with its exit status and wall time, plus the machine it ran on. A bench that
# fails or times out is reported as such and the others still run; the script exits non-zero then.
set -uo pipefail
cd "$(dirname "$0")/.."

out=${1:-var/bench/$(date -u +%Y%m%dT%H%M%SZ)}
limit=${BENCH_TIMEOUT:-900}
python=${PYTHON:-.venv/bin/python}
mkdir -p "$out"

bench_args() {
  case "$1" in
    bench_import) echo "--large 0" ;;  # the 1,000,000-row PostgreSQL run takes minutes: run it alone
    bench_issuance) echo "--cards 200 --bare 100 --direct 100" ;;
    bench_verify) echo "--duration 8" ;;
    *) echo "" ;;
  esac
}

{
  echo "started  $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host     $(uname -srm); $(nproc) CPUs; $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo)"
  echo "cpu      $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "python   $($python -c 'import sys; print(sys.version.split()[0])')"
  echo "commit   $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "load     $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min, at start)"
} >"$out/summary.txt"

status=0
for script in tools/bench_*.py; do
  name=$(basename "$script" .py)
  read -r -a args <<<"$(bench_args "$name")"
  printf '[bench_all] %s %s\n' "$name" "${args[*]}" >&2
  start=$(date +%s)
  timeout --signal=INT --kill-after=30 "$limit" "$python" "$script" "${args[@]}" >"$out/$name.txt" 2>&1
  rc=$?
  took=$(( $(date +%s) - start ))
  case $rc in
    0) result=ok ;;
    124|130) result="TIMED OUT after ${limit}s" ; status=1 ;;
    *) result="FAILED (exit $rc)" ; status=1 ;;
  esac
  printf '%-18s %-24s %5ss  args: %s\n' "$name" "$result" "$took" "${args[*]:-(defaults)}" >>"$out/summary.txt"
done
echo "finished $(date -u +%Y-%m-%dT%H:%M:%SZ); load $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/summary.txt"
cat "$out/summary.txt"
echo "outputs in $out" >&2
exit $status
