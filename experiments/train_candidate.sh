#!/usr/bin/env bash
# A candidate network (models/README.md, "Candidates": spn_coarse, geodesic, ...): one time-budgeted run
# from scratch, then its ONNX export and the held-out evaluation beside the shipped model and the
# classical baselines.
# L1 + 0.5 gradient + 0.1 confidence, Adam 5e-4 then 5e-5 for the last fifth of the time, batch 8 of
# 256x320 crops, Middlebury (all but the held-out and kept-back families) and 30 % synthetic scenes,
# validated on the held-out families. Resumable: run it again with the same OUT_DIR and a larger
# MINUTES and it continues from OUT_DIR/last.pt until MINUTES have passed in all sittings together.
# Usage: experiments/train_candidate.sh PRESET [OUT_DIR]   (OUT_DIR default: runs/PRESET)
#   env: MINUTES (default 80), DEVICE=cpu|cuda (default cpu), MIDDLEBURY=<root>, BATCH, WORKERS
set -euo pipefail
preset=${1:?usage: experiments/train_candidate.sh PRESET [OUT_DIR]}
out=${2:-runs/$preset}
minutes=${MINUTES:-80}
device=${DEVICE:-cpu}
mb=${MIDDLEBURY:-../shared/data/middlebury}
py=${PYTHON:-.venv/bin/python}
if [ "$device" = cpu ]; then batch=${BATCH:-8}; workers=${WORKERS:-1}; else batch=${BATCH:-32}; workers=${WORKERS:-4}; fi
resume=()
if [ -f "$out/last.pt" ]; then
  echo "train_candidate: continuing $out/last.pt"
  resume=(--resume "$out/last.pt")
fi
"$py" -m ros2_depth_interp.learning.train --preset "$preset" --out "$out" --device "$device" \
  --middlebury "$mb" --synthetic-fraction 0.3 --batch "$batch" --crop 256x320 --workers "$workers" \
  --steps 100000 --time-limit "$minutes" --lr 5e-4 --lr-after 5e-5 --lr-drop-at 100000 --lr-drop-fraction 0.8 \
  --val-every 1000 --val-samples 8 --ckpt-every 250 --keep-every 2000 --pictures latest "${resume[@]}"
"$py" -m ros2_depth_interp.learning.export "$out/last.pt" --out "$out/$preset.onnx"
"$py" -m ros2_depth_interp.tools.cli eval --model "$out/$preset.onnx" --compare shipped=models/depth_interp.onnx \
  --protocols uniform@0.10 gradient@0.10 --out "$out/eval"
