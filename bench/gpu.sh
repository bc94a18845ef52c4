#!/usr/bin/env bash
# One prepared GPU check for a lent machine (no crates.io there): the xtask binary, built here
# with `--features vulkan` and stripped, travels in .gpu/ with the Vulkan loader (.gl/) and a
# Fashion-MNIST subset; it benchmarks the training step on the GPU and runs a short plan there.
# Usage on the GPU machine, from the repository root: bash bench/gpu.sh [OUT_DIR]
set -uo pipefail
out=${1:-${OUT:-/tmp/gpu-out}}
mkdir -p "$out"
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
timeout 240 ./.gpu/xtask bench --device vulkan --steps 10 --out "$out/bench-vulkan.json" 2>&1 | tail -8
timeout 300 ./.gpu/xtask run .gpu/plan.toml --runs /tmp/gpu-runs 2>&1 | tail -25
cp /tmp/gpu-runs/gpu_quickstart/report.md "$out/report.md" 2>/dev/null || true
