#!/usr/bin/env bash
# Reproduces models/depth_interp.onnx: the three training phases of models/README.md, then export.
# Phases 1-2 ran on an NVIDIA H200, phase 3 on a 2-core CPU; DEVICE=cpu runs everything on the CPU
# (much slower for the same number of samples). Randomness (data, masks) makes the result close, not
# bit-identical.
# Usage: scripts/train_shipped_model.sh [OUT_DIR]   (env: DEVICE=cuda|cpu, MIDDLEBURY=<root>, WORKERS=n)
set -euo pipefail
out=${1:-runs/shipped}
device=${DEVICE:-cuda}
mb=${MIDDLEBURY:-../shared/data/middlebury}
workers=${WORKERS:-3}
py=${PYTHON:-.venv/bin/python}
train() { "$py" -m ros2_depth_interp.train --middlebury "$mb" --device "$device" "$@"; }

# phase 1: plain pyramid pre-fill, dropout 0.5, L1 + gradient + (random-VGG) perceptual + TV
train --out "$out/p1" --prefill-tau 0.01 --prefill-iterations '' --dropout 0.5 \
  --batch 16 --crop 256x320 --workers "$workers" --steps 3202 \
  --lr 5e-4 --lr-after 5e-5 --lr-drop-at 2400 \
  --w-l1 1 --w-grad 0.5 --w-perceptual 0.05 --w-tv 0.001 --perceptual-fallback random --pictures latest
# phase 2: pull-push pre-fill, no dropout
train --out "$out/p2" --init "$out/p1/last.pt" --prefill-iterations '' --dropout 0 \
  --batch 32 --crop 256x320 --workers "$workers" --steps 2348 \
  --lr 3e-4 --lr-after 3e-5 --lr-drop-at 1640 --w-l1 1 --w-grad 0.5 --pictures latest
# phase 3: intensity-guided pre-fill, more Middlebury
train --out "$out/p3a" --init "$out/p2/last.pt" --prefill-iterations 2,4,12,12,12,12 --dropout 0 \
  --batch 4 --crop 192x256 --workers 1 --steps 900 --lr 2e-4 --w-l1 1 --w-grad 0.5 --pictures latest
train --out "$out/p3" --init "$out/p3a/last.pt" --prefill-iterations 2,4,12,12,12,12 --dropout 0 \
  --batch 4 --crop 192x256 --workers 1 --steps 6000 --lr 1e-4 --lr-drop-at 1000000 \
  --synthetic-fraction 0.2 --w-l1 1 --w-grad 0.5 --pictures latest
# export: the real-time graph and the quality graph (same weights)
"$py" -m ros2_depth_interp.export "$out/p3/last.pt" --out "$out/depth_interp.onnx" --prefill-iterations 1,3,10,10,10,10
"$py" -m ros2_depth_interp.export "$out/p3/last.pt" --out "$out/depth_interp_quality.onnx" \
  --prefill-iterations 30,60,100,100,100,100
