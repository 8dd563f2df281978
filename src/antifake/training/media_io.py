"""Decoding for training/evaluation, and the evaluation conditions.

Conditions (combine with ``+``, applied left to right, e.g. ``laundered+masked``):

* ``original`` - the file as published;
* ``laundered`` - transcoded with PyAV to H.264 CRF 28, yuv420p, short side <= 720 px,
  metadata stripped (images go through the same codec as a one-frame clip), so every
  source shares one encoder;
* ``half`` - resized to half width and height (area filter);
* ``crop`` - a random crop of 60-90 % of each side (seeded by the file, reproducible);
* ``masked`` - the bottom-right corner where Runway puts its logo filled with grey
  (:data:`LOGO_BOX`), for every file whatever its label, so the mask itself says nothing.

Laundered copies are cached under the cache dir (``var/`` of the repository by default).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from antifake.training.data import IMAGE_SUFFIXES

CONDITIONS = ("original", "laundered", "half", "crop", "masked")
# Fraction of (width, height) covered by the logo mask, measured on Runway Gen-2 output
# (the logo sits in about the last 9 % x 14 %); a margin is added.
LOGO_BOX = (0.16, 0.20)
LAUNDER_CRF = 28
LAUNDER_SHORT_SIDE = 720


def parse_conditions(spec: str | Sequence[str]) -> list[str]:
    """``"original,laundered+masked"`` -> validated list of condition strings."""
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    out = []
    for part in (p.strip() for p in parts if p.strip()):
        for step in part.split("+"):
            if step not in CONDITIONS:
                raise ValueError(f"unknown condition {step!r}; known: {', '.join(CONDITIONS)}")
        out.append(part)
    return out


def _even(n: float) -> int:
    return max(2, int(round(n / 2)) * 2)


def decode_frames(path: Path, max_frames: int = 8) -> list[np.ndarray]:
    """Up to ``max_frames`` RGB uint8 frames spread evenly over the file (1 for a still)."""
    if path.suffix.lower() in IMAGE_SUFFIXES:
        with Image.open(path) as im:
            return [np.asarray(im.convert("RGB"))]
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        total = stream.frames or 0
        if total <= 0:
            total = sum(1 for _ in container.decode(video=0))
            container.seek(0)
        wanted = set(np.linspace(0, max(0, total - 1), num=min(max_frames, max(1, total)))
                     .round().astype(int).tolist())
        frames = []
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                frames.append(frame.to_ndarray(format="rgb24"))
            if i >= max(wanted):
                break
    if not frames:
        raise ValueError(f"{path}: no frames decoded")
    return frames


def launder_file(path: Path, cache_dir: Path) -> Path:
    """H.264 CRF 28 copy (short side <= 720, metadata stripped), cached by path+mtime."""
    stat = path.stat()
    digest = hashlib.sha1(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    out = cache_dir / "laundered" / f"{digest.hexdigest()}.mp4"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.mp4")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        frames_iter: list[np.ndarray] = decode_frames(path, 1)
        rate = Fraction(1)
    else:
        frames_iter = []
        with av.open(str(path)) as src:
            s = src.streams.video[0]
            rate = Fraction(s.average_rate or s.guessed_rate or 25).limit_denominator(1001)
            if rate <= 0 or rate > 60:
                rate = Fraction(25)
            frames_iter = [f.to_ndarray(format="rgb24") for f in src.decode(video=0)]
    h, w = frames_iter[0].shape[:2]
    scale = min(1.0, LAUNDER_SHORT_SIDE / min(h, w))
    ow, oh = _even(w * scale), _even(h * scale)
    with av.open(str(tmp), mode="w", format="mp4") as dst:
        stream = dst.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = ow, oh, "yuv420p"
        stream.options = {"crf": str(LAUNDER_CRF), "preset": "veryfast"}
        for arr in frames_iter:
            if arr.shape[:2] != (oh, ow):
                arr = np.asarray(Image.fromarray(arr).resize((ow, oh), Image.Resampling.BILINEAR))
            for packet in stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    tmp.rename(out)
    return out


def mask_logo(rgb: np.ndarray) -> np.ndarray:
    """Grey out the bottom-right :data:`LOGO_BOX` corner (copy)."""
    out = rgb.copy()
    h, w = out.shape[:2]
    out[h - int(round(h * LOGO_BOX[1])) :, w - int(round(w * LOGO_BOX[0])) :] = 128
    return out


def half_size(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    img = Image.fromarray(rgb).resize((max(1, w // 2), max(1, h // 2)), Image.Resampling.BOX)
    return np.asarray(img)


def random_crop(rgb: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h, w = rgb.shape[:2]
    ch, cw = int(h * rng.uniform(0.6, 0.9)), int(w * rng.uniform(0.6, 0.9))
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return rgb[y : y + ch, x : x + cw].copy()


def frames_for_condition(
    path: Path, condition: str, cache_dir: Path, max_frames: int = 8
) -> list[np.ndarray]:
    """Decode ``path`` under ``condition`` (see module docstring)."""
    steps = parse_conditions(condition)[0].split("+")
    src = launder_file(path, cache_dir) if "laundered" in steps else path
    frames = decode_frames(src, max_frames)
    seed = int(hashlib.sha1(str(path.name).encode()).hexdigest()[:8], 16)
    out = []
    for rgb in frames:
        for step in steps:
            if step == "half":
                rgb = half_size(rgb)
            elif step == "crop":
                rgb = random_crop(rgb, seed)  # one crop per clip
            elif step == "masked":
                rgb = mask_logo(rgb)
        out.append(rgb)
    return out
