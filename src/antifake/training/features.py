"""Feature families compared for the forensic detector, with an on-disk cache.

* ``mnv2`` - per-layer spatial means of a frozen ImageNet MobileNetV2 (UnivFD-style
  linear probing, Ojha et al. CVPR 2023, with a CNN trunk and several depths tapped because
  low layers keep the high-frequency generator traces that the last layer discards).
  The frame is first brought to the working resolution of the shipped model
  (:func:`prepare_rgb`), so training sees exactly what inference sees. Variants select
  taps: ``mnv2_low`` (layers 3, 6, 10, 13), ``mnv2_last`` (layer 18, the classic probe),
  ``mnv2_all``, or ``mnv2:3,6``.
* ``mnv2e`` - layers 3, 6, 10, 13 with each location's features *and their squares*
  averaged (first and second moments: texture energy), still a per-location additive
  score, so the shipped model keeps an exact heatmap. This is the shipped family.
* ``effl0e`` - a frozen ImageNet EfficientNet-Lite0 (:mod:`antifake.training.backbone_effl0`),
  blocks 2, 4, 7, 10 and 14, features and their squares averaged, same additive per-location
  score. It generalises better than ``mnv2e`` across sources (``docs/benchmarks.md``) and
  is the shipped family since model version effl0e-probe-0.2.
* ``clip`` - a frozen CLIP ViT-B/16 image encoder (:mod:`antifake.clip_encoder`): the
  projected embedding and the mean patch token of the whole frame at 224 px (UnivFD's
  features); ``clip_emb`` / ``clip_tok`` take one of the two.
* ``clipm`` - the class token of each of CLIP's 12 transformer blocks (RINE-style
  intermediate features, read from the same encoding as ``clip``); ``clipm.4.8.12`` picks
  blocks (1-based), ``clipm_emb`` / ``clipm_emb.4.8.12`` adds the projected embedding.
* ``clipn`` - the same encoder on the 224x224 centre crop at native resolution (no
  resampling: generator pixel traces survive), ``clipn_emb`` / ``clipn_tok`` likewise.
* ``clipp`` - per-block statistics of CLIP's *patch* tokens on the same encoding as
  ``clip`` (the mean and the standard deviation over the 196 patches of each of the 12
  blocks, 18,432 values), cached apart so the ``clip`` cache keeps its shape;
  ``clipp_mean`` / ``clipp_std`` take one statistic, ``clipp.7.8.9`` picks blocks.
* ``residual`` - hand-crafted noise-residual statistics at native resolution: NPR-style
  neighbouring-pixel residuals (Tan et al. CVPR 2024), SRM-like high-pass energies and
  kurtosis, the azimuthal spectrum of the Laplacian residual and its peaks at the
  up-sampling periods 2/4/8 (Durall et al. 2020; Corvi et al. ICASSP 2023), and chroma vs
  luma residual ratios.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from antifake.detectors.forensic_image.preprocess import prepare_rgb, to_array
from antifake.training.backbone import ForensicNet
from antifake.training.data import Item
from antifake.training.media_io import frames_for_condition

MNV2_TAPS_ALL = (3, 6, 10, 13, 16, 18)
FAMILY_TAPS = {"mnv2_low": (3, 6, 10, 13), "mnv2_last": (18,), "mnv2_all": MNV2_TAPS_ALL,
               "mnv2_mid": (6, 10, 13, 16)}
FEATURE_VERSION = "v2"  # v2: the clip cache holds the per-block class tokens too
BASE_FAMILIES = ("mnv2", "mnv2e", "residual", "effl0e", "clip", "clipn", "clipp", "dinos")
# Column slices of the cached ``clip`` / ``clipn`` features (antifake.clip_encoder.encode
# of the resized picture / of its native-resolution centre crop): the projected
# embedding, the mean patch token, or both.
CLIP_COLUMNS = {"clip": slice(0, 1280), "clip_emb": slice(0, 512), "clip_tok": slice(512, 1280),
                "clipn": slice(0, 1280), "clipn_emb": slice(0, 512),
                "clipn_tok": slice(512, 1280)}
ENERGY_TAPS = (3, 6, 10, 13)


def clip_columns(family: str) -> np.ndarray:
    """Column indices of a ``clip*`` family inside :func:`antifake.clip_encoder.encode`'s
    vector."""
    from antifake.clip_encoder import LAYER_OFFSET, LAYERS, WIDTH

    if family in CLIP_COLUMNS:
        return np.arange(CLIP_COLUMNS[family].start, CLIP_COLUMNS[family].stop)
    name, _, spec = family.partition(".")
    if name not in ("clipm", "clipm_emb"):
        raise ValueError(f"unknown feature family {family!r}")
    blocks = [int(b) for b in spec.split(".")] if spec else list(range(1, LAYERS + 1))
    if not blocks or any(not 1 <= b <= LAYERS for b in blocks):
        raise ValueError(f"{family!r}: blocks are numbered 1..{LAYERS}")
    cols = [np.arange(LAYER_OFFSET + (b - 1) * WIDTH, LAYER_OFFSET + b * WIDTH) for b in blocks]
    if name == "clipm_emb":
        cols.insert(0, np.arange(0, 512))
    return np.concatenate(cols)


def clipp_columns(family: str) -> np.ndarray:
    """Columns of a ``clipp`` family inside the cached patch statistics (per block: mean
    then standard deviation, :data:`antifake.clip_encoder.PATCH_STATS` in all)."""
    from antifake.clip_encoder import LAYERS, WIDTH

    name, _, spec = family.partition(".")
    stats = {"clipp": (0, 1), "clipp_mean": (0,), "clipp_std": (1,)}.get(name)
    if stats is None:
        raise ValueError(f"unknown feature family {family!r}")
    blocks = [int(b) for b in spec.split(".")] if spec else list(range(1, LAYERS + 1))
    if not blocks or any(not 1 <= b <= LAYERS for b in blocks):
        raise ValueError(f"{family!r}: blocks are numbered 1..{LAYERS}")
    return np.concatenate([np.arange((2 * (b - 1) + s) * WIDTH, (2 * (b - 1) + s + 1) * WIDTH)
                           for b in blocks for s in stats])


def dino_columns(family: str) -> np.ndarray:
    """Columns of a ``dinosm`` family (block class tokens; ``dinosm.7.8`` picks blocks)
    inside :func:`antifake.training.dino_encoder.encode`'s vector (``dinos``: all of it)."""
    from antifake.training.dino_encoder import LAYERS, WIDTH

    name, _, spec = family.partition(".")
    if name != "dinosm":
        raise ValueError(f"unknown feature family {family!r}")
    blocks = [int(b) for b in spec.split(".")] if spec else list(range(1, LAYERS + 1))
    if not blocks or any(not 1 <= b <= LAYERS for b in blocks):
        raise ValueError(f"{family!r}: blocks are numbered 1..{LAYERS}")
    return np.concatenate([np.arange(WIDTH * b, WIDTH * (b + 1)) for b in blocks])


def is_clip_family(family: str) -> bool:
    """True for the families read from the cached CLIP encoding."""
    return family in CLIP_COLUMNS or family.partition(".")[0] in ("clipm", "clipm_emb")


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(to_array(rgb))


class _Pooled(torch.nn.Module):
    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net.pooled_features(x)  # type: ignore[operator]
        assert isinstance(out, torch.Tensor)
        return out


def _export_pooled(net: torch.nn.Module, path: Path) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        _export_pooled_graph(net, path)


def _export_pooled_graph(net: torch.nn.Module, path: Path) -> None:
    torch.onnx.export(_Pooled(net).eval(), (torch.zeros(1, 3, 256, 256),), str(path),
                      dynamo=False, opset_version=17, input_names=["image"],
                      output_names=["features"],
                      dynamic_axes={"image": {0: "n", 2: "h", 3: "w"}, "features": {0: "n"}})


# ----------------------------------------------------------------------------- residual
def _kurt(a: np.ndarray) -> float:
    a = a - a.mean()
    v = (a**2).mean() + 1e-6
    return float(np.log((a**4).mean() / v**2 + 1e-6))


def _radial_profile(power: np.ndarray, bins: int = 10) -> np.ndarray:
    h, w = power.shape
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    r = np.sqrt(fy**2 + fx**2) / np.sqrt(0.5)
    edges = np.geomspace(0.02, 1.0001, bins + 1)
    total = power.sum() + 1e-9
    return np.array([np.log(power[(r >= a) & (r < b)].sum() / total + 1e-9)
                     for a, b in zip(edges[:-1], edges[1:], strict=True)])


def residual_features(rgb: np.ndarray) -> np.ndarray:
    """About 36 noise-residual statistics of one frame (see module docstring)."""
    h, w = rgb.shape[:2]
    s = min(256, h // 2 * 2, w // 2 * 2)
    y0, x0 = (h - s) // 2, (w - s) // 2
    x = rgb[y0 : y0 + s, x0 : x0 + s].astype(np.float32)
    yl = 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]
    cb, cr = x[..., 2] - yl, x[..., 0] - yl
    feats: list[float] = []
    # NPR: each pixel of a 2x2 cell minus the cell's top-left pixel.
    tl = yl[0::2, 0::2]
    for dy, dx in ((0, 1), (1, 0), (1, 1)):
        feats.append(float(np.log(np.abs(yl[dy::2, dx::2] - tl).mean() + 1e-3)))
    d1x = np.diff(yl, axis=1)
    d1y = np.diff(yl, axis=0)
    d2x = yl[:, 2:] - 2 * yl[:, 1:-1] + yl[:, :-2]
    lap = 4 * yl[1:-1, 1:-1] - yl[:-2, 1:-1] - yl[2:, 1:-1] - yl[1:-1, :-2] - yl[1:-1, 2:]
    for r in (d1x, d1y, d2x, lap):
        feats.append(float(np.log(np.abs(r).mean() + 1e-3)))
        feats.append(_kurt(r))
    e_lap = np.abs(lap).mean() + 1e-3
    feats += [feats[i] - float(np.log(e_lap)) for i in range(3)]  # NPR relative to Laplacian
    # Spectrum of the Laplacian residual.
    power = np.abs(np.fft.fft2(lap - lap.mean())) ** 2
    feats += _radial_profile(power).tolist()
    n0, n1 = power.shape
    col = power.mean(axis=0)
    row = power.mean(axis=1)
    for period in (2, 4, 8):
        for prof, n in ((col, n1), (row, n0)):
            k = int(round(n / period))
            if 2 < k < n - 2:
                neigh = np.concatenate([prof[k - 3 : k - 1], prof[k + 2 : k + 4]]).mean()
                feats.append(float(np.log(prof[k] / (neigh + 1e-9) + 1e-9)))
            else:
                feats.append(0.0)
    # Chroma vs luma residual energy; cross-channel residual correlation.
    for c in (cb, cr):
        lc = 4 * c[1:-1, 1:-1] - c[:-2, 1:-1] - c[2:, 1:-1] - c[1:-1, :-2] - c[1:-1, 2:]
        feats.append(float(np.log((np.abs(lc).mean() + 1e-3) / e_lap)))
    laps = [4 * x[1:-1, 1:-1, i] - x[:-2, 1:-1, i] - x[2:, 1:-1, i] - x[1:-1, :-2, i]
            - x[1:-1, 2:, i] for i in range(3)]
    for a, b in ((0, 1), (1, 2), (0, 2)):
        feats.append(float(np.corrcoef(laps[a].ravel(), laps[b].ravel())[0, 1]))
    return np.nan_to_num(np.asarray(feats, dtype=np.float32))


# ----------------------------------------------------------------------------- extraction
class FeatureExtractor:
    """Computes and caches per-frame features of items under a condition."""

    def __init__(self, cache_dir: Path, max_frames: int = 2, threads: int = 2) -> None:
        self.cache_dir = cache_dir
        self.max_frames = max_frames
        self.threads = threads
        self._sessions: dict[str, Any] = {}

    def session(self, base: str = "mnv2") -> Any:
        """onnxruntime session computing the pooled features (much faster than eager torch)."""
        if base not in self._sessions:
            import onnxruntime as ort

            path = self.cache_dir / "features" / FEATURE_VERSION / f"{base}_pooled.onnx"
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                net: torch.nn.Module
                if base == "effl0e":
                    from antifake.training.backbone_effl0 import EffLite0ForensicNet

                    net = EffLite0ForensicNet()
                else:
                    net = (ForensicNet(ENERGY_TAPS, energy=True) if base == "mnv2e"
                           else ForensicNet(MNV2_TAPS_ALL))
                _export_pooled(net, path)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = 1
            self._sessions[base] = ort.InferenceSession(str(path), opts,
                                                        providers=["CPUExecutionProvider"])
        return self._sessions[base]

    def _path(self, base: str, condition: str, item: Item) -> Path:
        tag = hashlib.sha1(f"{item.path}|{item.key}".encode()).hexdigest()[:16]
        if base in ("clip", "clipn", "clipp"):
            # CLIP features made before the encoder's arithmetic was exact on every CPU
            # (clip_encoder.convert_model) must not be read back.
            from antifake.clip_encoder import ARITHMETIC

            base = f"{base}-{ARITHMETIC}"
        return (self.cache_dir / "features" / FEATURE_VERSION / base
                / f"{condition}_f{self.max_frames}" / f"{tag}.npy")

    def frames_features(self, family: str, condition: str, item: Item) -> np.ndarray:
        """``(n_frames, D)`` features of ``item`` under ``condition``."""
        base = base_of(family)
        path = self._path(base, condition, item)
        if not path.exists():
            self.precompute((base,), condition, item)
        feats = np.load(path)
        if base == "mnv2" and family != "mnv2":
            feats = feats[:, tap_columns(taps_of(family))]
        if base in ("clip", "clipn"):
            feats = feats[:, clip_columns(family)]
        if base == "clipp" and family != "clipp":
            feats = feats[:, clipp_columns(family)]
        if base == "dinos" and family != "dinos":
            feats = feats[:, dino_columns(family)]
        return feats

    def precompute(self, bases: tuple[str, ...], condition: str, item: Item) -> None:
        """Cache the features of every family in ``bases`` from one decode of ``item``."""
        todo = [b for b in bases if not self._path(b, condition, item).exists()]
        if not todo:
            return
        frames = frames_for_condition(item.path, condition, self.cache_dir, self.max_frames)
        encoded = {}
        if {"clip", "clipp"} & set(todo):  # one CLIP pass gives both caches
            from antifake import clip_encoder

            full = clip_encoder.encode(frames, threads=self.threads, patch_stats="clipp" in todo)
            encoded = {"clip": full[:, :clip_encoder.N_FEATURES],
                       "clipp": full[:, clip_encoder.N_FEATURES:]}
        for base in todo:
            if base == "residual":
                fb = np.stack([residual_features(f) for f in frames])
            elif base == "dinos":
                from antifake.training import dino_encoder

                fb = dino_encoder.encode(frames, threads=self.threads)
            elif base in encoded:
                fb = encoded[base]
            elif base == "clipn":
                from antifake import clip_encoder

                fb = clip_encoder.encode(frames, threads=self.threads, native=True)
            else:
                fb = np.concatenate([
                    self.session(base).run(None, {"image": to_array(prepare_rgb(f))})[0]
                    for f in frames])
            path = self._path(base, condition, item)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, fb.astype(np.float32))
            tmp.replace(path)  # atomic: parallel workers never read half a file


def base_of(family: str) -> str:
    """The cached base family a (variant) family name reads from."""
    base = ("mnv2e" if family.startswith("mnv2e") else "mnv2" if family.startswith("mnv2")
            else "effl0e" if family.startswith("effl0e")
            else "clipn" if family.startswith("clipn") and family in CLIP_COLUMNS
            else "clipp" if family.partition(".")[0] in ("clipp", "clipp_mean", "clipp_std")
            else "dinos" if family.partition(".")[0] in ("dinos", "dinosm")
            else "clip" if is_clip_family(family) else family)
    if base not in BASE_FAMILIES:
        raise ValueError(f"unknown feature family {family!r}")
    return base


def _precompute_one(args: tuple[Path, int, tuple[str, ...], str, Item]) -> str | None:
    cache_dir, max_frames, bases, condition, item = args
    fx = _WORKER_FX.get((cache_dir, max_frames))
    if fx is None:
        fx = _WORKER_FX[(cache_dir, max_frames)] = FeatureExtractor(cache_dir, max_frames,
                                                                     threads=1)
    try:
        fx.precompute(bases, condition, item)
    except Exception as exc:  # noqa: BLE001 - one unreadable file must not stop the cache
        return f"{item.path}: {type(exc).__name__}: {exc}"
    return None


_WORKER_FX: dict[tuple[Path, int], FeatureExtractor] = {}


def precompute_all(cache_dir: Path, max_frames: int, families: Sequence[str],
                   conditions: Sequence[str], items: Sequence[Item], workers: int = 2,
                   log: Callable[[str], None] | None = None) -> list[str]:
    """Fill the feature cache for every item x condition in ``workers`` processes.

    Returns the errors (one line per file that could not be decoded).
    """
    import multiprocessing as mp

    bases = tuple(dict.fromkeys(base_of(f) for f in families))
    for base in bases:  # export the backbone ONNX once here, not racing in the workers
        if base not in ("residual", "clip", "clipn", "clipp", "dinos"):
            FeatureExtractor(cache_dir, max_frames).session(base)
    jobs = [(cache_dir, max_frames, bases, c, it) for c in conditions for it in items]
    errors: list[str] = []
    done = 0
    ctx = mp.get_context("spawn")  # onnxruntime sessions do not survive fork
    with ctx.Pool(max(1, workers)) as pool:
        for err in pool.imap_unordered(_precompute_one, jobs, chunksize=4):
            done += 1
            if err:
                errors.append(err)
            if log and done % 200 == 0:
                log(f"features: {done}/{len(jobs)} ({len(errors)} errors)")
    return errors


def taps_of(family: str) -> tuple[int, ...]:
    """Tapped layers of a ``mnv2*`` family (a named variant or ``mnv2:3,6,10``) or the
    EfficientNet-Lite0 blocks of ``effl0e``."""
    if family in FAMILY_TAPS:
        return FAMILY_TAPS[family]
    if family.startswith("mnv2:"):
        return tuple(int(t) for t in family[5:].split(","))
    if family == "mnv2":
        return MNV2_TAPS_ALL
    if family == "mnv2e":
        return ENERGY_TAPS
    if family == "effl0e":
        from antifake.training.backbone_effl0 import DEFAULT_TAPS

        return DEFAULT_TAPS
    raise ValueError(f"unknown feature family {family!r}")


def tap_columns(taps: tuple[int, ...]) -> np.ndarray:
    """Column indices of ``taps`` inside the cached ``MNV2_TAPS_ALL`` feature vector."""
    from antifake.training.backbone import LAYER_INFO

    cols: list[int] = []
    start = 0
    for t in MNV2_TAPS_ALL:
        c = LAYER_INFO[t][0]
        if t in taps:
            cols.extend(range(start, start + c))
        start += c
    return np.asarray(cols)
