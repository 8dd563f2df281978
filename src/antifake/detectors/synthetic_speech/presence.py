"""Is there speech at all? Silero VAD, from the ``silero-vad`` wheel, on the 16 kHz wave.

The synthetic-speech model was trained on speech only; on music or other sound its score
means nothing (a song is neither a recording of a voice nor a TTS output), so the detector
asks first how much of the clip is speech and gives no opinion when there is next to none.

Silero VAD (MIT licence, snakers4/silero-vad) ships its ONNX graphs inside the PyPI wheel,
installed with ``pip install --no-deps silero-vad==6.2.3`` (its Python code imports torch,
which a runtime install leaves out, so only the wheel's ``data/silero_vad_16k_sequence.onnx``
is used, found without importing the package). The sequence graph scores every 32 ms frame
(512 samples plus the previous frame's last 64 as context) in one call per block, with the
LSTM state carried between blocks, so memory stays flat in the clip's length.
"""

from __future__ import annotations

import importlib.util
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_RATE = 16_000
FRAME = 512  # samples per VAD frame (32 ms)
CONTEXT = 64  # samples of the previous frame each frame sees
BLOCK_FRAMES = 128  # frames per ONNX call (~4 s): an early stop wastes little
MODEL_NAME = "silero_vad_16k_sequence.onnx"
PACKAGE = "silero-vad==6.2.3"

_lock = threading.Lock()


def model_path() -> Path | None:
    """The VAD graph inside the installed wheel, or None when the wheel is missing."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "data" / MODEL_NAME
        if path.is_file():
            return path
    return None


@lru_cache(maxsize=1)
def _session() -> Any:
    import onnxruntime as ort

    path = model_path()
    if path is None:
        return None
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # a small LSTM: one thread is fastest, and it is shared
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=options,
                                providers=["CPUExecutionProvider"])


def available() -> bool:
    """Whether the VAD model is installed."""
    return model_path() is not None


def speech_probabilities(wave: np.ndarray, stop_after_s: float | None = None,
                         threshold: float = 0.5) -> np.ndarray | None:
    """Per-32-ms-frame probability that ``wave`` (mono float32 at 16 kHz) is speech, or
    None when the VAD is not installed.

    With ``stop_after_s``, scoring stops after the block in which that many seconds of
    frames reached ``threshold`` (the array then covers only the start of the wave): the
    gate needs to know that there is voice, not how much (30 s of speech: one ~4 s block
    instead of 115 ms for the whole clip on the 2-core host).
    """
    with _lock:  # one session, created once even when detectors run side by side
        session = _session()
    if session is None:
        return None
    wave = np.ascontiguousarray(wave, dtype=np.float32).reshape(-1)
    n_frames = (wave.size + FRAME - 1) // FRAME
    hidden = np.zeros((1, 1, 128), np.float32)
    cell = np.zeros((1, 1, 128), np.float32)
    previous = np.zeros(CONTEXT, np.float32)
    out: list[np.ndarray] = []
    voiced = 0
    for first in range(0, n_frames, BLOCK_FRAMES):
        count = min(BLOCK_FRAMES, n_frames - first)
        frames = np.zeros((count, FRAME), np.float32)
        chunk = wave[first * FRAME: (first + count) * FRAME]
        frames.reshape(-1)[: chunk.size] = chunk
        context = np.empty((count, CONTEXT), np.float32)
        context[0] = previous
        context[1:] = frames[:-1, -CONTEXT:]
        previous = frames[-1, -CONTEXT:].copy()
        probs, hidden, cell = session.run(
            ["speech_probs", "hn", "cn"],
            {"input": np.concatenate([context, frames], axis=1), "h": hidden, "c": cell})
        out.append(np.asarray(probs, np.float32).reshape(-1))
        voiced += int(np.count_nonzero(out[-1] >= threshold))
        if stop_after_s is not None and voiced * FRAME / SAMPLE_RATE >= stop_after_s:
            break
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def speech_seconds(probabilities: np.ndarray, threshold: float = 0.5) -> float:
    """Seconds of frames whose speech probability reaches ``threshold``."""
    return float(np.count_nonzero(probabilities >= threshold)) * FRAME / SAMPLE_RATE
