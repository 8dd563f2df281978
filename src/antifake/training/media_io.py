"""Decoding for training/evaluation, and the evaluation conditions.

Conditions (combine with ``+``, applied left to right, e.g. ``laundered+masked``):

* ``original`` - the file as published;
* ``laundered`` - transcoded with PyAV to H.264 CRF 28, yuv420p, short side <= 720 px,
  metadata stripped (images go through the same codec as a one-frame clip), so every
  source shares one encoder;
* ``half`` - resized to half width and height (area filter);
* ``crop`` - a random crop of 60-90 % of each side (seeded by the file, reproducible);
* ``masked`` - the bottom-right corner where Runway puts its logo filled with grey
  (:data:`LOGO_BOX`), for every file whatever its label, so the mask itself says nothing;
* ``debias`` - one randomised transcoding chain per file (seeded by the file, so
  reproducible), applied to real and AI files alike so that container, codec, size and
  palette cannot separate the classes: a downscale to a short side of 128-720 px, sometimes
  a crop, then one of GIF palette (32-256 colours, dithered or not), H.264 CRF 18-35,
  VP9, JPEG q 50-95, WebP q 50-95, or nothing (lossless). See :func:`debias_frame`.

Laundered copies are cached under the cache dir (``var/`` of the repository by default).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import os
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image

from antifake.media import orientation
from antifake.training.data import IMAGE_SUFFIXES

CONDITIONS = ("original", "laundered", "half", "crop", "masked", "debias")
# Fraction of (width, height) covered by the logo mask, measured on Runway Gen-2 output
# (the logo sits in about the last 9 % x 14 %); a margin is added.
LOGO_BOX = (0.16, 0.20)
LAUNDER_CRF = 28
LAUNDER_SHORT_SIDE = 720
# Laundering re-encodes at most this many frames from the start: long real clips would
# otherwise dominate the cost, and training reads only a few frames per clip.
LAUNDER_MAX_FRAMES = 96
DEBIAS_CODECS = ("gif", "h264", "vp9", "jpeg", "webp", "none")


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
    """Up to ``max_frames`` RGB uint8 frames spread evenly over the file (1 for a still),
    turned as displayed, as the engine sees them (:mod:`antifake.media.orientation`)."""
    if path.suffix.lower() in IMAGE_SUFFIXES:
        with Image.open(path) as im:
            return [orientation.to_display(np.asarray(im.convert("RGB")),
                                           orientation.exif_code(im))]
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
                frames.append(orientation.to_display(frame.to_ndarray(format="rgb24"),
                                                     orientation.frame_code(frame)))
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
    tmp = out.with_suffix(f".{os.getpid()}.tmp.mp4")  # parallel workers never collide
    if path.suffix.lower() in IMAGE_SUFFIXES:
        _encode_h264(iter(decode_frames(path, 1)), Fraction(1), tmp)
    else:
        _reencode_clip(path, tmp)
    tmp.rename(out)
    return out


def _reencode_clip(path: Path, out: Path,
                   transform: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
    """Up to :data:`LAUNDER_MAX_FRAMES` frames of the clip ``path``, each through
    ``transform``, written to ``out`` by :func:`_encode_h264` at the clip's frame rate."""
    with av.open(str(path)) as src:
        s = src.streams.video[0]
        rate = Fraction(s.average_rate or s.guessed_rate or 25).limit_denominator(1001)
        if rate <= 0 or rate > 60:
            rate = Fraction(25)
        # Turned as displayed, as FFmpeg's transcoder does (portrait phone clips).
        frames = (orientation.to_display(f.to_ndarray(format="rgb24"), orientation.frame_code(f))
                  for f in src.decode(video=0))
        if transform is not None:
            frames = (transform(f) for f in frames)
        # Streamed frame by frame: a long 1080p clip never sits in memory whole.
        _encode_h264(itertools.islice(frames, LAUNDER_MAX_FRAMES), rate, out)


def judged_copy(path: Path, cache_dir: Path, jpeg_quality: int = 90) -> Path:
    """The file as an outside evaluation hands it over: logo corner masked, re-encoded.

    Videos: every frame (up to :data:`LAUNDER_MAX_FRAMES`) masked with :func:`mask_logo`,
    then H.264 CRF :data:`LAUNDER_CRF`, short side <= 720, no metadata. Images stay images:
    masked, short side <= 720, JPEG at ``jpeg_quality`` without metadata. Unlike the
    ``laundered+masked`` training condition (a one-frame H.264 clip for images, masked after
    decoding) this is a file the engine reads as a user's upload. Cached by path + mtime.
    """
    stat = path.stat()
    digest = hashlib.sha1(
        f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|judged{jpeg_quality}".encode())
    is_image = path.suffix.lower() in IMAGE_SUFFIXES
    out = cache_dir / "judged" / f"{digest.hexdigest()}{'.jpg' if is_image else '.mp4'}"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.stem}.{os.getpid()}.tmp{out.suffix}")
    if is_image:
        rgb = mask_logo(decode_frames(path, 1)[0])
        h, w = rgb.shape[:2]
        scale = min(1.0, LAUNDER_SHORT_SIDE / min(h, w))
        img = Image.fromarray(rgb)
        if scale < 1.0:
            img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))),
                             Image.Resampling.BILINEAR)
        img.save(tmp, format="JPEG", quality=jpeg_quality)
    else:
        _reencode_clip(path, tmp, mask_logo)
    tmp.rename(out)
    return out


def _encode_h264(frames: Iterator[np.ndarray], rate: Fraction, out: Path) -> None:
    """Write ``frames`` as H.264 CRF :data:`LAUNDER_CRF`, short side <= 720, to ``out``."""
    first = next(frames, None)
    if first is None:
        raise ValueError(f"{out}: no frames to launder")
    h, w = first.shape[:2]
    scale = min(1.0, LAUNDER_SHORT_SIDE / min(h, w))
    ow, oh = _even(w * scale), _even(h * scale)
    with av.open(str(out), mode="w", format="mp4") as dst:
        stream = dst.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = ow, oh, "yuv420p"
        stream.options = {"crf": str(LAUNDER_CRF), "preset": "veryfast"}
        for arr in itertools.chain([first], frames):
            if arr.shape[:2] != (oh, ow):
                arr = np.asarray(Image.fromarray(arr).resize((ow, oh), Image.Resampling.BILINEAR))
            for packet in stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)


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


def random_crop(rgb: np.ndarray, seed: int, low: float = 0.6) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h, w = rgb.shape[:2]
    ch = max(1, int(h * rng.uniform(low, 0.9)))
    cw = max(1, int(w * rng.uniform(low, 0.9)))
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return rgb[y : y + ch, x : x + cw].copy()


def _codec_roundtrip(rgb: np.ndarray, encoder: str, decoder: str,
                     options: dict[str, str]) -> np.ndarray:
    """Encode one frame as an intra picture with ``encoder`` and decode it back."""
    h, w = rgb.shape[:2]
    rgb = rgb[: h // 2 * 2, : w // 2 * 2]
    # Typed loosely: PyAV's stubs give the generic CodecContext, without the video fields.
    enc: Any = av.CodecContext.create(encoder, "w")
    enc.width, enc.height, enc.pix_fmt = rgb.shape[1], rgb.shape[0], "yuv420p"
    enc.time_base = Fraction(1, 25)
    enc.options = options
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    frame.pts = 0
    packets = list(enc.encode(frame)) + list(enc.encode(None))
    dec: Any = av.CodecContext.create(decoder, "r")
    out: list[np.ndarray] = []
    for packet in packets:
        out += [f.to_ndarray(format="rgb24") for f in dec.decode(packet)]
    out += [f.to_ndarray(format="rgb24") for f in dec.decode(None)]
    if not out:
        raise ValueError(f"{encoder} round trip produced no frame")
    return out[0]


def debias_frame(rgb: np.ndarray, seed: int, codec: str | None = None) -> np.ndarray:
    """One draw of the format-debiasing chain (see module docstring), seeded by ``seed``.

    ``codec`` forces one of :data:`DEBIAS_CODECS` (tests); otherwise it is drawn.
    """
    rng = np.random.default_rng(seed)
    h, w = rgb.shape[:2]
    short = int(rng.integers(128, 721))
    if min(h, w) > short:
        scale = short / min(h, w)
        rgb = np.asarray(Image.fromarray(rgb).resize(
            (max(2, round(w * scale)), max(2, round(h * scale))),
            [Image.Resampling.BOX, Image.Resampling.BILINEAR,
             Image.Resampling.BICUBIC][int(rng.integers(3))]))
    if rng.random() < 0.3:
        rgb = random_crop(rgb, int(rng.integers(1 << 31)), low=0.7)
    codec = codec or str(rng.choice(DEBIAS_CODECS))
    img = Image.fromarray(rgb)
    if codec == "gif":
        colours = int(rng.choice([32, 64, 128, 256]))
        dither = Image.Dither.FLOYDSTEINBERG if rng.random() < 0.5 else Image.Dither.NONE
        return np.asarray(img.quantize(colours, dither=dither).convert("RGB"))
    if codec in ("jpeg", "webp"):
        buf = io.BytesIO()
        img.save(buf, format=codec.upper(), quality=int(rng.integers(50, 96)))
        buf.seek(0)
        with Image.open(buf) as im:
            return np.asarray(im.convert("RGB"))
    if codec == "h264":
        return _codec_roundtrip(rgb, "libx264", "h264",
                                {"crf": str(int(rng.integers(18, 36))), "preset": "veryfast"})
    if codec == "vp9":
        return _codec_roundtrip(rgb, "libvpx-vp9", "vp9",
                                {"crf": str(int(rng.integers(20, 51))), "b": "0",
                                 "deadline": "realtime", "cpu-used": "8"})
    return rgb


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
            elif step == "debias":
                rgb = debias_frame(rgb, seed)  # one chain per file: every frame alike
        out.append(rgb)
    return out
