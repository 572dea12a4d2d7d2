#!/usr/bin/env bash
# One GPU run (PyTorch with CUDA, no ROS, no onnxruntime-gpu): parallel training runs of the
# loss ablation on one GPU, export of each, then the ROS-free device benchmark (torch backend on CUDA,
# fp32/fp16, 640x480 and 1280x960; ONNX Runtime on the CPU cores for comparison).
# Usage: experiments/device_train_and_bench.sh OUT_DIR MIDDLEBURY_ROOT MINUTES
set -u
out=${1:?out dir}; mb=${2:?middlebury root}; minutes=${3:-6}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
mkdir -p "$out/runs"
nvidia-smi -L || true
df -h /dev/shm; mount -o remount,size=16G /dev/shm 2>/dev/null; df -h /dev/shm | tail -1
python3 -c "import torch, onnx, onnxruntime, cv2, scipy; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'ort', onnxruntime.__version__)"
vgg=$(ls ~/.cache/torch/hub/checkpoints/vgg16-*.pth 2>/dev/null | head -1)
if [ -n "$vgg" ]; then perc="--vgg-weights $vgg"; echo "ImageNet VGG-16 weights: $vgg"
else perc="--perceptual-fallback random"; echo "no ImageNet VGG-16 weights here: perceptual runs use a random-weight VGG-16"; fi
common="--device cuda --batch 16 --crop 256x320 --workers 3 --steps 1000000 --time-limit $minutes --lr 5e-4 --lr-after 5e-5 --lr-drop-fraction 0.75 --middlebury $mb --val-every 500 --ckpt-every 250 --pictures latest"
# name : loss terms
declare -A runs=(
  [l1]="--w-l1 1 --w-grad 0"
  [l1_grad]="--w-l1 1 --w-grad 0.5"
  [l1_grad_perc]="--w-l1 1 --w-grad 0.5 --w-perceptual 0.05 --w-tv 0.001 $perc"
  [perc_tv]="--w-l1 0 --w-grad 0 --w-perceptual 1 --w-tv 0.001 $perc"
  [paper_l1_grad]="--preset paper --w-l1 1 --w-grad 0.5"
)
for name in "${!runs[@]}"; do
  python3 -m ros2_depth_interp.learning.train --out "$out/runs/$name" $common ${runs[$name]} > "$out/runs/$name.log" 2>&1 &
done
wait
for name in "${!runs[@]}"; do
  tail -3 "$out/runs/$name.log"
  python3 -m ros2_depth_interp.learning.export "$out/runs/$name/last.pt" --out "$out/runs/$name/depth_interp.onnx" --fp16 \
    > "$out/runs/$name/export.log" 2>&1 || tail -5 "$out/runs/$name/export.log"
done
python3 -m ros2_depth_interp.tools.bench_device --model "$out/runs/l1_grad/depth_interp.onnx" --out "$out/bench_device_gpu.json" \
  --repeats 100 --warmup 20 2>&1 | grep -v Warning
python3 -m ros2_depth_interp.tools.bench_device --model "$out/runs/paper_l1_grad/depth_interp.onnx" --backends torch \
  --out "$out/bench_device_gpu_paper.json" --repeats 100 --warmup 20 2>&1 | grep -v Warning
(cd "$out" && tar cf runs.tar runs && rm -rf runs)
ls -la "$out"
