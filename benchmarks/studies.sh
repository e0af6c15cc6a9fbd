#!/usr/bin/env bash
# The measurements of issue #15 (continual learning with a distilled memory; distilled data as an architecture-search
# proxy), as recorded in benchmarks/results/continual.* and nas.*: one command at a time, one thread, each line of
# $LOG saying the load average before and after. Usage: DDCORE_HOME=/tmp/studies bash benchmarks/studies.sh
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export OMP_NUM_THREADS=1 PYTHONPATH=. DDCORE_OFFLINE=1 DDCORE_HOME="${DDCORE_HOME:-/tmp/ddstudio-studies}"
OUT="${OUT:-/tmp/ddstudio-studies-out}"
LOG="$OUT/log.txt"
mkdir -p "$OUT"
run() {
  echo "=== $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg) :: $*" >> "$LOG"
  local start; start=$(date +%s)
  "$@" >> "$LOG" 2>"$OUT/last.err"
  echo "=== rc=$? $(( $(date +%s) - start )) s, load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$LOG"
}
PY=.venv/bin/python
run $PY -m ddcore continual --dataset mnist --methods random herding dm --ipc 10 --steps 5 --orders 3 --preset quick --quiet --json "$OUT/cl-mnist.json"
run $PY -m ddcore distill --dataset mnist --method dm --ipc 10 --preset quick --quiet --out "$OUT/mnist-dm10.ddset"
run $PY -m ddcore distill --dataset mnist --method dc --ipc 10 --preset quick --iterations 5 --quiet --out "$OUT/mnist-dc10.ddset"
run $PY -m ddcore nas --dataset mnist --proxy dc dm random herding --ipc 10 --grid quick --budget quick --quiet --json "$OUT/nas-mnist.json"
run $PY -m ddcore continual --dataset cifar10 --methods random herding dm --ipc 10 --steps 5 --orders 3 --preset quick --quiet --json "$OUT/cl-cifar10.json"
