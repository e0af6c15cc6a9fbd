#!/usr/bin/env bash
# One prepared run for a lent GPU (issues #17 and #20), short enough for one device command:
#
#   run(command="OUT=$OUT bash benchmarks/gpu_check.sh", timeout_s=560)      # the device tool
#   DEVICE=cpu IPCS=1 FOCUS_IPC=1 REPEATS=2 EPOCHS=2 OUT=/tmp/gpu-check bash benchmarks/gpu_check.sh   # a dry run here
#
# Steps, each with its own time limit so that one slow step leaves the others' results under $OUT:
#   device  torch version and the GPU's name;
#   tests   the engine tests that check CUDA against the CPU (DSA plans moved in one copy, devices);
#   speed   seconds per iteration of DM, DC and DSA at the paper preset on CIFAR-10 (#20: DM IPC 10 <= 6 ms,
#           DC/DSA >= 3x the reference's H100 times in results/methods-speed-gpu.md, IPC 1 and 10), fp32 and bf16;
#   profile torch.profiler over 5 DM IPC 10 steps (benchmarks/profile_step.py): host syncs per step and the
#           normalisation / convolution shares of GPU time, the two causes #20 names;
#   compile DM IPC 10 with speed_mode 'compile' (torch.compile fuses the normalisation) against fp32, 20 steps each;
#   eval    the paper evaluation's 10 seeds batched against one (#20: at most twice the time of one).
# Data: CIFAR-10-shaped random pixels (benchmarks/noise_data.py), because the 51 MB zip and the 21 MB tree exceed
# what travels (64 MiB); speed does not depend on pixel values. The device's python3 has torch, pytest and scipy
# but not pytest-timeout, streamlit or plotly, so only engine code runs and pytest's addopts are cleared.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-/tmp/gpu-check}
DEVICE=${DEVICE:-cuda}
IPCS=${IPCS:-1 10}
FOCUS_IPC=${FOCUS_IPC:-10}
REPEATS=${REPEATS:-20}
EPOCHS=${EPOCHS:-100}
mkdir -p "$OUT"
export DDCORE_OFFLINE=1 PYTHONUNBUFFERED=1 PYTHONPATH=. DDCORE_HOME="$OUT/home"

step() {  # name, seconds, command...
  local name=$1 limit=$2 start=$SECONDS rc
  shift 2
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  echo "== $name: rc $rc in $((SECONDS - start)) s (limit $limit s)"
  tail -n 4 "$OUT/$name.log"
}

step device 30 "$PY" -c "import torch; print(torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA')"
step tests 90 "$PY" -m pytest -q -p no:cacheprovider -o addopts="" tests/test_augment.py tests/test_device.py
# shellcheck disable=SC2086  # IPCS is a list
step speed 180 "$PY" -m benchmarks.methods_speed --device "$DEVICE" --noise-data --datasets cifar10 --methods dm dc dsa \
  --ipcs $IPCS --modes fp32 bf16 --reference '' --out "$OUT/methods-speed-gpu.jsonl"
step profile 60 "$PY" -m benchmarks.profile_step --device "$DEVICE" --noise-data --method dm --ipc "$FOCUS_IPC" \
  --out-dir "$OUT"
step compile 120 "$PY" -m benchmarks.methods_speed --device "$DEVICE" --noise-data --datasets cifar10 --methods dm \
  --ipcs "$FOCUS_IPC" --modes fp32 compile --repeats "$REPEATS" --reference '' --out "$OUT/methods-speed-gpu.jsonl"
step eval 120 "$PY" -m benchmarks.eval_batching --device "$DEVICE" --noise-data --seeds 10 --epochs "$EPOCHS" --out-dir "$OUT"
