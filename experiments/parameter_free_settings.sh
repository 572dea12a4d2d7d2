#!/usr/bin/env bash
# The parameter-free steps of a geodesic model (harmonic smoothing, colorization sweeps) varied on one
# set of trained weights, scored on the held-out families by `depth_interp choose`: how the shipped
# model's settings were chosen (models/README.md, "Architecture"). Each setting is exported (ONNX and
# .pt with the setting in its config) into OUT_DIR, then all are scored side by side.
# Usage: experiments/parameter_free_settings.sh CHECKPOINT [OUT_DIR] [RESULT]
#   defaults: OUT_DIR runs/parameter_free_settings, RESULT docs/results/parameter_free_settings.json
set -euo pipefail
ckpt=${1:?usage: experiments/parameter_free_settings.sh CHECKPOINT [OUT_DIR] [RESULT]}
out=${2:-runs/parameter_free_settings}
result=${3:-docs/results/parameter_free_settings.json}
py=${PYTHON:-.venv/bin/python}
mkdir -p "$out"
# name: smoothing distances, rounds, colorization sweeps
settings=(
  "smooth8x4_sweeps5 8,4,2,1 4 5"
  "smooth8x4_sweeps18 8,4,2,1 4 18"
  "smooth8x6_sweeps18 8,4,2,1 6 18"
  "smooth16x4_sweeps18 16,8,4,2,1 4 18"
  "smooth16x4_sweeps12 16,8,4,2,1 4 12"
  "smooth16x4_sweeps8 16,8,4,2,1 4 8"
  "smooth16x4_sweeps5 16,8,4,2,1 4 5"
  "smooth16x3_sweeps18 16,8,4,2,1 3 18"
  "smooth16x3_sweeps12 16,8,4,2,1 3 12"
  "smooth16x3_sweeps8 16,8,4,2,1 3 8"
  "smooth16to2x4_sweeps12 16,8,4,2 4 12"
  "smooth32x3_sweeps18 32,16,8,4,2,1 3 18"
)
checkpoints=()
for row in "${settings[@]}"; do
  read -r name smoothing rounds sweeps <<< "$row"
  "$py" -m ros2_depth_interp.learning.export "$ckpt" --out "$out/$name.onnx" --smoothing "$smoothing" \
    --smoothing-rounds "$rounds" --colorization-steps "$sweeps" > "$out/$name.export.json"
  checkpoints+=("$out/$name.pt")
  echo "parameter_free_settings: exported $name"
done
"$py" -m ros2_depth_interp.tools.cli choose "${checkpoints[@]}" \
  --scenes Lampshade1,Lampshade2,Midd1,Midd2,Plastic,Laundry,Reindeer --out "$result"
