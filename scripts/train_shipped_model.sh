#!/usr/bin/env bash
# The training recipe of the shipped architecture (the 'default' preset; models/README.md, "Training"):
# one run from scratch, L1 + gradient loss, Adam at 5e-4 then 5e-5 for the last quarter of the time,
# Middlebury (all scenes but the held-out and kept-back families) and 20 % synthetic scenes,
# validated on the held-out families; then the ONNX export (and its fp16 variant).
# MINUTES is the whole budget (default 110: the 2-core CPU). Resumable: run it again with the same
# OUT_DIR and it continues from OUT_DIR/last.pt until MINUTES have passed in all sittings together.
# Usage: scripts/train_shipped_model.sh [OUT_DIR]
#   env: DEVICE=cpu|cuda (default cpu), MINUTES, MIDDLEBURY=<root>, WORKERS=n, BATCH=n, CROP=HxW
set -euo pipefail
out=${1:-runs/shipped}
device=${DEVICE:-cpu}
minutes=${MINUTES:-110}
mb=${MIDDLEBURY:-../shared/data/middlebury}
py=${PYTHON:-.venv/bin/python}
if [ "$device" = cpu ]; then batch=${BATCH:-4}; workers=${WORKERS:-1}; else batch=${BATCH:-32}; workers=${WORKERS:-4}; fi
crop=${CROP:-256x320}
resume=()
if [ -f "$out/last.pt" ]; then
  echo "train_shipped_model: continuing $out/last.pt"
  resume=(--resume "$out/last.pt")
fi
"$py" -m ros2_depth_interp.learning.train --preset default --out "$out" --device "$device" \
  --middlebury "$mb" --synthetic-fraction 0.2 --batch "$batch" --crop "$crop" --workers "$workers" \
  --steps 10000000 --time-limit "$minutes" --lr 5e-4 --lr-after 5e-5 --lr-drop-at 10000000 --lr-drop-fraction 0.75 \
  --w-l1 1 --w-grad 0.5 --dropout 0 --val-every 500 --keep-every 1000 --pictures latest "${resume[@]}"
"$py" -m ros2_depth_interp.learning.export "$out/last.pt" --out "$out/depth_interp.onnx" --fp16
echo "train_shipped_model: $out/depth_interp.onnx; evaluate it with: depth_interp eval --model $out/depth_interp.onnx --compare shipped=models/depth_interp.onnx"
