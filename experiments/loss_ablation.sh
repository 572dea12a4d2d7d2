#!/usr/bin/env bash
# Loss ablation of a trained candidate (docs/model_designs.md, "The candidates"): from the same checkpoint, the
# same wall-clock budget of further training with each loss, then the held-out families' PSNR of
# every result beside the starting point (`depth_interp choose`, uniform and gradient 10 % masks).
#   l1          L1 (+ 0.1 confidence, as every variant)
#   l1_grad     L1 + 0.5 depth-gradient L1 (the training recipe's loss)
#   perceptual  the paper's loss: VGG-16 relu2_2 feature distance + 0.001 TV, with a fixed random-weight
#               VGG-16 (ImageNet weights cannot be downloaded here; with --vgg-weights it would be theirs)
# Adam at 5e-5 (where the recipe ends), batch 8 of 256x320 crops, 30 % synthetic scenes.
# Usage: experiments/loss_ablation.sh PRESET INIT.pt [OUT_DIR]
#   env: MINUTES per variant (default 10), VARIANTS (default "l1 l1_grad perceptual"), DEVICE, MIDDLEBURY,
#   BATCH, CROP, EXTRA (more train options, e.g. "--sources synthetic --steps 2")
set -euo pipefail
preset=${1:?usage: experiments/loss_ablation.sh PRESET INIT.pt [OUT_DIR]}
init=${2:?usage: experiments/loss_ablation.sh PRESET INIT.pt [OUT_DIR]}
out=${3:-runs/${preset}_loss_ablation}
minutes=${MINUTES:-10}
device=${DEVICE:-cpu}
mb=${MIDDLEBURY:-../shared/data/middlebury}
py=${PYTHON:-.venv/bin/python}
batch=${BATCH:-8}
crop=${CROP:-256x320}
declare -A loss=(
  [l1]="--w-l1 1 --w-grad 0"
  [l1_grad]="--w-l1 1 --w-grad 0.5"
  [perceptual]="--w-l1 0 --w-grad 0 --w-perceptual 1 --w-tv 0.001 --perceptual-fallback random"
)
checkpoints=("$init")
for variant in ${VARIANTS:-l1 l1_grad perceptual}; do
  [ -n "${loss[$variant]:-}" ] || { echo "loss_ablation: unknown variant $variant (l1, l1_grad, perceptual)" >&2; exit 2; }
  echo "loss_ablation: $variant, $minutes min from $init"
  # shellcheck disable=SC2086
  "$py" -m ros2_depth_interp.learning.train --preset "$preset" --init "$init" --out "$out/$variant" \
    --device "$device" --middlebury "$mb" --synthetic-fraction 0.3 --batch "$batch" --crop "$crop" \
    --steps 100000 --time-limit "$minutes" --lr 5e-5 --lr-after 5e-5 --val-every 100000 --ckpt-every 250 \
    ${loss[$variant]} ${EXTRA:-}
  checkpoints+=("$out/$variant/last.pt")
done
"$py" -m ros2_depth_interp.tools.cli choose "${checkpoints[@]}" | tee "$out/choose.txt"
