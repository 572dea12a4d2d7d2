#!/usr/bin/env bash
# The training recipe of the shipped model (models/README.md, "Training recipe"): one run from scratch
# of its network and propagation (preset geodesic_swept: the shipped model's tensors, trained with
# harmonic smoothing to 8 px and 5 colorization sweeps), L1 + 0.5 gradient + 0.1 confidence, Adam LR
# (5e-4) then LR / 10 from LR_DROP_FRACTION (0.8) of the time on, batch 8 of 256x320 crops,
# Middlebury (all scenes but the held-out and kept-back families) and 30 % synthetic scenes,
# validated on the held-out families; then the export with the shipped model's parameter-free steps
# (three rounds of harmonic smoothing to 16 px, 8 colorization sweeps: the 'default' preset) and its
# fp16 variant.
# MINUTES is the whole budget (default 120: the 2-core CPU). Resumable: run it again with the same
# OUT_DIR and it continues from OUT_DIR/last.pt until MINUTES have passed in all sittings together.
# The shipped weights: MINUTES=120, then MINUTES=155 LR=5e-5 LR_DROP_FRACTION=0.99 on the same folder.
# Usage: scripts/train_shipped_model.sh [OUT_DIR]
#   env: DEVICE=cpu|cuda (default cpu), MINUTES, LR, LR_DROP_FRACTION, MIDDLEBURY=<root>, WORKERS=n,
#        BATCH=n, CROP=HxW, KEEP (keep a checkpoint every KEEP steps, default 500)
set -euo pipefail
out=${1:-runs/shipped}
device=${DEVICE:-cpu}
minutes=${MINUTES:-120}
lr=${LR:-5e-4}
drop=${LR_DROP_FRACTION:-0.8}
keep=${KEEP:-500}
mb=${MIDDLEBURY:-../shared/data/middlebury}
py=${PYTHON:-.venv/bin/python}
if [ "$device" = cpu ]; then batch=${BATCH:-8}; workers=${WORKERS:-1}; else batch=${BATCH:-32}; workers=${WORKERS:-4}; fi
crop=${CROP:-256x320}
lr_after=$(python3 -c "print('%g' % (float('$lr') / 10))")
resume=()
if [ -f "$out/last.pt" ]; then
  echo "train_shipped_model: continuing $out/last.pt"
  resume=(--resume "$out/last.pt")
fi
"$py" -m ros2_depth_interp.learning.train --preset geodesic_swept --out "$out" --device "$device" \
  --middlebury "$mb" --synthetic-fraction 0.3 --batch "$batch" --crop "$crop" --workers "$workers" \
  --steps 10000000 --time-limit "$minutes" --lr "$lr" --lr-after "$lr_after" --lr-drop-at 10000000 --lr-drop-fraction "$drop" \
  --val-every 1000 --val-samples 8 --ckpt-every 250 --keep-every "$keep" --pictures latest "${resume[@]}"
"$py" -m ros2_depth_interp.learning.export "$out/last.pt" --out "$out/depth_interp.onnx" \
  --smoothing 16,8,4,2,1 --smoothing-rounds 3 --colorization-steps 8 --fp16
echo "train_shipped_model: $out/depth_interp.onnx; score it with: depth_interp choose $out/depth_interp.pt models/depth_interp.pt"
