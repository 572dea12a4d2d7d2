#!/usr/bin/env bash
# One GPU session: fine-tune the network on the heavy-ball guided pre-fill of the `default` preset,
# two runs side by side on one GPU (A: five residual blocks; B: four, for CPU headroom), snapshots
# every KEEP steps to choose from on the validation scenes afterwards; then the ROS-free device
# benchmark of run A's graph (torch backend on CUDA). Phase 4 of models/README.md ran this script
# with an intermediate pre-fill (Levin-weighted, heavy-ball from the third level on) that was
# dropped afterwards; it now trains on the current preset.
# Everything comes back as one tar file.
# Usage: scripts/device_train_guided.sh OUT_DIR MIDDLEBURY_ROOT INIT_CHECKPOINT MINUTES [DEVICE] [KEEP]
set -u
out=${1:?}; mb=${2:?}; init=${3:?}; minutes=${4:?}; device=${5:-cuda}; keep=${6:-1000}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
work=$(mktemp -d)
nvidia-smi -L 2>/dev/null || true
mount -o remount,size=16G /dev/shm 2>/dev/null
cores=$(nproc); workers=$(( (cores - 2) / 2 )); [ "$workers" -lt 1 ] && workers=1
common="--init $init --preset default --dropout 0 --device $device --batch 32 --crop 256x320 --workers $workers
  --steps 1000000 --time-limit $minutes --lr 3e-4 --lr-after 3e-5 --lr-drop-fraction 0.7 --middlebury $mb
  --synthetic-fraction 0.2 --w-l1 1 --w-grad 0.5 --val-every 500 --ckpt-every 250 --keep-every $keep --pictures latest"
python3 -m ros2_depth_interp.learning.train --out "$work/A_5blocks" $common > "$work/A_5blocks.log" 2>&1 &
python3 -m ros2_depth_interp.learning.train --out "$work/B_4blocks" $common --dilations 1,2,4,8 > "$work/B_4blocks.log" 2>&1 &
wait
for run in A_5blocks B_4blocks; do
  tr '\r' '\n' < "$work/$run.log" | grep -v -E "it/s\]$|s/it\]$" | tail -4
done
python3 -m ros2_depth_interp.learning.export "$work/A_5blocks/last.pt" --out "$work/A_5blocks/depth_interp.onnx" \
  > "$work/A_5blocks/export.log" 2>&1 || tail -5 "$work/A_5blocks/export.log"
if [ "$device" = cuda ]; then
  python3 -m ros2_depth_interp.tools.bench_device --model "$work/A_5blocks/depth_interp.onnx" --backends torch \
    --out "$work/bench_device_gpu.json" --repeats 100 --warmup 20 2>&1 | grep -v Warning | tail -15
fi
rm -f "$work"/*/depth_interp.onnx
(cd "$work" && tar cf "$out/runs.tar" .)
ls -la "$out"
