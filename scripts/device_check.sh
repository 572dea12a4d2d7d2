#!/usr/bin/env bash
# The GPU device check, one call of at most 8 minutes on the lent machine (see docs/performance.md):
# the environment, the shipped model's speed (torch eager fp32/fp16, CUDA graphs, torch.compile,
# ONNX Runtime's CUDA provider when onnxruntime-gpu installs), per-frame time with the cloud, then a
# training run of BUDGET seconds with `depth_interp train`'s defaults and its ONNX + fp16 export.
# Everything lands flat in the output folder (at most 8 files): device_check.json, device_check.log,
# metrics.jsonl, training_curves.png, last.pt, depth_interp.onnx, depth_interp.pt, depth_interp_fp16.onnx.
#
# Usage: scripts/device_check.sh [OUT_DIR] [BUDGET_S]   (OUT_DIR default: $OUT, else out/device_check)
# Environment (all optional):
#   BUDGET        seconds of training (default 180)
#   MAX_SECONDS   the whole call, this script's start included (default 470)
#   DEVICE        cuda, cpu or auto (default auto)
#   MODEL         ONNX model to benchmark, its .pt beside it (default models/depth_interp.onnx)
#   SIZES REPEATS WARMUP   benchmark sizes (HxW list, default 370x463,480x640), timed and warm-up runs
#   TRAIN_ARGS    more `depth_interp train` options, e.g. "--batch 32 --crop 256x320"
#   INIT / RESUME checkpoint to fine-tune from / to continue
#   DATA          the data folder (middlebury/, tum/; default ../shared/data, else .device_data)
#   SKIP          stages to leave out: bench,graphs,compile,train,export
#   ORT_GPU       0: do not try to install onnxruntime-gpu (default: try, on a CUDA machine only)
#   PYTHON        interpreter (default .venv/bin/python when present, else python3)
set -u -o pipefail
started=$(date +%s.%N)
out=${1:-${OUT:-out/device_check}}
budget=${2:-${BUDGET:-180}}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.."   # the repository root: MODEL, DATA, INIT and RESUME are relative to it
if [ -n "${PYTHON:-}" ]; then py=$PYTHON
elif [ -x .venv/bin/python ]; then py=.venv/bin/python
else py=python3; fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if [ -z "${DATA:-}" ]; then
  if [ -d ../shared/data ]; then DATA=../shared/data; elif [ -d .device_data ]; then DATA=.device_data; fi
fi
[ -n "${DATA:-}" ] && export DEPTH_INTERP_DATA=$(cd "$DATA" && pwd)
log="$out/device_check.log"
: > "$log"
{
  echo "device_check: $(date -u +%FT%TZ) on $(hostname), python $py, data ${DEPTH_INTERP_DATA:-none}"
  gpu=0
  if command -v nvidia-smi > /dev/null && nvidia-smi -L; then gpu=1; fi
  if [ "$gpu" = 1 ] && [ "${DEVICE:-auto}" != cpu ]; then
    # DataLoader workers share tensors through /dev/shm, small on some machines (a GPU machine only)
    [ "$(id -u)" = 0 ] && mount -o remount,size=16G /dev/shm 2> /dev/null
    ort_note="not tried (ORT_GPU=0)"
    if [ "${ORT_GPU:-1}" != 0 ]; then
      target=/tmp/device_check_ort_gpu
      wheel=$(ls .whl/onnxruntime_gpu-*.whl 2> /dev/null | head -1)
      if [ -n "$wheel" ]; then
        src="$wheel"; timeout 120 "$py" -m pip install -q --no-index --no-deps --target "$target" "$wheel"
      else
        src="pip (no .whl/onnxruntime_gpu-*.whl carried)"
        timeout 45 "$py" -m pip install -q --no-deps --target "$target" --timeout 5 --retries 0 onnxruntime-gpu
      fi
      if [ $? = 0 ] && PYTHONPATH="$target:$PYTHONPATH" "$py" -c \
          "import onnxruntime as o, sys; sys.exit('CUDAExecutionProvider' not in o.get_available_providers())"; then
        export PYTHONPATH="$target:$PYTHONPATH"; ort_note="installed from $src"
      else
        ort_note="could not install or load onnxruntime-gpu from $src; ONNX Runtime runs on the CPU"
      fi
    fi
    export DEVICE_CHECK_ORT_GPU="$ort_note"
    echo "device_check: onnxruntime-gpu: $ort_note"
  fi
  args=(--out "$out" --budget "$budget" --max-seconds "${MAX_SECONDS:-470}" --started-at "$started"
        --device "${DEVICE:-auto}" --sizes "${SIZES:-370x463,480x640}" --repeats "${REPEATS:-100}"
        --warmup "${WARMUP:-20}" --train-args "${TRAIN_ARGS:-}" --skip "${SKIP:-}")
  [ -n "${MODEL:-}" ] && args+=(--model "$MODEL")
  [ -n "${INIT:-}" ] && args+=(--init "$INIT")
  [ -n "${RESUME:-}" ] && args+=(--resume "$RESUME")
  "$py" -m ros2_depth_interp.tools.device_check "${args[@]}"
} 2>&1 | tee -a "$log"
