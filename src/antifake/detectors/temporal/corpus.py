"""Corpus helpers shared by the temporal detector's training and evaluation scripts.

Reads ``manifest.tsv`` of the labelled corpus (``../shared/corpus``), makes "laundered"
copies of its videos (H.264 CRF 28, at most 720p, metadata stripped) in a cache directory
outside the repository, and extracts per-pair features for every clip with a disk cache.
Nothing here is imported by the detector at run time.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from antifake.detectors.temporal.features import FEATURE_NAMES, iter_frame_pairs, pair_features

DEFAULT_CORPUS = Path(os.environ.get("ANTIFAKE_CORPUS", "../shared/corpus"))
DEFAULT_CACHE = Path(os.environ.get("ANTIFAKE_CACHE", "/tmp/antifake_cache"))
MAX_PAIRS_PER_CLIP = 40


@dataclass(frozen=True)
class Clip:
    """One corpus video: ``label`` 1 = AI-generated, 0 = real camera footage."""

    file: str
    label: int
    generator: str
    source_repo: str


def load_video_clips(corpus: Path) -> list[Clip]:
    """Every video row of the manifest (images are skipped)."""
    clips = []
    with open(corpus / "manifest.tsv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            lab = row["label"]
            if "image" in lab:
                continue
            clips.append(
                Clip(row["file"], 0 if lab == "real_video" else 1, lab, row["source_repo"])
            )
    return clips


def launder(src: Path, dst: Path, crf: int = 28, max_short_side: int = 720,
            scale: float = 1.0) -> Path:
    """Transcode ``src`` to H.264 ``crf`` (yuv420p), short side <= ``max_short_side``,
    same frame rate, no metadata: the "laundering" every evaluation is repeated under."""
    if dst.exists():
        return dst
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(f".{os.getpid()}.tmp.mp4")  # parallel workers
    with av.open(str(src)) as inp, av.open(str(tmp), "w", format="mp4") as out:
        ist = inp.streams.video[0]
        ist.thread_type = "AUTO"
        w, h = ist.codec_context.width, ist.codec_context.height
        f = min(1.0, max_short_side / min(w, h)) * scale
        ow, oh = max(16, int(w * f) // 2 * 2), max(16, int(h * f) // 2 * 2)
        rate: Fraction = ist.average_rate or ist.guessed_rate or Fraction(25)
        ost = out.add_stream("libx264", rate=rate)
        ost.width, ost.height, ost.pix_fmt = ow, oh, "yuv420p"
        ost.options = {"crf": str(crf), "preset": "veryfast"}
        for i, frame in enumerate(inp.decode(ist)):
            img = frame.reformat(width=ow, height=oh, format="yuv420p")
            img.pts = i
            img.time_base = 1 / rate
            for pkt in ost.encode(img):
                out.mux(pkt)
        for pkt in ost.encode():
            out.mux(pkt)
    os.replace(tmp, dst)
    return dst


def _even_subset(indices: list[int], k: int) -> list[int]:
    if len(indices) <= k:
        return indices
    pos = np.linspace(0, len(indices) - 1, k).round().astype(int)
    return [indices[i] for i in pos]


def _frame_count(path: Path) -> int:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        if s.frames:
            return int(s.frames)
        return sum(1 for _ in c.decode(s))


def clip_features(path: Path, gap: int = 1, max_pairs: int = MAX_PAIRS_PER_CLIP) -> np.ndarray:
    """Features of up to ``max_pairs`` evenly spread pairs (i-gap, i): (n, F) float32."""
    n = _frame_count(path)
    starts = set(_even_subset(list(range(gap, max(gap, n))), max_pairs))
    feats = [pair_features(p.prev, p.cur) for p in iter_frame_pairs(path, starts, pair_gap=gap)]
    if not feats:
        return np.zeros((0, len(FEATURE_NAMES)), np.float32)
    return np.stack(feats)


def variant_path(corpus: Path, cache: Path, clip: Clip, variant: str) -> Path:
    """The file analysed for ``variant``: ``orig`` or a laundered copy in the cache."""
    src = corpus / clip.file
    if variant == "orig":
        return src
    key = hashlib.sha1(clip.file.encode()).hexdigest()[:16]
    dst = cache / "laundered" / variant / f"{key}.mp4"
    if variant == "crf28":
        return launder(src, dst)
    if variant == "half_crf23":  # training augmentation: half size, lighter compression
        return launder(src, dst, crf=23, scale=0.5)
    raise ValueError(f"unknown variant {variant!r}")


def cached_clip_features(corpus: Path, cache: Path, clip: Clip, variant: str,
                         gap: int = 1) -> np.ndarray:
    """:func:`clip_features` with an on-disk cache keyed by file, variant, gap, features."""
    tag = hashlib.sha1(
        f"{clip.file}|{variant}|{gap}|{','.join(FEATURE_NAMES)}|v1".encode()
    ).hexdigest()[:20]
    out = cache / "features" / f"{tag}.npy"
    if out.exists():
        return np.load(out)
    path = variant_path(corpus, cache, clip, variant)
    feats = clip_features(path, gap=gap)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, feats)
    return feats


def clip_fps(path: Path) -> float:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        r = s.average_rate or s.guessed_rate
        return float(r) if r else 25.0
