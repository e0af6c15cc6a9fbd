#!/usr/bin/env bash
# Paper-preset accuracy cells (benchmarks/methods_accuracy.py --preset paper) in parallel on one GPU.
#
#   bash benchmarks/paper_gpu.sh start GROUP [GROUP ...]   # one detached process runs the groups in turn
#   bash benchmarks/paper_gpu.sh wait SECONDS              # progress lines until every group ends or time is up
#   bash benchmarks/paper_gpu.sh pack FILE.tgz             # logs, .jsonl/.md rows and the saved sets
#
# Why detached (setsid): a run outlives the shell that started it, so it can span several shorter
# commands on a lent machine. Why in turn, not side by side: measured on an H100 (2026-11-25), nine
# processes at once gave each DM run ~5 it/s, while one alone runs 45 it/s (0.022 s/it), so the GPU's
# time-slicing between processes ate all the gain; PARALLEL=1 still starts one process per group.
# Environment: PYTHON (default python3), RUNS (default /tmp/paper-runs), DDCORE_DATA (dataset roots),
# BUDGET_S (distillation seconds per cell, default 1080), EVAL_SEEDS (default 10), PARALLEL (0).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
RUNS=${RUNS:-/tmp/paper-runs}
BUDGET_S=${BUDGET_S:-1080}
EVAL_SEEDS=${EVAL_SEEDS:-10}
export DDCORE_OFFLINE=1 DDCORE_HOME=${DDCORE_HOME:-$RUNS/home} PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1

cells_of() {  # the issue's published comparisons first; IPC 10 DC/DSA (1000 slow outer loops) last
  case "$1" in
    c10-dm10) echo cifar10:dm:10 ;;
    c10-dm1) echo cifar10:dm:1 ;;
    mn-dm10) echo mnist:dm:10 ;;
    mn-dm1) echo mnist:dm:1 ;;
    fm-dm) echo fashionmnist:dm:1 fashionmnist:dm:10 ;;
    c10-dc1) echo cifar10:dc:1 cifar10:dsa:1 ;;
    mn-dc1) echo mnist:dc:1 mnist:dsa:1 ;;
    fm-dc1) echo fashionmnist:dc:1 fashionmnist:dsa:1 ;;
    c10-dc10) echo cifar10:dc:10 ;;
    c10-dsa10) echo cifar10:dsa:10 ;;
    mn-dc10) echo mnist:dc:10 ;;
    random) echo cifar10:random:1 cifar10:random:10 mnist:random:1 mnist:random:10 ;;
    fm-random) echo fashionmnist:random:1 fashionmnist:random:10 ;;
    *) echo "unknown group '$1'" >&2; return 1 ;;
  esac
}

case "${1:-}" in
  start)
    shift
    mkdir -p "$RUNS"
    commands=()
    for group in "$@"; do
      cells=$(cells_of "$group")
      commands+=("$PY -m benchmarks.methods_accuracy --preset paper --device cuda --threads 1 --eval-seeds $EVAL_SEEDS \
--budget-s $BUDGET_S --resume --cells $cells --out-dir $RUNS/$group --save-sets $RUNS/sets >$RUNS/$group.log 2>&1")
      echo "queued $group: $cells"
    done
    if [ "${PARALLEL:-0}" = 1 ]; then
      for c in "${commands[@]}"; do setsid nohup bash -c "$c" </dev/null >/dev/null 2>&1 & done
    else
      joined=$(printf '%s; ' "${commands[@]}")
      setsid nohup bash -c "$joined" </dev/null >/dev/null 2>&1 &
    fi
    ;;
  wait)
    deadline=$(( $(date +%s) + ${2:?seconds} ))
    while [ "$(date +%s)" -lt "$deadline" ]; do
      running=$(pgrep -f "python3? -m benchmarks.methods_accuracy --preset paper" | wc -l || true)
      echo "== $(date +%T) running: $running"
      for log in "$RUNS"/*.log; do [ -e "$log" ] && echo "$(basename "$log"): $(tail -n 1 "$log" | cut -c1-160)"; done
      nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null || true
      [ "$running" -eq 0 ] && break
      left=$(( deadline - $(date +%s) ))
      sleep $(( left > 60 ? 60 : (left > 1 ? left : 1) ))
    done
    ;;
  pack)
    tar czf "${2:?file}" -C "$RUNS" --exclude=home .
    ;;
  *)
    sed -n '2,14p' "$0"
    exit 2
    ;;
esac
