#!/usr/bin/env bash
# Short GPU fine-tune of the default network: pull-push pre-fill, no dropout, all CPU cores feeding
# one run. Only the checkpoint comes back (exported to ONNX afterwards on the CPU machine).
# Usage: scripts/device_finetune.sh OUT_DIR MIDDLEBURY_ROOT INIT_CHECKPOINT MINUTES [DEVICE]
set -u
out=${1:?}; mb=${2:?}; init=${3:?}; minutes=${4:?}; device=${5:-cuda}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
mount -o remount,size=16G /dev/shm 2>/dev/null
workers=$(( $(nproc) - 2 )); [ "$workers" -lt 1 ] && workers=1
python3 -m ros2_depth_interp.learning.train --out "$out" --init "$init" --preset default --dropout 0 \
  --device "$device" --batch 32 --crop 256x320 --workers "$workers" --steps 1000000 --time-limit "$minutes" \
  --lr 3e-4 --lr-after 3e-5 --lr-drop-fraction 0.7 --middlebury "$mb" --w-l1 1 --w-grad 0.5 \
  --val-every 400 --ckpt-every 100 --pictures latest 2>&1 | tr '\r' '\n' | grep -v -E "it/s\]$|s/it\]$" | tail -20
