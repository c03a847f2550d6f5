#!/usr/bin/env bash
# Train the built-in model on a lent GPU for one sitting (the `device` tool's H200), then bring back the
# EMA weights, their card and the log.
#
#   scripts/gpu_train_builtin.sh [MINUTES] [PRESET] [BATCH]     (defaults: 7, builtin-t4, 256)
#
# Runs from the repository root with the machine's own python3, which holds torch, numpy and
# safetensors: all that kinema.training needs (no venv, no network). It resumes from
# $KINEMA_GPU_WEIGHTS (default src/kinema/weights/<PRESET>.safetensors) when that file exists and is of
# the same preset, else starts afresh (seed 0), renders clips in $KINEMA_GPU_WORKERS processes (default:
# all cores but two) and writes <PRESET>.safetensors, its JSON card and train.log to $OUT (or
# .cache/gpu-train). Bring them back, grade them here with
#   KINEMA_BUILTIN_WEIGHTS=<file> kinema eval builtin --clips 200
# and ship them (src/kinema/weights/builtin.safetensors) only if the checker says they are better.
# KINEMA_GPU_DEVICE=cpu runs the same script on a machine without a GPU (tests/training does, briefly).
set -euo pipefail

minutes=${1:-7}
preset=${2:-builtin-t4}
batch=${3:-256}
out=${OUT:-.cache/gpu-train}
weights=${KINEMA_GPU_WEIGHTS:-src/kinema/weights/$preset.safetensors}
workers=${KINEMA_GPU_WORKERS:-$(($(nproc) > 3 ? $(nproc) - 2 : 1))}
device=${KINEMA_GPU_DEVICE:-cuda}
mkdir -p "$out"

if [ "$device" != cpu ]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
PYTHONPATH=src PYTHONUNBUFFERED=1 python3 - "$minutes" "$preset" "$batch" "$out" "$weights" "$workers" \
    "$device" <<'PY' 2>&1 | tee "$out/train.log"
import json
import shutil
import sys
import time
from pathlib import Path

import torch

from kinema.backends.builtin_weights import read_card
from kinema.training.builtin import TrainConfig, Trainer

minutes, preset, batch, out, weights, workers, device = sys.argv[1:]
target = Path(out) / f"{preset}.safetensors"
source = Path(weights)
same = source.is_file() and target.is_file() and source.samefile(target)
if not same and source.is_file() and read_card(source).get("training", {}).get("config", {}).get("preset") == preset:
    shutil.copyfile(source, target)
    shutil.copyfile(source.with_suffix(".json"), target.with_suffix(".json"))
config = TrainConfig(
    preset=preset,
    batch_size=int(batch),
    lr=1e-3,  # a little above the CPU runs' 8e-4 at batch 16, for a batch 16x larger; not tuned
    device=device,
    data_workers=int(workers),
    checkpoint_minutes=2.0,
)
trainer = Trainer(config, state_path=Path(out) / "state.pt", weights_path=target)
print(trainer.resume() if target.is_file() else f"fresh {preset} run, seed {config.seed}")
print(f"torch {torch.__version__} on {trainer.device}, batch {batch}, {workers} data workers")
start, first = time.monotonic(), trainer.step
trainer.run(float(minutes))
wall = time.monotonic() - start
steps = trainer.step - first
print(json.dumps({
    "preset": preset, "steps": steps, "clips": steps * int(batch), "wall_s": round(wall, 1),
    "clips_per_s": round(steps * int(batch) / wall, 1), "total_steps": trainer.step,
    "total_clips": trainer.clips_seen,
}))
(Path(out) / "state.pt").unlink(missing_ok=True)  # optimiser state: too big to bring back
PY
