#!/usr/bin/env bash
# One prepared GPU check for a lent machine (no crates.io there): the xtask binary, built here
# with `--features vulkan`, stripped and xz-compressed (.gpu/xtask.xz), travels in .gpu/ with the Vulkan loader (.gl/) and a
# Fashion-MNIST subset; it benchmarks the training step on the GPU and runs a short plan there.
#
# Prepare here, once (paths .gl/ and .gpu/ are git-ignored and carried to the machine):
#   cargo build --release -p xtask --features vulkan
#   mkdir -p .gpu && strip -o /tmp/xtask target/release/xtask && xz -6 -c /tmp/xtask > .gpu/xtask.xz
#   python3 bench/fmnist_subset.py
#   (cd .gl && apt-get download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
# Usage on the GPU machine, from the repository root: bash bench/gpu.sh [OUT_DIR]
set -uo pipefail
out=${1:-${OUT:-/tmp/gpu-out}}
mkdir -p "$out"
for f in .gl/*.deb; do dpkg -x "$f" /; done
[ -x .gpu/xtask ] || xz -dc .gpu/xtask.xz > .gpu/xtask && chmod +x .gpu/xtask
ldconfig
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES=${VK_DRIVER_FILES:-$icd}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
# With PyTorch there, its CUDA peer runs right after each configuration (ratios printed).
peer=$(python3 -c "import torch; print('--vs-pytorch' if torch.cuda.is_available() else '')" 2>/dev/null)
timeout 280 ./.gpu/xtask bench --device vulkan --steps 10 $peer --out "$out/bench-vulkan.json" 2>&1 | tail -16
timeout 180 ./.gpu/xtask run bench/gpu_plan.toml --runs /tmp/gpu-runs 2>&1 | tail -25
cp /tmp/gpu-runs/gpu_quickstart/report.md "$out/report.md" 2>/dev/null || true
