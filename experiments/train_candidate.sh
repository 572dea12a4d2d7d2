#!/usr/bin/env bash
# A candidate network (docs/model_designs.md, "The candidates": spn_coarse, geodesic, ...): one time-budgeted run
# from scratch (or fine-tuning from INIT), then its ONNX export and the held-out evaluation beside the
# shipped model and the classical baselines.
# L1 + 0.5 gradient + 0.1 confidence, Adam LR (5e-4) then LR / 10 for the last fifth of the time,
# batch 8 of 256x320 crops (CPU defaults), Middlebury (all but the held-out and kept-back families)
# and 30 % synthetic scenes, validated on the held-out families. Resumable: run it again with the
# same OUT_DIR and a larger MINUTES and it continues from OUT_DIR/last.pt until MINUTES have passed
# in all sittings together.
# Usage: experiments/train_candidate.sh PRESET [OUT_DIR]   (OUT_DIR default: runs/PRESET)
#   env: MINUTES (default 80), DEVICE=cpu|cuda (default cpu), MIDDLEBURY=<root>, BATCH, WORKERS,
#        CROP=HxW (default 256x320), LR (default 5e-4), INIT=<checkpoint to fine-tune from>,
#        TILT (default 0: off; the sampler's random depth planes, `train --tilt`)
#        KEEP (default 2000: keep a checkpoint every KEEP steps, for `depth_interp choose`),
#        ARGS (more `train` options, e.g. ARGS="--widths 16,24 --blocks 1,2")
#   The geodesic candidate's second stage (whole third-size frames, so that its 256 px steps see
#   whole rooms): INIT=experiments/weights/geodesic.pt CROP=368x448 BATCH=4 LR=2e-4
set -euo pipefail
preset=${1:?usage: experiments/train_candidate.sh PRESET [OUT_DIR]}
out=${2:-runs/$preset}
minutes=${MINUTES:-80}
device=${DEVICE:-cpu}
mb=${MIDDLEBURY:-../shared/data/middlebury}
py=${PYTHON:-.venv/bin/python}
crop=${CROP:-256x320}
lr=${LR:-5e-4}
tilt=${TILT:-0}
keep=${KEEP:-2000}
extra=()
if [ -n "${ARGS:-}" ]; then read -r -a extra <<< "$ARGS"; fi
lr_after=$(python3 -c "print('%g' % (float('$lr') / 10))")
if [ "$device" = cpu ]; then batch=${BATCH:-8}; workers=${WORKERS:-1}; else batch=${BATCH:-32}; workers=${WORKERS:-4}; fi
init=()
if [ -n "${INIT:-}" ]; then init=(--init "$INIT"); fi
resume=()
if [ -f "$out/last.pt" ]; then
  echo "train_candidate: continuing $out/last.pt"
  resume=(--resume "$out/last.pt")
fi
"$py" -m ros2_depth_interp.learning.train --preset "$preset" --out "$out" --device "$device" \
  --middlebury "$mb" --synthetic-fraction 0.3 --batch "$batch" --crop "$crop" --workers "$workers" \
  --steps 100000 --time-limit "$minutes" --lr "$lr" --lr-after "$lr_after" --lr-drop-at 100000 --lr-drop-fraction 0.8 \
  --tilt "$tilt" --val-every 1000 --val-samples 8 --ckpt-every 250 --keep-every "$keep" --pictures latest "${init[@]}" "${resume[@]}" "${extra[@]}"
"$py" -m ros2_depth_interp.learning.export "$out/last.pt" --out "$out/$preset.onnx"
"$py" -m ros2_depth_interp.tools.cli eval --model "$out/$preset.onnx" --compare shipped=models/depth_interp.onnx \
  --protocols uniform@0.10 gradient@0.10 --out "$out/eval"
